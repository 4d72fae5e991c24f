"""The delivery worker: drains the durable queue with bounded concurrency per host, retries with
exponential backoff and jitter for about two days (17 attempts, like Mastodon), and keeps per-host
health: a circuit breaker after repeated failures, and hosts failing on 7 distinct days marked
unavailable until they speak to us again."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import msgspec

from server.metrics import DELIVERIES
from server.state import State
from server.storage import accounts as account_store
from server.storage import federation as fed_store

log = logging.getLogger("crosstalk.delivery")
MAX_ATTEMPTS = 17
PER_HOST = 4
TOTAL = 32
CIRCUIT_FAILURES = 10
CIRCUIT_SECONDS = 60.0
UNAVAILABLE_AFTER_DAYS = 7


def retry_delay(attempts: int, scale: float) -> float:
    """Mastodon's schedule: attempts⁴ + 15 seconds, plus up to 50 % jitter."""
    base = attempts ** 4 + 15
    return base * scale * (1 + random.random() * 0.5)


class DeliveryWorker:
    def __init__(self, state: State) -> None:
        self.state = state
        self.scale = float(state.config["federation.retry_scale"])
        self._wake = asyncio.Event()
        self._stopping = False
        self._host_slots: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST))
        self._total = asyncio.Semaphore(TOTAL)
        self._in_flight: set[int] = set()
        self._healthy: set[str] = set()  # hosts whose last delivery worked: no host bookkeeping needed
        self._senders: dict[int, Any] = {}  # sender accounts, refreshed with every batch of due rows
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        """Finish the attempt in hand, take no new work."""
        self._stopping = True
        self._wake.set()

    async def wait_idle(self, grace: float) -> None:
        """Wait for attempts in flight (after request_stop) so their outcome is recorded."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)

    async def run(self) -> None:
        while not self._stopping and not self.state.stopping.is_set():
            try:
                await self._tick()
            except Exception:
                log.exception("delivery loop error")
                await asyncio.sleep(1)

    async def _tick(self) -> None:
        now = time.time()
        circuit_open = await fed_store.open_circuit_hosts(self.state.db, now)
        due = [d for d in await fed_store.due_deliveries(self.state.db, now, 200, circuit_open)
               if d.id not in self._in_flight]
        self._senders.clear()
        unavailable = await fed_store.unavailable_hosts(self.state.db) if due else set()
        for delivery in due:
            if self._stopping:
                return
            if delivery.host in unavailable:
                async with self.state.db.transaction() as tx:
                    await fed_store.delivery_done(tx, delivery.id, "failed", delivery.attempts, now, None,
                                                  "host marked unavailable")
                continue
            await self._total.acquire()
            self._in_flight.add(delivery.id)
            task = asyncio.get_running_loop().create_task(self._attempt(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if due:
            await asyncio.sleep(0)  # let freshly started attempts run before polling again
            if len(due) >= 200:
                return
        next_due = await fed_store.next_due_at(self.state.db)
        timeout = 5.0 if next_due is None else max(0.05, min(5.0, next_due - time.time()))
        if self._tasks and next_due is not None and next_due <= time.time():
            timeout = 0.2  # due rows are all in flight: check back soon
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def _attempt(self, delivery: fed_store.DueDelivery) -> None:
        try:
            async with self._host_slots[delivery.host]:
                sender = self._senders.get(delivery.sender_id)
                if sender is None:
                    sender = await account_store.get(self.state.db, delivery.sender_id)
                    if sender is not None:
                        self._senders[delivery.sender_id] = sender
                refused = await self.state.boundary.check_delivery(delivery.host)
                if refused is not None:  # the rules changed after the activity was queued
                    outcome_status, result, error = None, "final", f"refused by policy: {refused}"
                elif sender is None:
                    outcome_status, result, error = None, "final", "sender no longer exists"
                else:
                    key_id, pem = await self.state.federation.signing_key(sender)
                    outcome = await self.state.federation.client.deliver(delivery.inbox_url, delivery.body,
                                                                         key_id=key_id, private_key_pem=pem)
                    outcome_status, result, error = outcome.status, outcome.result, outcome.error
                await self._record(delivery, outcome_status, result, error)
                await self._count(delivery, result, refused is not None)
                self.state.boundary.record(
                    "out", "delivery", delivery.host, "ok" if result == "ok" else ("retry" if result == "retry" else "failed"),
                    actor=sender.uri if sender else None, activity_type=_activity_type(delivery.body),
                    reason=None if result == "ok" else error)
        except Exception:
            log.exception("delivery %s to %s crashed", delivery.id, delivery.inbox_url)
        finally:
            self._in_flight.discard(delivery.id)
            self._total.release()

    async def _count(self, d: fed_store.DueDelivery, result: str, refused: bool) -> None:
        """crosstalk_deliveries_total: outcome, and whether the host is an explicitly allowed partner."""
        if result == "ok":
            outcome = "delivered"
        elif refused:
            outcome = "refused"
        elif result == "retry":
            outcome = "retry" if d.attempts + 1 < MAX_ATTEMPTS else "gave_up"
        else:
            outcome = "failed"
        decision = await self.state.boundary.decide(d.host)
        DELIVERIES.labels(outcome, "partner" if decision.allow is not None else "other").inc()

    async def _record(self, d: fed_store.DueDelivery, status: int | None, result: str, error: str | None) -> None:
        now = time.time()
        attempts = d.attempts + 1
        if result == "ok" and d.host in self._healthy:
            # The common case: a healthy host took it. One row to mark, nothing else to change.
            async with self.state.db.transaction() as tx:
                await fed_store.delivery_done(tx, d.id, "done", attempts, now, status, None)
            return
        host = await fed_store.host(self.state.db, d.host) if result == "retry" else None
        async with self.state.db.transaction() as tx:
            if result == "ok":
                await fed_store.delivery_done(tx, d.id, "done", attempts, now, status, None)
                await fed_store.save_host(tx, d.host, consecutive_failures=0, circuit_open_until=0, unavailable=0,
                                          failure_days="[]", last_success_at=_today_iso())
                self._healthy.add(d.host)
                return
            self._healthy.discard(d.host)
            if result == "retry" and attempts < MAX_ATTEMPTS:
                await fed_store.delivery_done(tx, d.id, "pending", attempts, now + retry_delay(attempts, self.scale),
                                              status, error)
            else:
                await fed_store.delivery_done(tx, d.id, "failed", attempts, now, status, error)
            if result == "gone":
                await fed_store.mark_inbox_owner_gone(tx, d.inbox_url)
            if result == "retry":
                failures = (host["consecutive_failures"] if host else 0) + 1
                days = set(msgspec.json.decode(host["failure_days"])) if host else set()
                days.add(datetime.now(UTC).strftime("%Y-%m-%d"))
                values: dict[str, object] = {"consecutive_failures": failures,
                                             "failure_days": msgspec.json.encode(sorted(days)[-30:]).decode()}
                if failures >= CIRCUIT_FAILURES:
                    values["circuit_open_until"] = now + CIRCUIT_SECONDS * self.scale
                    await fed_store.postpone_host(tx, d.host, now + CIRCUIT_SECONDS * self.scale)
                if len(days) >= UNAVAILABLE_AFTER_DAYS:
                    values["unavailable"] = 1
                await fed_store.save_host(tx, d.host, **values)
        log.info("delivery to %s: %s (%s) %s", d.inbox_url, result, status, error or "")  # failures only


def _today_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _activity_type(body: bytes) -> str | None:
    try:
        kind = msgspec.json.decode(body).get("type")
    except (msgspec.DecodeError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None
