"""PostgreSQL through asyncpg: a connection pool (lent out by `_Lender`) for reads and write transactions.

Storage modules write SQL with SQLite's `?` placeholders (also numbered, `?1`); this module turns each
statement text into PostgreSQL's `$n` form once and caches it, following SQLite's numbering rules
(a bare `?` is one more than the largest number used so far), so both engines bind the same
parameter list. Everything else that differs between the engines is in server/storage/dialect.py.

Transactions run at READ COMMITTED, PostgreSQL's default. Unlike SQLite, several may write at once:
storage functions that read rows and then change them lock those rows (`dialect.for_update`) or use
a single atomic statement (an upsert, `DELETE ... RETURNING`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, nullcontext, suppress
from functools import lru_cache
from time import monotonic, perf_counter
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from server.metrics import DB_READ, DB_TRANSACTION
from server.ports import Params, Row
from server.storage.dialect import POSTGRES
from server.storage.errors import DatabaseUnavailable, IntegrityError
from server.storage.migrations import OUTSIDE_TRANSACTION, Migration, load, statements

log = logging.getLogger("crosstalk.storage")
T = TypeVar("T")

# One key for the whole cluster: processes starting at once take turns, and each applies what the
# ones before it left to do (usually nothing).
MIGRATION_LOCK = 0x63726F7373  # "cross"
MIGRATION_LOCK_POLL = 0.2  # seconds between tries for the migration lock
# What a broken connection looks like: the server went away, refused us, or is shutting down (a
# connection the server terminated while it sat idle in the pool can also fail with the driver's
# InternalClientError on its next use).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.InternalClientError)

# A quoted string or identifier, a comment, or a placeholder (`?`, `?NNN`).
_SCAN = re.compile(r"'[^']*'|\"[^\"]*\"|--[^\n]*|/\*.*?\*/|\?(\d*)", re.S)


@lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """`?` and `?NNN` placeholders as `$n`, numbered the way SQLite numbers them."""
    largest = 0

    def placeholder(match: re.Match[str]) -> str:
        nonlocal largest
        digits = match.group(1)
        if digits is None:
            return match.group(0)  # inside a literal, identifier or comment
        number = int(digits) if digits else largest + 1
        largest = max(largest, number)
        return f"${number}"

    return _SCAN.sub(placeholder, sql)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with. asyncpg's default sends one more statement after
    every pooled query (unlock advisory locks, close cursors, UNLISTEN, RESET ALL): a second round trip
    for each read, which doubled PostgreSQL's work on a timeline page. Nothing here leaves such session
    state behind (the migration lock is released where it is taken; no SET, LISTEN or cursor outlives
    its transaction), and the pool still rolls back a transaction left open before calling this."""


def _rows_changed(status: str) -> int:
    """The row count in a command tag such as 'UPDATE 3' or 'INSERT 0 1'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _args(params: Params) -> tuple[Any, ...]:
    if isinstance(params, dict):
        raise TypeError("named parameters are not supported; use ? placeholders")
    return tuple(_storable(p) for p in params)


def _storable(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL (SQLite's can): such input, never meaningful, gets U+FFFD in its
    place instead of failing the statement."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _translate_error(exc: BaseException) -> BaseException | None:
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(f"PostgreSQL is unavailable: {exc.__class__.__name__}: {exc}".rstrip(": "))
    return None


async def _translated(step: Awaitable[None]) -> None:
    """BEGIN or COMMIT, with its failure (a lost connection, a deferred constraint) translated."""
    try:
        await step
    except Exception as exc:
        raise _translate_error(exc) or exc from exc


class PostgresTx:
    """Statements inside one write transaction, on one connection."""

    dialect = POSTGRES

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.committed: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed (never if it rolls back)."""
        self.committed.append(callback)

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return _rows_changed(await self._conn.execute(to_postgres(sql), *_args(params)))
        except Exception as exc:
            raise _translate_error(exc) or exc from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [_args(r) for r in rows]
        if not batch:
            return
        try:
            await self._conn.executemany(to_postgres(sql), batch)
        except Exception as exc:
            raise _translate_error(exc) or exc from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            row: Row | None = await self._conn.fetchrow(to_postgres(sql), *_args(params))
            return row
        except Exception as exc:
            raise _translate_error(exc) or exc from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(await self._conn.fetch(to_postgres(sql), *_args(params)))
        except Exception as exc:
            raise _translate_error(exc) or exc from exc

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        try:
            return await self._conn.fetchval(to_postgres(sql), *_args(params))
        except Exception as exc:
            raise _translate_error(exc) or exc from exc


def describe_url(url: str) -> str:
    """host:port/database of a URL, without its credentials (for messages and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}/{parts.path.lstrip('/') or parts.username or 'postgres'}"


def _open(conn: Any) -> bool:
    """The pool takes back a connection the moment it closes (the server ended it, say), even one lent
    out: it is then detached, and asking it anything fails."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


def _usable(conn: Any) -> bool:
    """Open, with no transaction left open."""
    return _open(conn) and not conn.is_in_transaction()


# A connection nobody used for this long goes back to the pool, which closes it (asyncpg's own default
# for the connections it holds); the pool closes one given back after RETURNED_SECONDS unless it is
# borrowed again.
IDLE_SECONDS = 300.0
RETURNED_SECONDS = 10.0


class _Lender:
    """Lends the connections of asyncpg's pool, which it borrows and keeps while they are used. Taking
    one from a list and putting it back costs the client a microsecond; the pool's own acquire and
    release cost 20-35 us a statement (a task shields every release, a timeout wraps every acquire):
    a home timeline request on PostgreSQL took 0.29 ms of the server's CPU through the pool and 0.26
    here. The pool still opens, resets and closes the connections: one that is closed, or whose work
    failed, goes back to it, and the next borrower gets a fresh one. Reads, transactions and
    whole-database work all borrow here, so at most `size` are ever out."""

    def __init__(self, pool: asyncpg.Pool, size: int, idle_seconds: float = IDLE_SECONDS) -> None:
        self._pool = pool
        self._size = size
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[Any, float]] = []  # (connection, idle since), the freshest last
        self._out = 0  # borrowed from the pool: idle here or lent
        self._waiters: deque[asyncio.Future[Any]] = deque()  # each gets a connection, or None: borrow one
        self._returning: set[asyncio.Task[None]] = set()
        self._trimmer: asyncio.TimerHandle | None = None
        self._closing = False

    async def take(self) -> Any:
        while self._idle:
            conn = self._idle.pop()[0]
            if _usable(conn):
                return conn
            self.discard(conn)  # the server ended it while it sat here
        if self._out >= self._size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():  # handed over as this waiter was cancelled
                    self._pass_on(waiter.result())
                raise
            if conn is not None:
                return conn
            # None: a connection went back to the pool, and its place is this waiter's.
        else:
            self._out += 1
        try:
            return await self._pool.acquire()
        except BaseException:
            self._pass_on(None)
            raise

    def give_back(self, conn: Any) -> None:
        """A connection whose work ended cleanly (no transaction left open) is lent again."""
        if self._closing or not _usable(conn):
            self.discard(conn)
        else:
            self._pass_on(conn)

    def discard(self, conn: Any) -> None:
        """Back to the pool, which waits for a cancelled statement, rolls back or closes as needed."""
        task = asyncio.get_running_loop().create_task(self._return(conn))
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)
        self._pass_on(None)

    async def _return(self, conn: Any) -> None:
        with suppress(Exception):  # one that closed is the pool's already (see _usable)
            await self._pool.release(conn)

    def _pass_on(self, conn: Any) -> None:
        """`conn` (or, with None, the right to borrow one more from the pool) to the first waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._out -= 1
            return
        self._idle.append((conn, monotonic()))
        if self._trimmer is None:
            self._trimmer = asyncio.get_running_loop().call_later(self._idle_seconds, self._trim)

    def _trim(self) -> None:
        """Connections idle for IDLE_SECONDS go back to the pool, the freshest one excepted."""
        self._trimmer = None
        now = monotonic()
        stale = 0
        while stale < len(self._idle) - 1 and self._idle[stale][1] <= now - self._idle_seconds:
            stale += 1
        for conn, _ in self._idle[:stale]:
            self.discard(conn)
        del self._idle[:stale]
        if len(self._idle) > 1 and not self._closing:
            self._trimmer = asyncio.get_running_loop().call_later(
                max(0.0, self._idle[0][1] + self._idle_seconds - now), self._trim)

    async def close(self) -> None:
        """Every connection back to the pool (those lent go back when their work ends)."""
        self._closing = True
        if self._trimmer is not None:
            self._trimmer.cancel()
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            self.discard(conn)
        while self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)


class PostgresDatabase:
    dialect = POSTGRES

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self._pool_size = pool_size
        self.commits = 0  # since the store opened
        self._pool: asyncpg.Pool | None = None
        self._lender: _Lender | None = None
        self.migrations: list[Migration] = load("postgres")

    def describe(self) -> str:
        return f"PostgreSQL database {describe_url(self.url)}"

    async def open(self) -> None:
        await self.connect()
        await self.migrate()

    async def connect(self) -> None:
        """The pool alone, without migrating (backup and restore read and write the schema themselves)."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self._pool_size, statement_cache_size=1024, timeout=10,
                server_settings={"application_name": "crosstalk"}, reset=_keep_session,
                max_inactive_connection_lifetime=RETURNED_SECONDS)
            self._lender = _Lender(self._pool, self._pool_size)
        except (TimeoutError, *_UNAVAILABLE, asyncpg.PostgresError, ValueError) as exc:
            # Refused, unknown host or database, bad credentials, a malformed URL: one line that says so.
            raise DatabaseUnavailable(f"cannot connect to {self.describe()}: {exc.__class__.__name__}: {exc}"
                                      ) from None

    def start_maintenance(self) -> None:
        """Nothing to schedule: PostgreSQL's autovacuum does its own housekeeping."""

    def read_snapshot(self) -> None:
        """None: each read takes its own snapshot."""
        return None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            lender, self._lender = self._lender, None
            try:
                if lender is not None:
                    await lender.close()
                await pool.close()
            except Exception:  # a pool whose server went away: nothing left to close politely
                pool.terminate()

    def _open_lender(self) -> _Lender:
        if self._lender is None:
            raise RuntimeError("database is not open")
        return self._lender

    @asynccontextmanager
    async def _borrowed(self) -> AsyncIterator[Any]:
        """A connection for the block; given back when it ends (to the pool if the block failed)."""
        lender = self._open_lender()
        conn = await lender.take()
        try:
            yield conn
        except BaseException:
            lender.discard(conn)
            raise
        lender.give_back(conn)

    async def migrate(self, up_to: int | None = None) -> list[int]:
        """Apply pending migrations (up to `up_to`), each in its own transaction (or none: see
        OUTSIDE_TRANSACTION), while holding the cluster-wide migration lock. Returns the versions applied."""
        applied = []
        async with self._borrowed() as conn:
            # Waited for by polling, not by pg_advisory_lock: a session blocked in that call is a
            # transaction, and CREATE INDEX CONCURRENTLY in the holder's migration waits for every
            # transaction to end (a deadlock, which PostgreSQL breaks by failing one of them).
            while True:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK):
                    break
                await asyncio.sleep(MIGRATION_LOCK_POLL)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TEXT NOT NULL DEFAULT"
                    " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))")
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in self.migrations:
                    if version in done or (up_to is not None and version > up_to):
                        continue
                    log.info("applying migration %d: %s", version, name)
                    outside = sql.startswith(OUTSIDE_TRANSACTION)
                    async with nullcontext() if outside else conn.transaction():
                        for statement in statements(sql) if outside else [sql]:
                            await conn.execute(statement)
                        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                           version, name)
                    applied.append(version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        return applied

    async def schema_version(self) -> int:
        return int(await self.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations") or 0)

    def latest_version(self) -> int:
        return max(v for v, _, _ in self.migrations)

    async def _read(self, method: str, sql: str, params: Params) -> Any:
        """A read on a pooled connection (tried again on another if it meets a broken one: harmless to
        repeat)."""
        query, args = to_postgres(sql), _args(params)
        started = perf_counter()
        conn, result = await self._on_working_connection(lambda conn: getattr(conn, method)(query, *args))
        self._open_lender().give_back(conn)
        DB_READ.observe(perf_counter() - started)
        return result

    async def _on_working_connection(self, step: Callable[[Any], Awaitable[T]]) -> tuple[Any, T]:
        """`step` on a borrowed connection, and the connection, still lent. A connection that broke
        while it sat idle (the server restarted, a proxy dropped it) goes back to the pool, which
        replaces it, and `step` (one that is harmless to repeat) is tried on another: as many times as
        there may be such connections, and one more."""
        lender = self._open_lender()
        last = self._pool_size + 1
        for attempt in range(1, last + 1):
            try:
                conn = await lender.take()
            except Exception as exc:
                raise _translate_error(exc) or exc from exc
            try:
                return conn, await step(conn)
            except BaseException as exc:
                lender.discard(conn)
                if attempt < last and isinstance(exc, _UNAVAILABLE):
                    continue
                if isinstance(exc, Exception):
                    raise _translate_error(exc) or exc from exc
                raise
        raise AssertionError("unreachable")

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._read("fetchrow", sql, params)
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._read("fetch", sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        started = perf_counter()
        lender = self._open_lender()
        conn, tx = await self._begin()
        statements = PostgresTx(conn)
        try:
            try:
                yield statements
            except BaseException:
                if _open(conn):
                    with suppress(Exception):  # a connection that broke mid-way: the pool discards it
                        await tx.rollback()
                raise
            await _translated(tx.commit())
            self.commits += 1
        finally:
            lender.give_back(conn)  # to the pool if the transaction is still open (a rollback failed)
            DB_TRANSACTION.observe(perf_counter() - started)
        for callback in statements.committed:
            callback()

    async def _begin(self) -> tuple[asyncpg.Connection, Any]:
        """A pooled connection in a new transaction (BEGIN on a broken connection is tried on another:
        nothing has run yet)."""
        async def begin(conn: asyncpg.Connection) -> Any:
            tx = conn.transaction()
            await tx.start()
            return tx
        return await self._on_working_connection(begin)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A raw connection, for whole-database work in server/storage (backup, restore)."""
        async with self._borrowed() as conn:
            yield conn
