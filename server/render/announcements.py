"""Announcement entities with the viewer's read state and reactions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from server.records import Announcement
from server.services import text
from server.state import State
from server.storage import accounts as account_store
from server.storage import announcements as store


async def announcements_json(state: State, viewer_id: int | None, items: list[Announcement]) -> list[dict[str, Any]]:
    ids = [a.id for a in items]
    read = await store.read_ids(state.db, viewer_id, ids) if viewer_id is not None else set()
    reactions = await store.reactions_for(state.db, ids, viewer_id)
    mentions = await store.mentions_for(state.db, ids)
    people = await account_store.get_many(state.db, {m for ms in mentions.values() for m in ms})
    out = []
    for a in items:
        data: dict[str, Any] = {
            "id": str(a.id),
            "content": a.content,
            "starts_at": a.starts_at,
            "ends_at": a.ends_at,
            "all_day": bool(a.all_day),
            "published": bool(a.published),
            "published_at": a.published_at,
            "updated_at": a.updated_at,
            "mentions": [{"id": str(p.id), "username": p.username, "url": p.url, "acct": p.acct}
                         for p in (people.get(m) for m in mentions.get(a.id, [])) if p is not None],
            "statuses": [],
            "tags": [{"name": t.lower(), "url": f"{state.base_url}/tags/{quote(t.lower())}"}
                     for t in text.extract_tags(a.text)],
            "emojis": [],
            "reactions": [{"name": name, "count": count, **({"me": me} if viewer_id is not None else {})}
                          for name, count, me in reactions.get(a.id, [])],
        }
        if viewer_id is not None:
            data["read"] = a.id in read
        out.append(data)
    return out
