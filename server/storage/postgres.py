"""PostgreSQL through asyncpg: a connection pool for reads and write transactions.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, nullcontext, suppress
from functools import lru_cache
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from server.metrics import DB_READ, DB_TRANSACTION
from server.ports import Params, Row
from server.storage.dialect import POSTGRES
from server.storage.errors import DatabaseUnavailable, IntegrityError
from server.storage.migrations import OUTSIDE_TRANSACTION, Migration, load, statements

log = logging.getLogger("crosstalk.storage")

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


class PostgresDatabase:
    dialect = POSTGRES

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self._pool_size = pool_size
        self.commits = 0  # since the store opened
        self._pool: asyncpg.Pool | None = None
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
                server_settings={"application_name": "crosstalk"}, reset=_keep_session)
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
            try:
                await pool.close()
            except Exception:  # a pool whose server went away: nothing left to close politely
                pool.terminate()

    def _open_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def migrate(self, up_to: int | None = None) -> list[int]:
        """Apply pending migrations (up to `up_to`), each in its own transaction (or none: see
        OUTSIDE_TRANSACTION), while holding the cluster-wide migration lock. Returns the versions applied."""
        applied = []
        async with self._open_pool().acquire() as conn:
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
        """A read on a pooled connection. A connection that broke while it sat in the pool (the server
        restarted, a proxy dropped it) is replaced by the pool, and the read, harmless to repeat,
        is tried once more on another."""
        query, args = to_postgres(sql), _args(params)
        for attempt in (1, 2):
            started = perf_counter()
            try:
                result = await getattr(self._open_pool(), method)(query, *args)
            except Exception as exc:
                if attempt == 1 and isinstance(exc, _UNAVAILABLE):
                    continue
                raise _translate_error(exc) or exc from exc
            DB_READ.observe(perf_counter() - started)
            return result
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
        pool = self._open_pool()
        conn, tx = await self._begin(pool)
        statements = PostgresTx(conn)
        try:
            try:
                yield statements
            except BaseException:
                if not conn.is_closed():
                    with suppress(Exception):  # a connection that broke mid-way: the pool discards it
                        await tx.rollback()
                raise
            await _translated(tx.commit())
            self.commits += 1
        finally:
            await pool.release(conn)
            DB_TRANSACTION.observe(perf_counter() - started)
        for callback in statements.committed:
            callback()

    async def _begin(self, pool: asyncpg.Pool) -> tuple[asyncpg.Connection, Any]:
        """A pooled connection in a new transaction. BEGIN on a connection that broke in the pool is
        retried once on another (nothing has run yet)."""
        for attempt in (1, 2):
            try:
                conn = await pool.acquire()
            except Exception as exc:
                raise _translate_error(exc) or exc from exc
            tx = conn.transaction()
            try:
                await tx.start()
                return conn, tx
            except Exception as exc:
                await pool.release(conn)
                if attempt == 1 and isinstance(exc, _UNAVAILABLE):
                    continue
                raise _translate_error(exc) or exc from exc
        raise AssertionError("unreachable")

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A raw connection, for whole-database work in server/storage (backup, restore)."""
        async with self._open_pool().acquire() as conn:
            yield conn
