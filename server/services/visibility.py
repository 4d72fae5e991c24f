"""Who may see a status: one rule, used by every read path."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from server.domain.records import Status
from server.state import State
from server.storage import groups, relations, statuses


async def visible_ids(state: State, viewer_id: int | None, items: Iterable[Status],
                      blocked: Collection[int] | None = None) -> set[int]:
    """Ids of the statuses the viewer may see, decided for a whole batch in at most two queries:
    public and unlisted posts unless blocks stand between viewer and author; followers-only posts for
    followers; every restricted post for its author and the accounts it mentions. Without a signed-in
    viewer (viewer_id None: no token, an app-only token), public and unlisted posts that are not
    local-only: local-only posts are for the signed-in users of this instance. `blocked`: the accounts
    a block stands between the viewer and, as the viewer's state (checked against the version read
    with `items`) holds them; then follows are read only for followers-only posts, if any."""
    live = [s for s in items if s.deleted_at is None]
    if viewer_id is None:
        return {s.id for s in live if s.visibility in ("public", "unlisted") and not s.local_only}
    if blocked is None:
        followed, blocked = await relations.followed_and_blocked(
            state.db, viewer_id, {s.account_id for s in live if s.account_id != viewer_id})
    else:
        followed = await relations.followed_among(
            state.db, viewer_id, {s.account_id for s in live if s.visibility == "private" and s.account_id != viewer_id})
    restricted = [s.id for s in live if s.visibility not in ("public", "unlisted") and s.account_id != viewer_id]
    mentions = await statuses.mentions_for(state.db, restricted) if restricted else {}
    visible = set()
    # Posts in a group (a members-only group's are addressed to the group alone) are seen by its members.
    through_groups = await groups.visible_through_groups(state.db, viewer_id, restricted) if restricted else set()
    for s in live:
        if s.account_id == viewer_id:
            visible.add(s.id)
            continue
        if s.account_id in blocked:
            continue
        if (s.visibility in ("public", "unlisted") or viewer_id in mentions.get(s.id, ()) or s.id in through_groups
                or (s.visibility == "private" and s.account_id in followed)):
            visible.add(s.id)
    return visible


async def can_see(state: State, viewer_id: int | None, status: Status) -> bool:
    return status.id in await visible_ids(state, viewer_id, [status])
