"""What the subscribers of a batch of events share: the statuses they read.

Every subscriber of a new post or boost reads it after the commit (feeds, conversations, groups,
federation): four reads of one row, where one serves. The dispatcher opens a scope around a batch's
subscribers (`shared_reads`); inside it, `created_status` reads a status once, and `created_statuses`
reads many in one query (the feeds read a batch's posts together, and the others find them read).
Only the subscribers of StatusCreated and ReblogCreated use it, and none of them changes the row they
share (they write feeds, conversations, group posts and deliveries), so what the first one read is
what the others would read: every event of the batch committed before the batch was dispatched.
Outside a scope (an admin command, a test calling a subscriber), it reads every time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from server.domain.records import Status
from server.ports import Reader
from server.storage import statuses as status_store

_SHARED: ContextVar[dict[int, Status | None] | None] = ContextVar("event_statuses", default=None)


@contextmanager
def shared_reads() -> Iterator[None]:
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


async def created_status(db: Reader, status_id: int) -> Status | None:
    """The status a StatusCreated or ReblogCreated event names, read once per event."""
    shared = _SHARED.get()
    if shared is None:
        return await status_store.get(db, status_id)
    if status_id not in shared:
        shared[status_id] = await status_store.get(db, status_id)
    return shared[status_id]


async def created_statuses(db: Reader, status_ids: list[int]) -> dict[int, Status]:
    """The statuses these events name (those that exist), the ones not read yet in one query."""
    shared = _SHARED.get()
    if shared is None:
        return await status_store.get_many(db, status_ids)
    wanted = [i for i in status_ids if i not in shared]
    if wanted:
        found = await status_store.get_many(db, wanted)
        for i in wanted:
            shared[i] = found.get(i)
    return {i: s for i in status_ids if (s := shared[i]) is not None}
