"""Announcement entities with the viewer's read state and reactions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from server.domain import text
from server.render.bundles import AnnouncementPage, Site


def announcements_json(site: Site, page: AnnouncementPage) -> list[dict[str, Any]]:
    viewer_id, read, reactions, mentions, people = page.viewer_id, page.read, page.reactions, page.mentions, page.accounts
    out = []
    for a in page.items:
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
            "tags": [{"name": t.lower(), "url": f"{site.base_url}/tags/{quote(t.lower())}"}
                     for t in text.extract_tags(a.text)],
            "emojis": [],
            "reactions": [{"name": name, "count": count, **({"me": me} if viewer_id is not None else {})}
                          for name, count, me in reactions.get(a.id, [])],
        }
        if viewer_id is not None:
            data["read"] = a.id in read
        out.append(data)
    return out
