"""SQLite connection handling: one writer (serialised by a lock) and a few readers, all in WAL mode.

This module and its siblings under server/storage are the only places that hold SQL. A
PostgreSQL backend would provide the same Database surface.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import aiosqlite

from server.metrics import DB_READ, DB_TRANSACTION
from server.storage.migrations import MIGRATIONS

log = logging.getLogger("crosstalk.storage")

Params = Sequence[Any] | dict[str, Any]


async def _connect(path: Path, readonly: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute("PRAGMA busy_timeout = 10000")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")
    # 4 MB of page cache per connection: the OS page cache holds the rest, and idle RSS stays small.
    await conn.execute("PRAGMA cache_size = -4000")
    await conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        await conn.execute("PRAGMA query_only = ON")
    return conn


class Tx:
    """Statements inside one write transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        cur = await self._conn.execute(sql, params)
        count = cur.rowcount
        await cur.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self._conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        # One trip to the connection's thread instead of three (execute, fetchall, close).
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Database:
    def __init__(self, path: Path, readers: int = 2) -> None:
        self.path = path
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(readers))
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _connect(self.path, readonly=False)
        await self._writer.execute("PRAGMA journal_mode = WAL")
        # Checkpoints run in the background (below); the automatic one, which would run inside a
        # writer's commit and stall the next writer, is only a safety net for a very large WAL.
        await self._writer.execute("PRAGMA wal_autocheckpoint = 20000")
        await self._writer.execute("PRAGMA journal_size_limit = 67108864")
        await self.migrate()
        self._readers = [await _connect(self.path, readonly=True) for _ in range(self._reader_count)]

    def start_background_checkpoints(self, every: float = 2.0) -> None:
        """Copy the WAL back into the database off the write path, on a connection of its own."""
        async def loop() -> None:
            self._checkpointer = await _connect(self.path, readonly=False)
            while True:
                await asyncio.sleep(every)
                try:
                    await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("background checkpoint failed: %s", exc)
        self._checkpoint_task = asyncio.get_running_loop().create_task(loop(), name="sqlite checkpoints")

    async def close(self) -> None:
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
            self._checkpoint_task = None
        if self._checkpointer is not None:
            await self._checkpointer.close()
            self._checkpointer = None
        for conn in self._readers:
            await conn.close()
        self._readers = []
        if self._writer is not None:
            await self._writer.execute("PRAGMA optimize")
            await self._writer.close()
            self._writer = None

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction. Returns applied versions."""
        assert self._writer is not None
        w = self._writer
        await w.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                        "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')))")
        async with w.execute("SELECT version FROM schema_migrations") as cur:
            done = {row[0] for row in await cur.fetchall()}
        applied = []
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            log.info("applying migration %d: %s", version, name)
            # executescript commits first, so wrap the script itself in BEGIN/COMMIT to keep it atomic.
            try:
                await w.executescript(f"BEGIN;\n{sql}\nINSERT INTO schema_migrations (version, name) "
                                      f"VALUES ({int(version)}, '{name.replace(chr(39), '')}');\nCOMMIT;")
            except Exception:
                await w.execute("ROLLBACK") if w.in_transaction else None
                raise
            applied.append(version)
        return applied

    async def schema_version(self) -> int:
        return int(await self.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations") or 0)

    @staticmethod
    def latest_version() -> int:
        return max(v for v, _, _ in MIGRATIONS)

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise RuntimeError("database is not open")
        return self._readers[next(self._next_reader)]

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        started = perf_counter()
        rows = await self._reader().execute_fetchall(sql, params)  # one thread hop, as in fetchall
        DB_READ.observe(perf_counter() - started)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        started = perf_counter()
        # One trip to the connection's thread instead of three (execute, fetchall, close); the
        # hand-offs were about a fifth of the event loop's CPU on the home timeline.
        rows = list(await self._reader().execute_fetchall(sql, params))
        DB_READ.observe(perf_counter() - started)
        return rows

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        assert self._writer is not None, "database is not open"
        started = perf_counter()
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._writer)
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")
            finally:
                DB_TRANSACTION.observe(perf_counter() - started)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def backup_to(self, target: Path, pages_per_step: int = 256,
                        progress: Any = None) -> None:
        """Consistent online copy through SQLite's backup API."""
        assert self._writer is not None
        dest = await aiosqlite.connect(target)
        try:
            await self._writer.backup(dest, pages=pages_per_step, progress=progress)
        finally:
            await dest.close()
