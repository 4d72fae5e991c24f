"""SQLite write transactions begin and commit on the event loop's thread (no trip to the writer's
thread), and still wait, off the loop, for another process that holds the file's write lock; a commit
that fails leaves no transaction open behind it."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from server.storage.db import Database
from server.storage.errors import IntegrityError

HOLD_SECONDS = 0.6
NOTES = ["CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"]
# One row per number up to ?: long enough for the inline reader's budget to cut it short after its first rows.
COUNTING = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) SELECT x FROM n"
# Another process: takes the write lock, says so, holds it a while, writes a row and commits.
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("INSERT INTO notes (body) VALUES ('from the other process')")
conn.execute("COMMIT")
"""


@asynccontextmanager
async def opened(path: Path, schema: list[str]) -> AsyncIterator[Database]:
    """A store on `path` with these tables made, closed at the end."""
    db = Database(path, readers=1)
    await db.open()
    try:
        async with db.transaction() as tx:
            for statement in schema:
                await tx.execute(statement)
        yield db
    finally:
        await db.close()


def test_a_transaction_waits_for_another_process_without_holding_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "crosstalk.sqlite3"

    async def run() -> tuple[float, float, int, list[str]]:
        async with opened(path, NOTES) as db:
            holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, str(path), str(HOLD_SECONDS),
                                                          stdout=asyncio.subprocess.PIPE)
            try:
                assert holder.stdout is not None
                assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"locked\n"
                ticks = 0
                longest_gap = 0.0

                async def tick() -> None:
                    nonlocal ticks, longest_gap
                    last = time.monotonic()
                    while True:
                        await asyncio.sleep(0.01)
                        now = time.monotonic()
                        longest_gap = max(longest_gap, now - last)
                        last = now
                        ticks += 1

                ticker = asyncio.create_task(tick())
                started = time.monotonic()
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO notes (body) VALUES (?)", ("from this process",))
                waited = time.monotonic() - started
                ticker.cancel()
            finally:
                assert await asyncio.wait_for(holder.wait(), 10) == 0
            rows = [r[0] for r in await db.fetchall("SELECT body FROM notes ORDER BY id")]
            return waited, longest_gap, ticks, rows

    waited, longest_gap, ticks, rows = asyncio.run(run())
    assert waited >= HOLD_SECONDS / 2  # it did wait for the other process's lock...
    assert longest_gap < 0.2 and ticks >= 10  # ...and the event loop went on meanwhile
    assert rows == ["from the other process", "from this process"]


def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    async def run() -> list[int]:
        async with opened(tmp_path / "crosstalk.sqlite3", [
                "CREATE TABLE parents (id INTEGER PRIMARY KEY)",
                "CREATE TABLE children (parent_id INTEGER NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
        ]) as db:
            # The foreign key is checked at COMMIT, which therefore fails.
            with pytest.raises(IntegrityError):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO children (parent_id) VALUES (1)")
            async with db.transaction() as tx:  # would fail: "cannot start a transaction within a transaction"
                await tx.execute("INSERT INTO parents (id) VALUES (1)")
                await tx.execute("INSERT INTO children (parent_id) VALUES (1)")
            return [r[0] for r in await db.fetchall("SELECT parent_id FROM children")]

    assert asyncio.run(run()) == [1]


def test_other_tasks_get_a_turn_between_transactions(tmp_path: Path) -> None:
    """Transactions no longer wait for a thread, so a task writing many in a row (a fan-out, 50 feeds
    each) would keep the loop to itself: each gives the others a turn, and streams hear of each chunk."""
    async def run() -> list[str]:
        async with opened(tmp_path / "crosstalk.sqlite3", ["CREATE TABLE notes (id INTEGER PRIMARY KEY)"]) as db:
            order: list[str] = []

            async def writer() -> None:
                for n in range(5):
                    async with db.transaction() as tx:
                        await tx.execute("INSERT INTO notes (id) VALUES (?)", (n,))
                    order.append(f"transaction {n}")

            async def other() -> None:
                order.append("other task")

            await asyncio.gather(asyncio.create_task(writer()), asyncio.create_task(other()))
            return order

    order = asyncio.run(run())
    assert order.index("other task") < order.index("transaction 1"), order  # its turn came with the first


def test_inline_reads_of_one_turn_share_a_snapshot_that_ends_with_the_turn_or_a_commit(tmp_path: Path) -> None:
    """The loop thread's reads in one turn of the event loop read one snapshot (one set of WAL locks): a
    commit made meanwhile by another process shows from the next turn on, one made by this process
    to the next read."""
    path = tmp_path / "crosstalk.sqlite3"

    async def run() -> None:
        async with opened(path, NOTES) as db:
            assert db._inline is not None
            db._inline.budget = 60.0  # every read inline, however busy the machine (a read moved to a
            db._inline.since_yield = -100  # thread, or a turn given inside one, takes a new snapshot)
            other = sqlite3.connect(path, isolation_level=None)
            try:
                async def count() -> int:
                    return int((await db.fetchall("SELECT count(*) FROM notes"))[0][0])

                assert await count() == 0
                other.execute("INSERT INTO notes (body) VALUES ('from another process')")
                assert await count() == 0  # the same turn: the snapshot taken before that commit
                await asyncio.sleep(0)
                assert await count() == 1  # a new turn, a new snapshot
                other.execute("INSERT INTO notes (body) VALUES ('again')")
                assert await count() == 1
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO notes (body) VALUES ('ours')")
                assert await count() == 3
            finally:
                other.close()

    asyncio.run(run())


def test_a_snapshot_begins_and_ends_whenever_the_progress_handler_looks(tmp_path: Path) -> None:
    """SQLite calls the progress handler on a count of steps that runs across statements, so it may
    call it during the snapshot's BEGIN or COMMIT: neither may be cut short by a deadline left from an
    earlier read (a BEGIN cut short was a 500; a COMMIT cut short would leave the snapshot open)."""
    path = tmp_path / "crosstalk.sqlite3"

    async def run() -> None:
        async with opened(path, NOTES) as db:
            inline = db._inline
            assert inline is not None
            inline.conn.set_progress_handler(inline._over_budget, 1)  # a look at every step
            inline.budget = 60.0  # no read of its own runs out of time, however busy the machine
            for _ in range(3):
                inline.since_yield = 0  # no turn given inside the read
                inline._deadline = 0.0  # long past, as a deadline is after a quiet spell
                assert [tuple(r) for r in await db.fetchall("SELECT count(*) FROM notes")] == [(0,)]
                assert inline.conn.in_transaction
                inline._deadline = 0.0
                await asyncio.sleep(0)  # the turn ends, and the snapshot with it
                assert not inline.conn.in_transaction

    asyncio.run(run())


def test_a_read_interrupted_once_is_not_compiled_again_on_every_later_run(tmp_path: Path) -> None:
    """An inline read cut short by its budget is answered by a reader thread, and the later runs of the
    same statement on the loop's thread use its prepared form again. (Python's sqlite3 left the cached
    statement marked in use after the interruption, for good: every later run compiled it afresh,
    15 us more for the public timeline's query.)"""
    path = tmp_path / "crosstalk.sqlite3"

    async def run() -> None:
        async with opened(path, NOTES) as db:
            inline = db._inline
            assert inline is not None
            inline.budget = 0.0  # the first look at the clock interrupts: after its first rows
            rows = await db.fetchall(COUNTING, (20_000,))
            assert [r[0] for r in rows] == list(range(1, 20_001))  # from a reader thread
            assert inline._strikes == {COUNTING: 1}  # it was interrupted on the loop's thread

            inline.budget = 60.0  # no read runs out of time from here on, however busy the machine
            compiled: list[object] = []
            # SQLite asks the authorizer only while it compiles a statement (setting one expires the
            # prepared ones: the next run compiles once more).
            inline.conn.set_authorizer(lambda *action: compiled.append(action) or sqlite3.SQLITE_OK)
            runs_that_compiled = 0
            for _ in range(5):
                inline.since_yield = 0
                before = len(compiled)
                assert len(await db.fetchall(COUNTING, (20_000,))) == 20_000
                assert inline._strikes == {COUNTING: 1}  # each of these ran on the loop's thread
                runs_that_compiled += len(compiled) > before
            assert runs_that_compiled <= 1

    asyncio.run(run())


def test_a_read_interrupted_while_no_new_connection_opens_is_still_answered(tmp_path: Path) -> None:
    """Should the inline reader's new connection fail to open, the interrupted read is answered all the
    same (by a reader thread) and the inline reader keeps reading on the connection it had."""
    path = tmp_path / "crosstalk.sqlite3"

    async def run() -> None:
        async with opened(path, NOTES) as db:
            inline = db._inline
            assert inline is not None
            kept = inline.conn

            def cannot_open() -> sqlite3.Connection:
                raise sqlite3.OperationalError("unable to open database file")

            inline._connect = cannot_open  # type: ignore[method-assign]
            inline.budget = 0.0
            assert [r[0] for r in await db.fetchall(COUNTING, (20_000,))] == list(range(1, 20_001))
            assert inline._strikes == {COUNTING: 1} and inline.conn is kept
            inline.budget = 60.0
            inline.since_yield = 0
            assert [tuple(r) for r in await db.fetchall("SELECT count(*) FROM notes")] == [(0,)]
            assert inline._strikes == {COUNTING: 1}

    asyncio.run(run())
