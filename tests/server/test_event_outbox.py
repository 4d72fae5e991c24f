"""The event outbox across processes: claims that run out are taken over, failures are retried, and
nothing recorded in a rolled-back transaction is ever dispatched."""

from __future__ import annotations

import asyncio
import time

from server.domain.events import DomainEvent, ProfileUpdated
from server.jobs.outbox import Outbox
from server.storage.db import Database


async def open_db(tmp_path) -> Database:
    db = Database(tmp_path / "events.sqlite3", readers=1)
    await db.open()
    return db


async def wait_until(check, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_events_of_a_dead_dispatcher_are_taken_over_once_its_claim_runs_out(tmp_path):
    db = await open_db(tmp_path)
    dead = Outbox(db, "process-1", claim_seconds=0.5, dispatching=True)  # records, never dispatches
    async with db.transaction() as tx:
        first = await dead.record(tx, ProfileUpdated(account_id=1))
        second = await dead.record(tx, ProfileUpdated(account_id=2))
    seen: list[tuple[int, DomainEvent]] = []

    async def subscriber(event_id: int, event: DomainEvent) -> None:
        seen.append((event_id, event))

    survivor = Outbox(db, "process-2", claim_seconds=0.5, dispatching=True)
    survivor.subscribe("test", subscriber)
    task = asyncio.create_task(survivor.run())
    try:
        await asyncio.sleep(0.3)
        assert seen == []  # still claimed by process-1
        await wait_until(lambda: len(seen) == 2)
        assert seen == [(first, ProfileUpdated(account_id=1)), (second, ProfileUpdated(account_id=2))]
        await asyncio.sleep(1.2)  # later sweeps find nothing left to do
        assert len(seen) == 2
        assert await db.fetchval("SELECT count(*) FROM events WHERE dispatched_at IS NULL") == 0
    finally:
        survivor.request_stop()
        await task
        await db.close()


async def test_a_failing_subscriber_is_retried_and_the_others_see_the_event_again(tmp_path):
    db = await open_db(tmp_path)
    outbox = Outbox(db, "process-1", claim_seconds=5, dispatching=True)
    calls: list[str] = []

    async def steady(event_id: int, event: DomainEvent) -> None:
        calls.append("steady")

    async def flaky(event_id: int, event: DomainEvent) -> None:
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise ConnectionError("the first try fails")

    outbox.subscribe("steady", steady)
    outbox.subscribe("flaky", flaky)
    task = asyncio.create_task(outbox.run())
    try:
        async with db.transaction() as tx:
            await outbox.record(tx, ProfileUpdated(account_id=7))
        await wait_until(lambda: calls.count("flaky") == 2, within=6.0)
        assert calls == ["steady", "flaky", "steady", "flaky"]
        # The event is marked dispatched just after its subscribers return: wait for that write.
        deadline = time.monotonic() + 5
        while (row := await db.fetchone("SELECT attempts, dispatched_at, last_error FROM events"))["dispatched_at"] is None:
            assert time.monotonic() < deadline, dict(row)
            await asyncio.sleep(0.02)
        assert row["attempts"] == 1
        assert "ConnectionError" in row["last_error"]
    finally:
        outbox.request_stop()
        await task
        await db.close()


async def test_an_event_recorded_in_a_rolled_back_transaction_is_never_dispatched(tmp_path):
    db = await open_db(tmp_path)
    outbox = Outbox(db, "process-1", claim_seconds=5, dispatching=True)
    seen: list[int] = []

    async def subscriber(event_id: int, event: DomainEvent) -> None:
        seen.append(event_id)

    outbox.subscribe("test", subscriber)
    task = asyncio.create_task(outbox.run())
    try:
        try:
            async with db.transaction() as tx:
                await outbox.record(tx, ProfileUpdated(account_id=3))
                raise RuntimeError("the change fails")
        except RuntimeError:
            pass
        async with db.transaction() as tx:
            kept = await outbox.record(tx, ProfileUpdated(account_id=4))
        await wait_until(lambda: seen == [kept])
        await asyncio.sleep(1.2)
        assert seen == [kept]
        assert await db.fetchval("SELECT count(*) FROM events") == 1
    finally:
        outbox.request_stop()
        await task
        await db.close()


async def test_the_subscribers_of_one_event_read_the_post_once(tmp_path):
    """The subscribers of a new post each read it (feeds, conversations, groups, federation): within
    one event's dispatch the first read serves them all, and the next event reads it afresh."""
    from server.domain.events import StatusCreated
    from server.services import event_reads

    db = await open_db(tmp_path)
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO accounts (id, username, uri, url, created_at, updated_at)"
                         " VALUES (1, 'ann', 'u', 'u', 'now', 'now')")
        await tx.execute("INSERT INTO statuses (id, uri, url, account_id, local, visibility, created_at, content)"
                         " VALUES (10, 's', 's', 1, 1, 'public', 'now', 'first')")
    reads: list[str] = []

    class Counting:  # the database as the subscribers see it, counting the statements they run
        async def fetchall(self, sql, params=()):
            reads.append(sql)
            return await db.fetchall(sql, params)

        async def fetchone(self, sql, params=()):
            return next(iter(await self.fetchall(sql, params)), None)

    seen: list[str] = []

    async def subscriber(event_id: int, event: DomainEvent) -> None:
        assert isinstance(event, StatusCreated)
        status = await event_reads.created_status(Counting(), event.status_id)
        assert status is not None
        seen.append(status.content)

    outbox = Outbox(db, "process-1", claim_seconds=5, dispatching=True)
    for name in ("feeds", "conversations", "groups", "federation"):
        outbox.subscribe(name, subscriber)
    task = asyncio.create_task(outbox.run())
    try:
        async with db.transaction() as tx:
            await outbox.record(tx, StatusCreated(status_id=10, mentioned=[]))
        await wait_until(lambda: len(seen) == 4)
        assert (seen, len(reads)) == (["first"] * 4, 1)
        async with db.transaction() as tx:
            await tx.execute("UPDATE statuses SET content = 'second' WHERE id = 10")
            await outbox.record(tx, StatusCreated(status_id=10, mentioned=[]))
        await wait_until(lambda: len(seen) == 8)
        assert (seen[4:], len(reads)) == (["second"] * 4, 2)
        # Outside a dispatch (an admin command, say), every call reads.
        await event_reads.created_status(Counting(), 10)
        assert len(reads) == 3
    finally:
        outbox.request_stop()
        await task
        await db.close()


async def test_a_batch_subscriber_takes_a_batch_together_and_a_bad_event_holds_back_only_itself(tmp_path):
    """Events committed together are dispatched as one batch: a batch subscriber gets them in one call,
    in order, and the per-event subscribers after it get each. When the batch call fails, each event
    is handed to it alone: the one that fails is retried later (with every subscriber), the others go
    on to the next subscribers and are marked dispatched."""
    db = await open_db(tmp_path)
    outbox = Outbox(db, "process-1", claim_seconds=5, dispatching=True)
    batches: list[list[int]] = []
    after: list[int] = []
    failures = {2: 2}  # account 2's event fails twice: in the batch, then alone

    async def together(events: list[tuple[int, DomainEvent]]) -> None:
        accounts = [e.account_id for _, e in events if isinstance(e, ProfileUpdated)]
        batches.append(accounts)
        for account_id in accounts:
            if failures.get(account_id):
                failures[account_id] -= 1
                raise ValueError(f"account {account_id} cannot be handled now")

    async def each(event_id: int, event: DomainEvent) -> None:
        assert isinstance(event, ProfileUpdated)
        after.append(event.account_id)

    outbox.subscribe_batch("together", together)
    outbox.subscribe("each", each)
    async with db.transaction() as tx:
        for account_id in (1, 2, 3):
            await outbox.record(tx, ProfileUpdated(account_id=account_id))
    task = asyncio.create_task(outbox.run())
    try:
        await wait_until(lambda: after == [1, 3], within=3.0)
        # One call with all three; it failed, so one call each; account 2's failed again.
        assert batches == [[1, 2, 3], [1], [2], [3]]
        await wait_until(lambda: after == [1, 3, 2], within=6.0)  # retried after its backoff (2 s)
        assert batches[4:] == [[2]]
        deadline = time.monotonic() + 5
        while await db.fetchval("SELECT count(*) FROM events WHERE dispatched_at IS NULL"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert await db.fetchval("SELECT attempts FROM events WHERE payload LIKE '%\"account_id\":2%'") == 1
    finally:
        outbox.request_stop()
        await task
        await db.close()
