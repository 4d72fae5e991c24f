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

from federation.client import DeliveryOutcome
from server.metrics import DELIVERIES
from server.services.federation import keys
from server.state import State
from server.storage import accounts as account_store
from server.storage import deliveries as delivery_store
from server.workers.signing import SigningPool, processes_for

log = logging.getLogger("crosstalk.delivery")
MAX_ATTEMPTS = 17
PER_HOST = 4
TOTAL = 32
# Rows claimed at once: twice what may be in flight, and few enough that, with several workers, none
# holds many rows it cannot start yet while another one idles at the end of a queue. The next claim is
# made while the last PREFETCH rows of one wait for room, so the queue never drains between claims.
CLAIM = 2 * TOTAL
PREFETCH = TOTAL // 2
# Deliveries that went through are marked done together: with the next claim, or at most this long
# after the first of them ended: a few write transactions a second instead of one for every few
# deliveries (each one is a turn of the database's write lock, which other processes wait for).
MARK_DELAY = 0.05
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
        self.scale = float(state.settings.federation.retry_scale)
        # Longer than any one attempt (its HTTP timeout included) and than the wait behind a host's slots.
        self.claim_seconds = float(state.settings.federation.delivery_claim_seconds)
        self._wake = asyncio.Event()
        self._stopping = False
        self._host_slots: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST))
        self._total = asyncio.Semaphore(TOTAL)
        self._in_flight: set[int] = set()
        self._healthy: set[str] = set()  # hosts whose last delivery worked: no host bookkeeping needed
        self._senders: dict[int, Any] = {}  # sender accounts, refreshed with every batch of due rows
        self._kinds: dict[str, str | None] = {}  # activity id -> type, for the boundary log (per batch too)
        self._bodies: dict[str, bytes] = {}  # activity id -> body: one object per activity (per batch too)
        self._counters: dict[tuple[str, str], Any] = {}  # crosstalk_deliveries_total's children
        self._tasks: set[asyncio.Task[None]] = set()
        self.signing = SigningPool(processes_for(state.settings.federation.signing_processes))
        self._delivered: list[tuple[int, int, int | None]] = []  # (id, attempts, status) to mark done
        self._marker: asyncio.Task[None] | None = None

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
        await self._mark_delivered()

    async def run(self) -> None:
        try:
            while not self._stopping and not self.state.stopping.is_set():
                try:
                    await self._tick()
                except Exception:
                    log.exception("delivery loop error")
                    await asyncio.sleep(1)
        finally:
            if self._tasks:  # attempts in hand may still be signing
                await asyncio.wait(list(self._tasks), timeout=5.0)
            self.signing.close()
            await self._mark_delivered()

    async def _claim(self) -> list[delivery_store.DueDelivery]:
        """Claim up to CLAIM due deliveries (those to hosts whose circuit is open excepted)."""
        now = time.time()
        circuit_open = await delivery_store.open_circuit_hosts(self.state.db, now)
        # The deliveries that went through since the last claim are marked done in the claim's own
        # transaction (the marker's timer is for when no claim comes soon); on failure they wait for the next.
        marks, self._delivered = self._delivered, []
        try:
            async with self.state.db.transaction() as tx:
                if marks:
                    await delivery_store.deliveries_done(tx, marks, now)
                return await delivery_store.claim_due_deliveries(tx, now, now + self.claim_seconds, CLAIM, circuit_open)
        except BaseException:
            self._delivered[:0] = marks
            raise

    async def _tick(self) -> None:
        claimed = await self._claim()
        while claimed:
            more = await self._start(claimed)
            if self._stopping:
                return
            if more is None:
                break  # the claim was not full: the queue looks drained
            claimed = await more  # claimed while the rows in hand were being started
        next_due = await delivery_store.next_due_at(self.state.db)
        timeout = 5.0 if next_due is None else max(0.05, min(5.0, next_due - time.time()))
        if self._tasks and next_due is not None and next_due <= time.time():
            timeout = 0.2  # due rows are all in flight: check back soon
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def _start(self, claimed: list[delivery_store.DueDelivery]) -> asyncio.Task[list[delivery_store.DueDelivery]] | None:
        """Start an attempt for each claimed row as room frees up. A full claim means more may be due:
        the next claim is then made while the last rows of this one wait for room (the attempts in flight
        have work left: the claim's round trips to the database overlap it, and the queue never drains
        between claims); its task is returned. None when the worker stops or the queue looks drained
        (then the caller polls after a pause)."""
        now = time.time()
        due = [d for d in claimed if d.id not in self._in_flight]
        self._senders.clear()
        self._kinds.clear()
        self._bodies.clear()
        for delivery in due:  # the same body object for every inbox of an activity: its digest is made once
            delivery.body = self._bodies.setdefault(delivery.activity_id, delivery.body)
        unavailable = await delivery_store.unavailable_hosts(self.state.db) if due else set()
        more: asyncio.Task[list[delivery_store.DueDelivery]] | None = None
        loop = asyncio.get_running_loop()
        for started, delivery in enumerate(due):
            if self._stopping:
                break
            if more is None and len(claimed) >= CLAIM and len(due) - started <= PREFETCH:
                more = loop.create_task(self._claim())
            if delivery.host in unavailable:
                async with self.state.db.transaction() as tx:
                    await delivery_store.delivery_done(tx, delivery.id, "failed", delivery.attempts, now, None,
                                                       "host marked unavailable")
                continue
            await self._total.acquire()
            self._in_flight.add(delivery.id)
            task = loop.create_task(self._attempt(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._stopping:
            if more is not None:  # its rows stay claimed until the claim runs out, as rows not started do
                await asyncio.wait([more])
            return None
        if more is None and len(claimed) >= CLAIM:
            more = loop.create_task(self._claim())
        if more is None:
            await asyncio.sleep(0)  # let freshly started attempts run before polling again
        return more

    async def _attempt(self, delivery: delivery_store.DueDelivery) -> None:
        try:
            async with self._host_slots[delivery.host]:
                sender = self._senders.get(delivery.sender_id)
                if sender is None:
                    sender = await account_store.get(self.state.db, delivery.sender_id)
                    if sender is not None:
                        self._senders[delivery.sender_id] = sender
                # The rules may have changed since the activity was queued: they are checked at send time.
                decision = await self.state.boundary.decide(delivery.host)
                refused = None if decision.allowed else (decision.reason or "refused")
                error: str | None
                if refused is not None:
                    outcome_status, result, error = None, "final", f"refused by policy: {refused}"
                elif sender is None:
                    outcome_status, result, error = None, "final", "sender no longer exists"
                else:
                    key_id, pem = await keys.signing_key(self.state, sender)
                    outcome = await self._deliver(delivery, key_id, pem)
                    outcome_status, result, error = outcome.status, outcome.result, outcome.error
                await self._record(delivery, outcome_status, result, error)
                self._count(delivery, result, refused is not None, decision.allow is not None)
                self.state.boundary.record(
                    "out", "delivery", delivery.host, "ok" if result == "ok" else ("retry" if result == "retry" else "failed"),
                    actor=sender.uri if sender else None, activity_type=self._kind(delivery),
                    reason=None if result == "ok" else error)
        except Exception:
            log.exception("delivery %s to %s crashed", delivery.id, delivery.inbox_url)
        finally:
            self._in_flight.discard(delivery.id)
            self._total.release()

    async def _deliver(self, delivery: delivery_store.DueDelivery, key_id: str, pem: str) -> DeliveryOutcome:
        """Sign (the RSA operation in the signing pool when there is one) and send."""
        return await self.state.remote.client.deliver(
            delivery.inbox_url, delivery.body, key_id=key_id, private_key_pem=pem,
            rsa=self.signing.sign)

    def _kind(self, delivery: delivery_store.DueDelivery) -> str | None:
        """The activity's type, decoded once per activity (not once per inbox)."""
        try:
            return self._kinds[delivery.activity_id]
        except KeyError:
            kind = self._kinds[delivery.activity_id] = _activity_type(delivery.body)
            return kind

    async def _mark_soon(self) -> None:
        """The marker: every MARK_DELAY, what went through meanwhile is marked done in one transaction."""
        while self._delivered:
            if not self._stopping:
                await asyncio.sleep(MARK_DELAY)
            await self._mark_batch()

    async def _mark_delivered(self) -> None:
        """Mark every delivery that went through as done now (after the marker's batch in hand)."""
        if self._marker is not None and self._marker is not asyncio.current_task():
            await asyncio.wait([self._marker])  # one marker at a time; it takes what is queued
        while self._delivered:
            await self._mark_batch()

    async def _mark_batch(self) -> None:
        """Mark the deliveries that went through as done, many in one transaction (a group commit).
        Until then each row stays claimed; should the process die first, it falls due again when the
        claim runs out and is sent once more (delivery is at least once, as before)."""
        batch, self._delivered = self._delivered, []
        if not batch:
            return
        try:
            async with self.state.db.transaction() as tx:
                await delivery_store.deliveries_done(tx, batch, time.time())
        except Exception:
            log.exception("could not mark %d deliveries done; they are sent again when their claim ends",
                          len(batch))

    def _count(self, d: delivery_store.DueDelivery, result: str, refused: bool, partner: bool) -> None:
        """crosstalk_deliveries_total: outcome, and whether the host is an explicitly allowed partner."""
        if result == "ok":
            outcome = "delivered"
        elif refused:
            outcome = "refused"
        elif result == "retry":
            outcome = "retry" if d.attempts + 1 < MAX_ATTEMPTS else "gave_up"
        else:
            outcome = "failed"
        labels = (outcome, "partner" if partner else "other")
        counter = self._counters.get(labels)
        if counter is None:
            counter = self._counters[labels] = DELIVERIES.labels(*labels)
        counter.inc()

    async def _record(self, d: delivery_store.DueDelivery, status: int | None, result: str, error: str | None) -> None:
        now = time.time()
        attempts = d.attempts + 1
        if result == "ok" and d.host in self._healthy:
            # The common case: a healthy host took it. One row to mark, nothing else to change; the
            # deliveries that end meanwhile are marked in the same transaction.
            self._delivered.append((d.id, attempts, status))
            if self._marker is None or self._marker.done():
                self._marker = asyncio.get_running_loop().create_task(self._mark_soon())
            return
        host = await delivery_store.host(self.state.db, d.host) if result == "retry" else None
        async with self.state.db.transaction() as tx:
            if result == "ok":
                await delivery_store.delivery_done(tx, d.id, "done", attempts, now, status, None)
                await delivery_store.save_host(tx, d.host, consecutive_failures=0, circuit_open_until=0, unavailable=0,
                                          failure_days="[]", last_success_at=_today_iso())
                self._healthy.add(d.host)
                return
            self._healthy.discard(d.host)
            if result == "retry" and attempts < MAX_ATTEMPTS:
                await delivery_store.delivery_done(tx, d.id, "pending", attempts, now + retry_delay(attempts, self.scale),
                                              status, error)
            else:
                await delivery_store.delivery_done(tx, d.id, "failed", attempts, now, status, error)
            if result == "gone":
                await delivery_store.mark_inbox_owner_gone(tx, d.inbox_url)
            if result == "retry":
                failures = (host["consecutive_failures"] if host else 0) + 1
                days = set(msgspec.json.decode(host["failure_days"])) if host else set()
                days.add(datetime.now(UTC).strftime("%Y-%m-%d"))
                values: dict[str, object] = {"consecutive_failures": failures,
                                             "failure_days": msgspec.json.encode(sorted(days)[-30:]).decode()}
                if failures >= CIRCUIT_FAILURES:
                    values["circuit_open_until"] = now + CIRCUIT_SECONDS * self.scale
                    await delivery_store.postpone_host(tx, d.host, now + CIRCUIT_SECONDS * self.scale)
                if len(days) >= UNAVAILABLE_AFTER_DAYS:
                    values["unavailable"] = 1
                await delivery_store.save_host(tx, d.host, **values)
        log.info("delivery to %s: %s (%s) %s", d.inbox_url, result, status, error or "")  # failures only


def _today_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _activity_type(body: bytes) -> str | None:
    try:
        kind = msgspec.json.decode(body).get("type")
    except (msgspec.DecodeError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None
