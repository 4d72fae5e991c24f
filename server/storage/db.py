"""SQLite connection handling: one writer (serialised by a lock) and a few readers, all in WAL mode.

Reads first run on the event loop's own thread, on a read-only connection whose progress handler
interrupts any statement still running after `inline_budget` seconds (2 ms by default); an
interrupted read, or one that would wait for a lock, runs again on a reader thread, and statements
that were interrupted go straight to the readers for a while. Most reads take a few microseconds,
where the hop to a reader thread and back costs about fifty (and the GIL changing hands), so this
is most of the read path's overhead gone while no read holds the loop for longer than the budget.

Statements inside write transactions run on the loop's thread too, on the writer connection (ours
alone while the transaction holds the write lock). A write cannot be interrupted (that would roll the
whole transaction back), so a write statement that took longer than the budget is sent to the
writer's thread from then on, for a while (InlineWrites). BEGIN IMMEDIATE and COMMIT run on the loop's
thread too (81 -> 25 us of CPU for a one-row transaction); a BEGIN that would wait for another process's
write lock, and commits that outgrew the budget, go to the writer's thread (Database._begin, _commit).

This module and its siblings under server/storage are the only places that hold SQL. The PostgreSQL
backend (server/storage/postgres.py) provides the same surface; server/storage/backend.py picks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any

import aiosqlite

from server.metrics import DB_READ, DB_TRANSACTION
from server.ports import Params, Row
from server.storage.dialect import SQLITE
from server.storage.errors import IntegrityError
from server.storage.migrations import Migration, load

log = logging.getLogger("crosstalk.storage")
INLINE_BUDGET = 0.002  # seconds a read may run on the event loop before it is moved to a reader thread
PROGRESS_STEPS = 4000  # virtual machine steps between two looks at the clock (tens of microseconds)
SLOW_SQL_SECONDS = 60.0  # how long a statement that was interrupted goes straight to the reader threads
SLOW_SQL_KEPT = 512
STRIKES = 3  # interruptions before a statement goes straight to the reader threads for a while
BUSY_TIMEOUT_MS = 10_000  # how long a connection waits for another process's lock
YIELD_EVERY = 16  # inline reads in a row before the reading task gives others a turn



# Page cache per connection, in KiB: the OS page cache holds the rest, and idle RSS stays small. The
# inline reader serves most reads; the reader threads only those that outgrow its budget. Its reads
# are random index walks over a file far larger than any cache here (a home feed read cost the same
# with 1 MiB as with 2 MiB: 13-20 us on the 2 GB bench file), so a bigger cache only adds RSS.
WRITER_CACHE_KB = 2000
INLINE_CACHE_KB = 1000
THREAD_READER_CACHE_KB = 500
CHECKPOINTER_CACHE_KB = 100


async def _connect(path: Path, readonly: bool, cache_kb: int) -> aiosqlite.Connection:
    # check_same_thread off: the writer's statements may run on the event loop's thread (SqliteTx).
    conn = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute(f"PRAGMA cache_size = -{int(cache_kb)}")
    await conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        await conn.execute("PRAGMA query_only = ON")
    return conn


class InlineWrites:
    """Which statements of write transactions run on the event loop's thread: all of them, until one
    takes longer than the budget STRIKES times within SLOW_SQL_SECONDS; that statement then goes to
    the writer's thread for a while. (The budget is wall-clock time, like the inline reader's: on a
    busy machine a quick statement is now and then descheduled past it, and one such accident would
    send it, in every transaction, through a thread hop for a minute.) COMMIT is judged the same way;
    BEGIN IMMEDIATE goes to the thread only when another process holds the write lock."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self._slow: dict[str, float] = {}
        self._strikes: dict[str, tuple[int, float]] = {}  # statement → (times over the budget, since when)

    def allows(self, sql: str) -> bool:
        until = self._slow.get(sql)
        if until is None:
            return True
        if until > perf_counter():
            return False
        del self._slow[sql]
        return True

    def took(self, sql: str, seconds: float) -> None:
        if seconds > self.budget:
            now = perf_counter()
            count, since = self._strikes.get(sql, (0, now))
            if now - since > SLOW_SQL_SECONDS:  # strikes count within a while, not over the process's life
                count, since = 0, now
            if count + 1 < STRIKES:
                if len(self._strikes) >= SLOW_SQL_KEPT:
                    self._strikes.clear()
                self._strikes[sql] = (count + 1, since)
                return
            self._strikes.pop(sql, None)
            log.debug("write statement took %.1f ms on the event loop; sent to the writer thread for a while: %s",
                      seconds * 1000, sql[:200])
            if len(self._slow) >= SLOW_SQL_KEPT:
                self._slow.pop(next(iter(self._slow)))
            self._slow[sql] = perf_counter() + SLOW_SQL_SECONDS


class SqliteTx:
    """Statements inside one write transaction: on the event loop's thread where `inline` allows
    (the writer is ours alone while the transaction lasts, so no other thread uses the connection),
    otherwise on the writer connection's thread."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection, inline: InlineWrites | None = None) -> None:
        self._conn = conn
        self._inline = inline
        # aiosqlite's own connection object (opened with check_same_thread=False for this).
        self._raw: sqlite3.Connection | None = conn._conn if inline is not None else None
        self.committed: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed (never if it rolls back)."""
        self.committed.append(callback)

    def _here(self, sql: str) -> sqlite3.Connection | None:
        inline = self._inline
        return self._raw if inline is not None and inline.allows(sql) else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        raw = self._here(sql)
        try:
            if raw is not None:
                assert self._inline is not None
                started = perf_counter()
                cursor = raw.execute(sql, params)
                count = cursor.rowcount
                cursor.close()
                self._inline.took(sql, perf_counter() - started)
                return count
            cur = await self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        count = cur.rowcount
        await cur.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        raw = self._here(sql)
        try:
            if raw is not None:
                assert self._inline is not None
                started = perf_counter()
                raw.executemany(sql, rows).close()
                self._inline.took(sql, perf_counter() - started)
                return
            await self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        raw = self._here(sql)
        try:
            if raw is not None:
                assert self._inline is not None
                started = perf_counter()
                rows = raw.execute(sql, params).fetchall()
                self._inline.took(sql, perf_counter() - started)
                return rows
            # One trip to the connection's thread instead of three (execute, fetchall, close).
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.IntegrityError as exc:  # INSERT ... RETURNING
            raise IntegrityError(str(exc)) from exc

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class InlineReader:
    """Reads on the event loop's thread, each bounded by a time budget (see the module docstring).

    The budget is wall-clock time (a thread's CPU clock costs a system call on some virtual machines,
    too much to read often), so a busy machine can interrupt a read that is quick in itself: a
    statement goes straight to the reader threads only after STRIKES interruptions."""

    def __init__(self, path: Path, budget: float) -> None:
        self.path = path
        self.conn = self._connect()
        self.budget = budget
        self._deadline = 0.0
        self._strikes: dict[str, int] = {}  # statement → times it was interrupted
        self._slow: dict[str, float] = {}  # statement → until when it goes straight to the threads
        self.since_yield = 0  # reads answered without giving other tasks a turn
        self.snapshots = 0  # snapshots taken so far; the open one's number

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 0")  # never wait for a lock here: the reader threads do
        conn.execute(f"PRAGMA cache_size = -{INLINE_CACHE_KB}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA query_only = ON")
        conn.set_progress_handler(self._over_budget, PROGRESS_STEPS)
        return conn

    # Python's sqlite3 keeps prepared statements in a cache, each marked in use while it runs; the mark
    # is cleared only by a reset that succeeds, and the first reset after a step that failed (an
    # interruption by the budget, a lock) answers that failure. So a statement interrupted once stays
    # marked for the life of the connection, and every later execution of it prepares it afresh (the
    # public timeline's query then cost 28 us instead of 13); on a busy machine each interruption caught
    # one more. The connection, and with it its cache, is replaced instead (a few milliseconds, once).
    def _replace_connection(self) -> None:
        try:
            fresh = self._connect()
        except sqlite3.Error:  # kept as it is: its statements compile afresh, but it reads
            log.exception("could not open a new connection for the inline reader")
            return
        old, self.conn = self.conn, fresh
        try:
            old.close()  # its read transaction, if one is open, ends with it
        except sqlite3.Error:
            log.exception("closing the inline reader's connection failed")

    def _over_budget(self) -> bool:
        return perf_counter() > self._deadline

    def fetchall(self, sql: str, params: Params) -> list[Row] | None:
        """The rows, or None when the read must run on a reader thread instead."""
        if sql in self._slow:
            if self._slow[sql] > perf_counter():
                return None
            del self._slow[sql]
        # SQLite counts steps for the progress handler across statements, so it may look at the clock
        # during BEGIN as well: the deadline is set first.
        self._deadline = perf_counter() + self.budget
        try:
            if not self.conn.in_transaction:
                self._open_snapshot()
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            self._replace_connection()
            message = str(exc)
            if "interrupted" not in message and "locked" not in message and "busy" not in message:
                raise
            if "interrupted" in message:
                self._strike(sql)
            return None

    # A statement on its own is a read transaction of its own, and each one takes and drops WAL locks
    # with fcntl() calls: 38 % of the inline reads' time on the bench's home timeline. The reads of one
    # turn of the event loop share one transaction instead, ended by a callback queued when it begins,
    # which runs before anything that became ready after it; so every read in it serves a request that
    # came (or a message that arrived) before the snapshot was taken. This process's own commits end it
    # at once (Database.end_snapshot), so that a request sees what it wrote.
    def _open_snapshot(self) -> None:
        self.conn.execute("BEGIN")
        try:
            # BEGIN takes no snapshot (the first read does): reading the schema's cookie takes it now,
            # so that a snapshot's number stands for one state of the database (`snapshot`).
            self.conn.execute("PRAGMA schema_version").fetchall()
        except sqlite3.Error:
            self.conn.execute("ROLLBACK")
            raise
        self.snapshots += 1
        asyncio.get_running_loop().call_soon(self.end_snapshot)

    def snapshot(self) -> int | None:
        """The number of the turn's snapshot, taken now if none is open; None if it cannot be taken
        here (a lock held elsewhere, a busy machine's interruption)."""
        if not self.conn.in_transaction:
            self._deadline = perf_counter() + self.budget
            try:
                self._open_snapshot()
            except sqlite3.OperationalError:
                self._replace_connection()
                return None
        return self.snapshots

    def end_snapshot(self) -> None:
        """End the turn's read transaction. Never interrupted (a read transaction ends at once), and
        never left open: a snapshot that outlived its turn would serve old data to every later read."""
        self._deadline = float("inf")
        try:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")
        except sqlite3.ProgrammingError:  # closed meanwhile
            pass
        except sqlite3.Error:
            log.exception("ending the inline reader's snapshot failed; rolling it back")
            self.conn.execute("ROLLBACK")

    def _strike(self, sql: str) -> None:
        if len(self._strikes) >= SLOW_SQL_KEPT:
            self._strikes.clear()
        strikes = self._strikes[sql] = self._strikes.get(sql, 0) + 1
        if strikes >= STRIKES:
            del self._strikes[sql]
            if len(self._slow) >= SLOW_SQL_KEPT:
                self._slow.pop(next(iter(self._slow)))
            self._slow[sql] = perf_counter() + SLOW_SQL_SECONDS

    def close(self) -> None:
        self.end_snapshot()
        self.conn.close()


class Database:
    dialect = SQLITE

    def __init__(self, path: Path, readers: int = 2, inline_budget: float = INLINE_BUDGET,
                 write_budget: float = INLINE_BUDGET) -> None:
        self.path = path
        self._inline_budget = inline_budget
        self._inline: InlineReader | None = None
        self._inline_writes = InlineWrites(write_budget) if write_budget > 0 else None
        self.migrations: list[Migration] = load("sqlite")
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = itertools.cycle(range(readers))
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self.commits = 0  # since the store opened
        self.background_checkpoints = 0

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _connect(self.path, readonly=False, cache_kb=WRITER_CACHE_KB)
        await self._writer.execute("PRAGMA journal_mode = WAL")
        # Checkpoints run in the background (below); the automatic one, which would run inside a
        # writer's commit and stall the next writer, is only a safety net for a very large WAL.
        await self._writer.execute("PRAGMA wal_autocheckpoint = 20000")
        await self._writer.execute("PRAGMA journal_size_limit = 67108864")
        await self.migrate()
        cache_kb = THREAD_READER_CACHE_KB if self._inline_budget > 0 else INLINE_CACHE_KB
        self._readers = [await _connect(self.path, readonly=True, cache_kb=cache_kb) for _ in range(self._reader_count)]
        if self._inline_budget > 0:
            self._inline = InlineReader(self.path, self._inline_budget)

    def describe(self) -> str:
        return f"database {self.path}"

    def start_maintenance(self) -> None:
        self.start_background_checkpoints()

    def start_background_checkpoints(self, every: float = 2.0, busy_every: float = 0.25, busy_commits: int = 20) -> None:
        """Copy the WAL back into the database off the write path, on a connection of its own: every
        `every` seconds, and every `busy_every` seconds while more than `busy_commits` transactions
        commit in between (a burst of fan-outs writes megabytes a second; left for two seconds, the WAL
        outgrows the writer's automatic checkpoint, which then runs inside a commit and stalls every
        writer waiting behind it)."""
        async def loop() -> None:
            opening = asyncio.ensure_future(_connect(self.path, readonly=False, cache_kb=CHECKPOINTER_CACHE_KB))
            try:
                self._checkpointer = await asyncio.shield(opening)
            except asyncio.CancelledError:
                # Closed while the connection was being opened (a start-up refused at once): let the
                # opening thread finish and close it, or it answers later into a closed event loop.
                with contextlib.suppress(Exception):
                    await (await opening).close()
                raise
            last, commits_then = monotonic(), self.commits
            while True:
                await asyncio.sleep(busy_every)
                if self.commits - commits_then < busy_commits and monotonic() - last < every:
                    continue
                last, commits_then = monotonic(), self.commits
                try:
                    await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.background_checkpoints += 1
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
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._writer is not None:
            try:
                await self._writer.execute("PRAGMA optimize")
            except sqlite3.Error as exc:  # only statistics: another process may hold the lock it needs
                log.info("PRAGMA optimize skipped at close: %s", exc)
            finally:
                await self._writer.close()
                self._writer = None

    async def migrate(self, up_to: int | None = None) -> list[int]:
        """Apply pending migrations in order (up to `up_to`), each in its own transaction. Returns
        the versions applied."""
        assert self._writer is not None
        w = self._writer
        await w.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                        "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')))")
        async with w.execute("SELECT version FROM schema_migrations") as cur:
            done = {row[0] for row in await cur.fetchall()}
        applied = []
        for version, name, sql in self.migrations:
            if version in done or (up_to is not None and version > up_to):
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

    def latest_version(self) -> int:
        return max(v for v, _, _ in self.migrations)

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise RuntimeError("database is not open")
        return self._readers[next(self._next_reader)]

    def read_snapshot(self) -> int | None:
        return self._inline.snapshot() if self._inline is not None else None

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return next(iter(await self.fetchall(sql, params)), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        started = perf_counter()
        inline = self._inline
        rows = inline.fetchall(sql, params) if inline is not None else None
        if rows is not None:
            assert inline is not None
            inline.since_yield += 1
            if inline.since_yield >= YIELD_EVERY:  # a long run of reads still lets other tasks in
                inline.since_yield = 0
                await asyncio.sleep(0)
        else:
            # One trip to the connection's thread instead of three (execute, fetchall, close).
            rows = list(await self._reader().execute_fetchall(sql, params))
        DB_READ.observe(perf_counter() - started)
        return rows

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        assert self._writer is not None, "database is not open"
        started = perf_counter()
        async with self._write_lock:
            await self._begin()
            tx = SqliteTx(self._writer, self._inline_writes)
            try:
                yield tx
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                try:
                    await self._commit()
                except BaseException:  # disk full, say: the transaction is still open, and must not stay so
                    if self._writer._conn.in_transaction:
                        await self._writer.execute("ROLLBACK")
                    raise
                self.commits += 1
                if self._inline is not None:  # later reads must see this commit, in this turn too
                    self._inline.end_snapshot()
            finally:
                DB_TRANSACTION.observe(perf_counter() - started)
        for callback in tx.committed:
            callback()
        # Other tasks get a turn after each transaction, as they did while BEGIN and COMMIT went to the
        # writer's thread: a fan-out writes 50 readers' feeds a transaction, and the streams of each
        # chunk's readers are told between chunks, not after the last (1,000 streams: p99 58 ms with
        # the turn, 160 without).
        await asyncio.sleep(0)

    def _raw_writer(self) -> sqlite3.Connection | None:
        """The writer's connection for use on the event loop's thread (only while the write lock is held,
        when no statement of it runs on its own thread), or None when writes are not run inline."""
        if self._inline_writes is None or self._writer is None:
            return None
        return self._writer._conn

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE on the event loop's thread when the file's write lock is free, which is
        always, but for other processes writing the same file: their lock would be waited for here,
        so the inline attempt does not wait (busy_timeout 0), and on "locked" the statement goes to
        the writer's thread, which waits for it. Each trip to that thread and back costs tens of
        microseconds and the GIL changing hands twice, for a statement that itself takes two."""
        raw = self._raw_writer()
        if raw is not None:
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            finally:
                raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        assert self._writer is not None
        await self._writer.execute("BEGIN IMMEDIATE")

    async def _commit(self) -> None:
        """COMMIT on the event loop's thread while commits stay within the inline budget. In WAL mode,
        with synchronous = NORMAL and the checkpoints made elsewhere, a commit appends the transaction's
        pages to the WAL and waits for nothing; one that outgrew the budget (the automatic checkpoint,
        a safety net, runs inside a commit) sends later commits to the writer's thread for a while."""
        raw = self._raw_writer()
        inline = self._inline_writes
        try:
            if raw is not None and inline is not None and inline.allows("COMMIT"):
                started = perf_counter()
                raw.execute("COMMIT")
                inline.took("COMMIT", perf_counter() - started)
                return
            assert self._writer is not None
            await self._writer.execute("COMMIT")
        except sqlite3.IntegrityError as exc:  # a deferred foreign key
            raise IntegrityError(str(exc)) from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)
