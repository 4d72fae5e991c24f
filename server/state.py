"""What every part of a running instance shares: settings, storage, the event bus, background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from server.config import Config
from server.events import EventBus
from server.services.outbound import Outbound
from server.storage.db import Database

log = logging.getLogger("crosstalk")


class State:
    def __init__(self, config: Config, db: Database) -> None:
        self.config = config
        self.db = db
        self.bus = EventBus()
        self.outbound: Outbound = Outbound()
        self.base_url = config.base_url
        self.domain = config.domain
        self._tasks: set[asyncio.Task[Any]] = set()
        # token hash → (Token, expiry); revocation clears it, so a short life only bounds staleness.
        self.token_cache: dict[str, Any] = {}

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Run work off the request path; failures are logged, and shutdown waits for it."""
        task = asyncio.get_running_loop().create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, grace: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
