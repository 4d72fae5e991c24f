"""Who may see a status: one rule, used by every read path."""

from __future__ import annotations

from server.records import Status
from server.state import State
from server.storage import relations, statuses


async def can_see(state: State, viewer_id: int | None, status: Status) -> bool:
    if status.deleted_at is not None:
        return False
    if viewer_id is not None and viewer_id != status.account_id:
        if await relations.blocked_either_way(state.db, viewer_id, status.account_id):
            return False
    if status.visibility in ("public", "unlisted"):
        return True
    if viewer_id is None:
        return False
    if viewer_id == status.account_id:
        return True
    if viewer_id in await statuses.mentioned_ids(state.db, status.id):
        return True
    if status.visibility == "private":
        return await relations.follow(state.db, viewer_id, status.account_id) is not None
    return False
