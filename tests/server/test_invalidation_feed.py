"""The invalidation feed as one process reads it (server/jobs/invalidations.py): read once per read
snapshot, heard in the first snapshot taken after a row's commit, and shared by callers that arrive
while a read is under way, without any of them waiting behind the others."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from server.bus.memory import MemoryBus
from server.jobs import invalidations as feed_reader
from server.jobs.invalidations import Invalidations
from server.state import Invalidation
from server.storage import invalidations as feed
from server.storage.db import Database


async def _opened(path: Path) -> tuple[Database, Invalidations, list[str]]:
    """A migrated store whose inline reads all stay inline, and a started reader of its feed that
    records the status keys it applies."""
    db = Database(path, readers=1)
    await db.open()
    assert db._inline is not None
    db._inline.budget = 60.0  # every read inline, however busy the machine
    db._inline.since_yield = -10_000  # and no turn given inside one
    reader = Invalidations(db, MemoryBus())
    await reader.start()
    heard: list[str] = []
    reader.on(Invalidation.STATUS, heard.append)
    return db, reader, heard


def _append(path: Path, key: str) -> None:
    """A row committed by another writer of the database (another process)."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("INSERT INTO invalidations (kind, key, created_at) VALUES ('status', ?, 0)", (key,))
    finally:
        other.close()


class _CountedReads:
    """The store's feed reads, counted; each waits for `gate` first when one is given (a read that
    takes a while: on a reader thread, or from PostgreSQL)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gate: asyncio.Event | None = None) -> None:
        self.count = 0
        real_since = feed.since

        async def since(db: Database, position: feed.FeedPosition, limit: int = 1000
                        ) -> tuple[list[feed.Invalidation], feed.FeedPosition]:
            self.count += 1
            if gate is not None:
                await gate.wait()
            return await real_since(db, position, limit)

        monkeypatch.setattr(feed_reader.store, "since", since)


def test_a_read_snapshot_is_taken_when_asked_for_and_lasts_until_the_turn_or_a_commit_ends_it(tmp_path: Path) -> None:
    path = tmp_path / "crosstalk.sqlite3"

    async def run() -> None:
        db, reader, _ = await _opened(path)
        try:
            async def count() -> int:
                return int(await db.fetchval("SELECT count(*) FROM invalidations"))

            await asyncio.sleep(0)  # a turn with no snapshot yet
            first = db.read_snapshot()
            assert first is not None
            _append(path, "1")  # after the snapshot was taken, before any read in it
            assert await count() == 0  # the snapshot is the database as it was when asked for
            assert db.read_snapshot() == first
            await asyncio.sleep(0)
            second = db.read_snapshot()
            assert second not in (None, first)
            assert await count() == 1
            async with db.transaction() as tx:  # this process's commit ends the snapshot at once
                await feed.append(tx, "status", "2", 0)
            assert db.read_snapshot() not in (None, first, second)
            assert await count() == 2
        finally:
            await reader.close()
            await db.close()

    asyncio.run(run())


def test_the_feed_is_read_once_a_snapshot_and_a_row_is_heard_in_the_next(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "crosstalk.sqlite3"
    reads = _CountedReads(monkeypatch)

    async def run() -> None:
        db, reader, heard = await _opened(path)
        try:
            await reader.catch_up()
            assert reads.count == 1
            _append(path, "1")
            await reader.catch_up()  # the same snapshot, which cannot show the row (nor what it changed)
            assert (reads.count, heard) == (1, [])
            await asyncio.sleep(0)
            await reader.catch_up()  # a new snapshot: read, and the row heard
            assert (reads.count, heard) == (2, ["1"])
            async with db.transaction() as tx:  # this process's own change, heard in the same turn
                await reader.announce(tx, Invalidation.STATUS, "2")
            await reader.catch_up()
            assert reads.count == 3 and heard[1:2] == ["2"]
        finally:
            await reader.close()
            await db.close()

    asyncio.run(run())


def test_callers_share_a_read_under_way_and_never_wait_behind_each_other(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "crosstalk.sqlite3"
    gate = asyncio.Event()
    reads = _CountedReads(monkeypatch, gate)

    async def run() -> None:
        db, reader, heard = await _opened(path)
        try:
            first, second, third = (asyncio.create_task(reader.catch_up()) for _ in range(3))
            await asyncio.sleep(0)
            assert reads.count == 1  # the first reads; the others wait for its read
            third.cancel()
            await asyncio.sleep(0)
            _append(path, "1")
            gate.set()
            # The second came while the first's read was under way, and that read began before it
            # came: it reads again itself. The third's cancellation cancelled nobody else's wait.
            await asyncio.gather(first, second)
            assert third.cancelled() and reads.count == 2

            gate.clear()
            reading, waiting = asyncio.create_task(reader.catch_up()), asyncio.create_task(reader.catch_up())
            await asyncio.sleep(0)
            assert reads.count == 3
            gate.set()
            await reading
            # The read is over and `waiting` has yet to run: a caller now reads at once, without
            # queuing behind it (as a lock's callers would, each costing a turn of the loop).
            await reader.catch_up()
            assert reads.count == 4 and not waiting.done()
            await waiting
            assert heard[:1] == ["1"]
        finally:
            await reader.close()
            await db.close()

    asyncio.run(run())
