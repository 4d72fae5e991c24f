"""Invalidations: telling every process sharing the database that something it may hold in memory
changed (a token revoked, a user's access changed, the domain rules edited).

`announce` writes a row in the caller's transaction, so the news is exactly as durable as the change,
and once committed publishes it on the bus for the processes listening there. Every process also
reads new rows twice a second (`poll`), so admin commands and processes without a shared bus are
heard too. Handlers must be idempotent: a process may hear the same news both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from server.bus.memory import StreamEvent
from server.ports import Bus, Store, Subscription, Tx
from server.state import Invalidation
from server.storage import invalidations as store

log = logging.getLogger("crosstalk.invalidations")
TOPIC = "_invalidate"
POLL_SECONDS = 0.5
KEPT_SECONDS = 3600.0

Handler = Callable[[str], None]


class Invalidations:
    def __init__(self, db: Store, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self.handlers: dict[str, list[Handler]] = {}
        self._last_id = 0
        self._listener: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    def on(self, kind: Invalidation, handler: Handler) -> None:
        self.handlers.setdefault(kind, []).append(handler)

    async def announce(self, tx: Tx, kind: Invalidation, key: str = "") -> None:
        await store.append(tx, kind, key, time.time())
        tx.on_commit(lambda: self.bus.publish(StreamEvent(topic=TOPIC, name=kind, payload=key)))

    def apply(self, kind: str, key: str) -> None:
        for handler in self.handlers.get(kind, ()):
            try:
                handler(key)
            except Exception:
                log.exception("invalidation handler for %s failed", kind)

    async def start(self) -> None:
        """Listen on the bus, and read the feed from now on."""
        self._last_id = await store.latest_id(self.db)
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
        for row in await store.since(self.db, self._last_id):
            self._last_id = row.id
            self.apply(row.kind, row.key)

    async def prune(self) -> None:
        async with self.db.transaction() as tx:
            await store.prune(tx, time.time() - KEPT_SECONDS)
