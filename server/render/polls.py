"""Poll entities."""

from __future__ import annotations

from typing import Any

from server.domain.records import Poll


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
