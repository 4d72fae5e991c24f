"""What every part of a running instance shares: settings, storage, the event bus, background tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
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
        self.federation: Any = None  # server.services.remote.Federation once started
        self.delivery_worker: Any = None
        self.inbox_worker: Any = None
        self.resolve_account: Any = None  # acct → Account, through WebFinger when federation runs
        self.resolve_url: Any = None
        self.boundary: Any = None  # server.services.boundary.Boundary: the one place for federation policy
        self.base_url = config.base_url
        self.domain = config.domain
        self._tasks: set[asyncio.Task[Any]] = set()
        # token hash → (Token, expiry); revocation clears it, so a short life only bounds staleness.
        self.token_cache: dict[str, Any] = {}
        # Long-running background workers by name (e.g. "delivery"); /readyz needs every one alive.
        # A worker loop should check `stopping` between attempts, so shutdown lets it finish the current one.
        self.workers: dict[str, asyncio.Task[Any]] = {}
        self.stopping = asyncio.Event()
        self.shutdown_deadline: float | None = None  # time.monotonic() by which shutdown must end
        self.in_flight = 0  # HTTP requests whose handler is running (kept by the request-id middleware)
        # Async callables run before each /metrics scrape to refresh gauges read from the database.
        self.metric_probes: list[Callable[[], Awaitable[None]]] = []

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

    def add_worker(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start a named long-running worker; it counts for readiness until shutdown stops it."""
        task = asyncio.get_running_loop().create_task(coro, name=f"worker:{name}")
        self.workers[name] = task
        task.add_done_callback(self._worker_done)
        return task

    def _worker_done(self, task: asyncio.Task[Any]) -> None:
        if self.stopping.is_set() or task.cancelled():
            return
        exc = task.exception()
        log.error("worker %s stopped unexpectedly", task.get_name(), exc_info=exc)

    def dead_workers(self) -> list[str]:
        return sorted(name for name, task in self.workers.items() if task.done())

    async def stop_workers(self, grace: float) -> None:
        """Ask workers to stop (they see `stopping`), wait up to `grace` for their current attempt,
        then cancel what is left. Work is queued in the database, so a cancelled attempt resumes
        at the next start."""
        self.stopping.set()
        running = [t for t in self.workers.values() if not t.done()]
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=max(0.0, grace))
        for task in pending:
            log.warning("worker %s did not stop in time; cancelling it", task.get_name())
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
