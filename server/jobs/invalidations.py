"""Invalidations: telling every process sharing the database that something it may hold in memory
changed (a token revoked, a user's access changed, the domain rules edited).

`announce` writes a row in the caller's transaction, so the news is exactly as durable as the change,
and once committed publishes it on the bus for the processes listening there. Triggers write rows too
(every change to what a status or an account renders as, schema 0039). Every process reads new rows
twice a second (`poll`), so admin commands and processes without a shared bus are heard too, and
before serving a page from its rendering caches (`catch_up`), so that no page can show what changed
before the request came. Handlers must be idempotent: a process may hear the same news both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar

from server.bus.memory import StreamEvent
from server.ports import Bus, Store, Subscription, Tx
from server.state import Invalidation
from server.storage import invalidations as store

log = logging.getLogger("crosstalk.invalidations")
TOPIC = "_invalidate"
POLL_SECONDS = 0.5
KEPT_SECONDS = 3600.0
# Keys dropped lately, remembered so that a record read before its drop is not kept after it
# (`changed_since`); beyond this many, a reader that started earlier keeps nothing.
RECENT_KEPT = 20_000

Handler = Callable[[str], None]


class RequestReads:
    """One request's catch-up. A request is served as of its arrival: the first `catch_up` in it reads
    the feed, and later ones in the same request (the viewer's account, then the page's statuses)
    share that read while this process has committed nothing since, so that a request still sees
    what it wrote itself. Closed when the request ends: tasks it started may outlive it."""

    __slots__ = ("commits", "open")

    def __init__(self) -> None:
        self.commits = -1  # the store's commit count when the request's read began (-1: none yet)
        self.open = True


# The request being served, set by the HTTP middleware (streaming connections, which last for hours,
# have none: each event they render catches up on its own).
REQUEST_READS: ContextVar[RequestReads | None] = ContextVar("request_reads", default=None)


class Invalidations:
    def __init__(self, db: Store, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self.handlers: dict[str, list[Handler]] = {}
        self._position: store.FeedPosition | None = None
        self._reading: asyncio.Future[None] | None = None  # the feed read under way
        self._read_in: int | None = None  # the read snapshot the last feed read began in
        self._reads_started = 0
        self._reads_done = 0
        # Every key applied gets the next generation: a caller that read a record at generation g may
        # keep it if the key has not been applied since.
        self.generation = 0
        self._recent: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._forgotten = 0  # the newest generation no longer in _recent
        self._listener: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    def on(self, kind: Invalidation, handler: Handler) -> None:
        self.handlers.setdefault(kind, []).append(handler)

    async def announce(self, tx: Tx, kind: Invalidation, key: str = "") -> None:
        await store.append(tx, kind, key, time.time())
        tx.on_commit(lambda: self.bus.publish(StreamEvent(topic=TOPIC, name=kind, payload=key)))

    def apply(self, kind: str, key: str) -> None:
        self.generation += 1
        recent = self._recent
        recent[(kind, key)] = self.generation
        recent.move_to_end((kind, key))
        if len(recent) > RECENT_KEPT:
            self._forgotten = recent.popitem(last=False)[1]
        for handler in self.handlers.get(kind, ()):
            try:
                handler(key)
            except Exception:
                log.exception("invalidation handler for %s failed", kind)

    def changed_since(self, kind: str, key: str, generation: int) -> bool:
        """Whether `kind`/`key` may have been applied after `generation` (what a record read at that
        generation must not be kept in memory after)."""
        applied = self._recent.get((kind, key))
        return (applied if applied is not None else self._forgotten) > generation

    async def start(self) -> None:
        """Listen on the bus, and read the feed from now on."""
        if self._position is None:
            self._position = await store.position_now(self.db)
        self._subscription = self.bus.subscribe([TOPIC])
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="invalidations")

    async def _listen(self) -> None:
        assert self._subscription is not None
        async for message in self._subscription:
            self.apply(message.name, str(message.payload or ""))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._subscription is not None:
            self._subscription.close()

    async def poll(self) -> None:
        await self.catch_up()

    async def catch_up(self) -> int:
        """Apply every row committed before this call (in a request: before the request's first
        call, if this process has committed nothing since; see RequestReads), and answer the
        generation reached."""
        request = REQUEST_READS.get()
        commits = self.db.commits
        if request is not None and request.open and request.commits == commits:
            return self.generation
        # Every read until the snapshot ends answers from it, and what the feed held there has been
        # applied if a read of it began once the snapshot was taken (several requests share one
        # snapshot at load: SQLite's inline reads, server/storage/db.py).
        snapshot = self.db.read_snapshot()
        if snapshot is not None and snapshot == self._read_in:
            generation = self.generation
        else:
            generation = await self._read_feed()
            self._read_in = snapshot
        if request is not None and request.open:
            request.commits = commits
        return generation

    async def _read_feed(self) -> int:
        """Apply every row committed before this call. Callers at the same time share reads: one that
        began after this call did is as good as its own.

        A caller waits only while a read is really under way, not behind other waiters as with a
        lock: a lock's waiters queue up behind each other at load, and each wait costs a suspension
        and a turn of the event loop even where the read it waited for took none (public timeline:
        0.15 -> 0.135 ms of CPU per request)."""
        ticket = self._reads_started
        while (reading := self._reading) is not None:
            await asyncio.shield(reading)  # a waiter cancelled must not cancel the read for the others
            if self._reads_done > ticket:
                return self.generation
        self._reading = done = asyncio.get_running_loop().create_future()
        try:
            self._reads_started += 1
            started = self._reads_started
            if self._position is None:  # a process that never started: it holds nothing yet
                self._position = await store.position_now(self.db)
            while True:
                rows, self._position = await store.since(self.db, self._position)
                for row in rows:
                    self.apply(row.kind, row.key)
                if len(rows) < 1000:
                    break
            self._reads_done = started  # not on failure: a read that failed helps nobody
            return self.generation
        finally:
            self._reading = None
            done.set_result(None)

    async def prune(self) -> None:
        async with self.db.transaction() as tx:
            await store.prune(tx, time.time() - KEPT_SECONDS)
