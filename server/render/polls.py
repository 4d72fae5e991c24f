"""Poll entities, batched for a page of statuses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.ids import now_iso
from server.records import Poll
from server.state import State
from server.storage import polls as store


def poll_json(poll: Poll, viewer_id: int | None, own_votes: list[int] | None, now: str) -> dict[str, Any]:
    expired = poll.expires_at is not None and poll.expires_at <= now
    # hide_totals keeps the counts from voters until the end; the author always sees them.
    show_counts = expired or not poll.hide_totals or viewer_id == poll.account_id
    data: dict[str, Any] = {
        "id": str(poll.id),
        "expires_at": poll.expires_at,
        "expired": expired,
        "multiple": bool(poll.multiple),
        "votes_count": poll.votes_count,
        "voters_count": poll.voters_count,
        "options": [{"title": title, "votes_count": poll.tallies[i] if show_counts and i < len(poll.tallies) else None}
                    for i, title in enumerate(poll.options)],
        "emojis": [],
    }
    if viewer_id is not None:
        # As in Mastodon, the author counts as having voted (they cannot vote in their own poll).
        data["voted"] = viewer_id == poll.account_id or own_votes is not None
        data["own_votes"] = own_votes or []
    return data


async def polls_for_statuses(state: State, viewer_id: int | None, status_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """status id → Poll entity for the viewer, in two queries whatever the page size."""
    polls = await store.for_statuses(state.db, status_ids)
    if not polls:
        return {}
    votes = await store.own_votes(state.db, viewer_id, [p.id for p in polls.values()]) if viewer_id is not None else {}
    now = now_iso()
    return {sid: poll_json(p, viewer_id, votes.get(p.id), now) for sid, p in polls.items()}


async def one_poll_json(state: State, viewer_id: int | None, poll: Poll) -> dict[str, Any]:
    votes = await store.own_votes(state.db, viewer_id, [poll.id]) if viewer_id is not None else {}
    return poll_json(poll, viewer_id, votes.get(poll.id), now_iso())
