"""The seams with more than one implementation, as typed protocols.

- Store / Reader / Tx: the database (SQLite, or PostgreSQL when database.url is set). Repositories in
  server/storage/ take a Reader for reads and a Tx inside a write transaction; nothing outside
  server/storage/ holds SQL. Each carries its `dialect` (server/storage/dialect.py) for the few
  constructs the engines spell differently.
- Bus: messages between the parts of an instance and, with a Redis or NATS adapter, between processes.
- Cache: a bounded cache that a bus message can invalidate.

Everything is assembled once at start-up (server/app.py) from the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from server.storage.dialect import Dialect

Params = Sequence[Any] | dict[str, Any]


class Row(Protocol):
    """A result row: by column name or position."""

    def __getitem__(self, key: int | str) -> Any: ...
    def keys(self) -> Iterable[str]: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


class Reader(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def fetchval(self, sql: str, params: Params = ()) -> Any: ...


class Tx(Reader, Protocol):
    """Statements inside one write transaction: committed together or not at all."""

    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...
    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` after the commit (never after a rollback)."""


class Store(Reader, Protocol):
    commits: int  # transactions this process has committed through this store so far

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def open(self) -> None:
        """Connect and apply pending migrations."""
    async def close(self) -> None: ...
    async def migrate(self, up_to: int | None = None) -> list[int]: ...
    async def schema_version(self) -> int: ...
    def latest_version(self) -> int:
        """The schema version this code expects."""
    def describe(self) -> str:
        """Which database this is, for people (no credentials)."""
    def start_maintenance(self) -> None:
        """Start the engine's background housekeeping, if it needs any (SQLite: WAL checkpoints)."""
    def read_snapshot(self) -> int | None:
        """The number of the snapshot this process's reads answer from until the event loop's turn
        ends or this process commits, taken now if none is open; None where reads share no snapshot
        (PostgreSQL, or SQLite when it cannot take one on the loop's thread)."""


class BusMessage(Protocol):
    topic: str


class EventQueue(Protocol):
    """What arrives for one subscriber, in order (asyncio.Queue's interface, one consumer)."""

    def put_nowait(self, item: Any) -> None:
        """Add an item; asyncio.QueueFull when the queue is full."""
    async def get(self) -> Any: ...
    def get_nowait(self) -> Any:
        """The next item; asyncio.QueueEmpty when there is none."""
    def qsize(self) -> int: ...
    def notify(self, listener: Callable[[], None] | None) -> None:
        """Call `listener` whenever an item arrives in the empty queue (a consumer that runs only
        while there is something to consume, instead of waiting)."""


class Subscription(Protocol):
    topics: set[str]

    @property
    def queue(self) -> EventQueue:
        """What arrives for this subscriber, in order."""

    def add(self, topic: str) -> None: ...
    def remove(self, topic: str) -> None: ...
    def close(self) -> None: ...
    def __aiter__(self) -> AsyncIterator[Any]: ...


class Bus(Protocol):
    """Publish/subscribe by topic. Delivery is at most once and fire-and-forget: durable work goes
    through the event outbox, the bus only tells live listeners (streams, caches) what happened."""

    def publish(self, message: Any) -> None: ...
    def deliver(self, message: Any) -> None:
        """Hand `message` to this process's subscribers only."""
    def subscribe(self, topics: Iterable[str] = ()) -> Subscription: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def problem(self) -> str | None:
        """What is wrong with the connection to other processes, or None."""


class Cache(Protocol):
    """A bounded cache with a name; `invalidate` is what a bus message calls."""

    name: str

    def get(self, key: Hashable) -> Any: ...
    def put(self, key: Hashable, value: Any) -> None: ...
    def invalidate(self, key: Hashable | None = None) -> None: ...


class RateCounter(Protocol):
    """Fixed-window counters for rate limits. `add` counts `amount` (negative to take back) for `key` in
    the window of length `period` seconds that holds `now`, and returns the window's total. Memory in
    one process today (server/ratelimit.py); a Redis adapter shares the counts between processes."""

    async def add(self, key: str, period: int, amount: int, now: float) -> int: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class StoredFile:
    """How to answer a request for a stored file (one of path, redirect and chunks is set)."""

    path: Path | None = None  # a local file: served by the web server itself
    redirect: str | None = None  # a URL the client may fetch it from (a signed object-store URL)
    size: int = 0  # with `chunks`: the length of the body
    chunks: AsyncIterator[bytes] | None = None  # the body, proxied from the object store


class FileStore(Protocol):
    """Where uploaded media live: a directory on this host, or an S3-compatible bucket shared by every
    host of the instance. Names are relative paths such as attachments/ab/ab12….jpg."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def write(self, files: list[tuple[str, bytes, str]]) -> None:
        """Store (name, data, content type) files: all of them, or none if one fails."""
    async def remove(self, names: list[str]) -> None:
        """Remove these files; missing ones are fine."""
    async def read(self, name: str) -> bytes | None: ...
    async def open(self, name: str) -> StoredFile | None:
        """What serving the file takes, or None when there is no such file."""
