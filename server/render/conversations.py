"""Conversation entities (direct messages), batched for a page."""

from __future__ import annotations

from typing import Any

from server.records import Conversation
from server.render.mastodon import account_json, statuses_json
from server.state import State
from server.storage import accounts as account_store
from server.storage import statuses as status_store


async def conversations_json(state: State, viewer_id: int, items: list[Conversation]) -> list[dict[str, Any]]:
    """Also what the streaming layer sends for a `conversation` event (see services.conversations)."""
    if not items:
        return []
    found = await status_store.get_many(state.db, [c.last_status_id for c in items])
    live = {s.id: s for s in found.values() if s.deleted_at is None}
    rendered = {s["id"]: s for s in await statuses_json(state, viewer_id, list(live.values()))}
    # A note to oneself has no other participants; Mastodon then lists the owner.
    people = {p for c in items for p in (c.participant_ids or [viewer_id])}
    found_accounts = await account_store.get_many(state.db, people)
    out = []
    for c in items:
        ids = c.participant_ids or [viewer_id]
        out.append({
            "id": str(c.id),
            "unread": bool(c.unread),
            "accounts": [account_json(state, found_accounts[a]) for a in ids if a in found_accounts],
            "last_status": rendered.get(str(c.last_status_id)),
        })
    return out
