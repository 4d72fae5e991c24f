"""What every part of a running instance shares: settings, the store, the bus, the event outbox, the
job runtime and the caches. Built in one place (server/app.py for `serve`, server/cli.py for admin
commands); nothing here is a module-level global.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from server.caches import Caches
from server.domain.events import DomainEvent
from server.domain.records import Account, Status
from server.ports import Bus, FileStore, Store, Tx
from server.ratelimit import RateLimits
from server.settings import Settings

if TYPE_CHECKING:
    from server.jobs.runtime import JobRuntime
    from server.services.boundary import Boundary
    from server.services.federation.client import Remote
    from server.services.push import WebPush
    from server.workers.delivery import DeliveryWorker
    from server.workers.inbox import InboxWorker

log = logging.getLogger("crosstalk")


class EventRecorder(Protocol):
    async def record(self, tx: Tx, event: DomainEvent) -> int:
        """Write `event` in `tx`; it is dispatched to the subscribers after the commit."""

    async def record_many(self, tx: Tx, events: list[DomainEvent]) -> list[int]:
        """`record` for several events of one change, written together."""


class Invalidation(StrEnum):
    """What every process must drop from memory when it changes (server/jobs/invalidations.py)."""

    ACCESS = "access"  # key: an account id; its tokens, password, suspension or role changed
    BOUNDARY = "boundary"  # the domain rules changed
    TRENDS = "trends"  # an admin reviewed a trending item: counted trends are dropped
    # Written by triggers only (schema 0039), key: the id. What the status or account renders as
    # changed, or the row went: its rendering-cache entry is dropped (server/services/loaders.py).
    STATUS = "status"
    ACCOUNT = "account"


class Broadcaster(Protocol):
    async def announce(self, tx: Tx, kind: Invalidation, key: str = "") -> None:
        """Tell every process, once `tx` commits, to drop what it holds about `kind`/`key`."""

    async def catch_up(self) -> int:
        """Hear every invalidation committed before this call (in this process's handlers); answer the
        generation reached, for `changed_since`."""

    def changed_since(self, kind: str, key: str, generation: int) -> bool:
        """Whether `kind`/`key` may have been heard after `generation`: a record read at that
        generation must then not be kept."""


AccountResolver = Callable[[str], Awaitable[Account | None]]  # "user@domain" → the account, via WebFinger
UrlResolver = Callable[[str], Awaitable[Account | Status | None]]  # a URL → the account or post it names


class State:
    boundary: Boundary  # set by the assembly (server/app.py build_state)
    # Set by the app assembly (server/app.py) in serving processes; admin commands run without them.
    remote: Remote  # the outgoing HTTP client and remote look-up caches (server/services/federation)
    delivery_worker: DeliveryWorker
    inbox_worker: InboxWorker
    push: WebPush  # set by the assembly in serving processes (server/app.py)

    def __init__(self, settings: Settings, db: Store, bus: Bus, events: EventRecorder, jobs: JobRuntime,
                 caches: Caches, invalidations: Broadcaster, rate_limits: RateLimits, files: FileStore) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.events = events
        self.jobs = jobs
        self.caches = caches
        self.invalidations = invalidations
        self.rate_limits = rate_limits
        self.files = files  # uploaded media: a local directory or an S3-compatible bucket
        # Image decoding and re-encoding, two at a time (a decoded picture can be large).
        self.image_workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="images")
        self.base_url = settings.base_url
        self.domain = settings.domain
        self.resolve_account: AccountResolver | None = None  # set when federation runs
        self.resolve_url: UrlResolver | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = jobs.stopping  # set when the process shuts down
        self.draining = False  # shutting down: not ready, still serving (settings.shutdown_drain_seconds)
        self.shutdown_deadline: float | None = None  # time.monotonic() by which shutdown must end
        self.in_flight = 0  # HTTP requests whose handler is running (kept by the request-id middleware)
        # Async callables run before each /metrics scrape to refresh gauges read from the database.
        self.metric_probes: list[Callable[[], Awaitable[None]]] = []

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Run best-effort work off the request path (nothing durable: that is what events are for);
        failures are logged, and shutdown waits for it."""
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
