"""The transactional outbox: domain events recorded with the change, dispatched after the commit.

`record` writes the event into the caller's transaction. When this process dispatches events (the
`outbox` job runs here), the row is written already claimed by this process and handed to the
dispatcher the moment the transaction commits, so the usual path costs no extra query before the
subscribers run. Rows whose claim ran out (their process died, or none claimed them: a CLI command, a
process with the job paused) are swept up every second by any process that dispatches.

Events are dispatched in batches (those committed meanwhile, up to BATCH). Subscribers run one after
another, in the order they were subscribed, each taking the batch's events in order: one at a time, or
all in one call when it subscribed with `subscribe_batch` (one read of what they share, one
transaction for what they write). Subscribers must be idempotent: a crash between a subscriber's work
and the row being marked dispatched means the event is handed to every subscriber again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from server.domain import events as domain
from server.domain.events import DomainEvent
from server.ids import new_id
from server.metrics import EVENTS_DISPATCHED
from server.ports import Store, Tx
from server.services import event_reads
from server.storage import events as store

log = logging.getLogger("crosstalk.events")

Subscriber = Callable[[int, DomainEvent], Awaitable[None]]
BatchSubscriber = Callable[[list[tuple[int, DomainEvent]]], Awaitable[None]]
InTransaction = Callable[[Tx, list[tuple[int, DomainEvent]]], Awaitable[object]]
SWEEP_SECONDS = 1.0
BATCH = 100
MAX_ATTEMPTS = 12  # with the backoff below, about an hour and a half of retries


def retry_delay(attempts: int) -> float:
    return float(min(1800, 2 ** attempts))


class Outbox:
    def __init__(self, db: Store, holder: str, claim_seconds: float, dispatching: bool) -> None:
        self.db = db
        self.holder = holder
        self.claim_seconds = claim_seconds
        self.dispatching = dispatching  # this process runs the dispatcher (the `outbox` job)
        # (name, handler of a list of events, whether it takes many in one call)
        self.subscribers: list[tuple[str, BatchSubscriber, bool]] = []
        self.in_transaction: list[tuple[str, InTransaction]] = []
        self._ready: list[tuple[int, DomainEvent, float]] = []  # committed, claimed by us, not dispatched
        self._wake = asyncio.Event()
        self._stopping = False
        self._busy = False
        self._sweep_now = False

    def subscribe(self, name: str, subscriber: Subscriber) -> None:
        """Run `subscriber` for every event after its transaction commits."""
        async def one(events: list[tuple[int, DomainEvent]]) -> None:
            (event_id, event), = events
            await subscriber(event_id, event)

        self.subscribers.append((name, one, False))

    def subscribe_batch(self, name: str, subscriber: BatchSubscriber) -> None:
        """Run `subscriber` for the events of each batch together, in order, after they commit. Should
        it raise, each event of the batch is handed to it alone, so that one bad event holds back
        only itself."""
        self.subscribers.append((name, subscriber, True))

    def subscribe_in_transaction(self, name: str, handler: InTransaction) -> None:
        """Run `handler` inside the transaction that records events, with the events it records at
        once (`record_many`): for what must be visible together with the change itself
        (notifications). It must be quick and idempotent."""
        self.in_transaction.append((name, handler))

    async def record(self, tx: Tx, event: DomainEvent) -> int:
        """Write `event` in the transaction `tx`; it is dispatched once (and only if) `tx` commits."""
        return (await self.record_many(tx, [event]))[0]

    async def record_many(self, tx: Tx, events: list[DomainEvent]) -> list[int]:
        """`record` for several events of one change (a run of stored posts, say): one write, and the
        in-transaction handlers take them together. Their ids, in order."""
        recorded = [(new_id(), event) for event in events]
        now = time.time()
        claimed = self.dispatching
        until = now + self.claim_seconds if claimed else 0.0
        await store.insert(tx, [(event_id, str(type(event).__struct_config__.tag), domain.encode(event))
                                for event_id, event in recorded], now, self.holder if claimed else None, until)
        for _, handler in self.in_transaction:
            await handler(tx, recorded)
        if claimed:
            def committed() -> None:
                self._ready.extend((event_id, event, until) for event_id, event in recorded)
                self._wake.set()

            tx.on_commit(committed)
        return [event_id for event_id, _ in recorded]

    # -- the dispatcher: a Worker of the job runtime ------------------------------------------------

    async def run(self) -> None:
        next_sweep = 0.0
        while not self._stopping:
            try:
                if self._ready:
                    batch, self._ready = self._ready[:BATCH], self._ready[BATCH:]
                    await self._dispatch_ready(batch)
                    continue
                if self._sweep_now or time.monotonic() >= next_sweep:
                    self._sweep_now = False
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                    if await self._sweep():
                        next_sweep = 0.0  # there may be more
                        continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.01, next_sweep - time.monotonic()))
                except TimeoutError:
                    pass
            except Exception:
                log.exception("event dispatch loop error")
                await asyncio.sleep(1.0)

    def wake(self) -> None:
        """Events were recorded elsewhere: sweep now."""
        self._sweep_now = True
        self._wake.set()

    def request_stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def wait_idle(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        while self._busy and time.monotonic() < deadline:  # noqa: ASYNC110 - polled only at shutdown
            await asyncio.sleep(0.02)

    async def _dispatch_ready(self, batch: list[tuple[int, DomainEvent, float]]) -> None:
        now = time.time()
        if batch[0][2] - now < self.claim_seconds / 2:
            # Waited long in this process: keep the claims, or another process would take them over.
            async with self.db.transaction() as tx:
                await store.extend_claims(tx, self.holder, [e[0] for e in batch], now + self.claim_seconds)
        await self._dispatch([(event_id, event, 0) for event_id, event, _ in batch])

    async def _sweep(self) -> bool:
        """Claim and dispatch events nobody is dispatching; True if there were any."""
        now = time.time()
        async with self.db.transaction() as tx:
            claimed = await store.claim_due(tx, self.holder, now, now + self.claim_seconds, BATCH)
        if not claimed:
            return False
        batch: list[tuple[int, DomainEvent, int]] = []
        for row in claimed:
            try:
                batch.append((row.id, domain.decode(row.payload), row.attempts))
            except Exception as exc:  # a payload this version cannot read: keep it, and say so
                log.error("event %s cannot be decoded (%s); left undispatched", row.id, exc)
                async with self.db.transaction() as tx:
                    await store.mark_failed(tx, row.id, f"undecodable: {exc}", now + 86400)
        log.info("dispatching %d event(s) left over by another process or an earlier run", len(batch))
        await self._dispatch(batch)
        return True

    async def _dispatch(self, batch: list[tuple[int, DomainEvent, int]]) -> None:
        self._busy = True
        done: list[int] = []
        try:
            # The subscribers read the posts they are told of once for the whole batch (event_reads).
            with event_reads.shared_reads():
                going = batch  # the events every subscriber so far took
                for name, subscriber, together in self.subscribers:
                    if together and len(going) > 1:
                        try:
                            await subscriber([(event_id, event) for event_id, event, _ in going])
                            continue
                        except Exception as exc:
                            log.warning("a batch of %d events failed in %s (%s: %s); each is handed over alone",
                                        len(going), name, exc.__class__.__name__, exc)
                    going = [item for item in going if await self._hand(name, subscriber, item)]
            EVENTS_DISPATCHED.labels("ok").inc(len(going))
            done = [event_id for event_id, _, _ in going]
        finally:
            if done:
                async with self.db.transaction() as tx:
                    await store.mark_dispatched(tx, done, time.time())
            self._busy = False

    async def _hand(self, name: str, subscriber: BatchSubscriber, item: tuple[int, DomainEvent, int]) -> bool:
        """Hand one event to one subscriber; on failure, schedule its retry (or give it up): False."""
        event_id, event, attempts = item
        try:
            await subscriber([(event_id, event)])
            return True
        except Exception as exc:
            EVENTS_DISPATCHED.labels("failed").inc()
            attempts += 1
            error = f"{name}: {exc.__class__.__name__}: {exc}"
            if attempts >= MAX_ATTEMPTS:
                log.error("event %s (%s) failed %d times; giving up: %s", event_id, type(event).__name__,
                          attempts, error, exc_info=exc)
                async with self.db.transaction() as tx:
                    await store.mark_failed(tx, event_id, error, time.time())
                    await store.mark_dispatched(tx, [event_id], time.time())
                return False
            log.warning("event %s (%s) failed in %s; retrying later", event_id, type(event).__name__, name,
                        exc_info=exc)
            async with self.db.transaction() as tx:
                await store.mark_failed(tx, event_id, error, time.time() + retry_delay(attempts))
            return False
