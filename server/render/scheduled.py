"""ScheduledStatus entities."""

from __future__ import annotations

from typing import Any

import msgspec

from server.render.accounts import media_json
from server.render.bundles import ScheduledPage, Site


def scheduled_statuses_json(site: Site, page: ScheduledPage) -> list[dict[str, Any]]:
    out = []
    for item in page.items:
        p = msgspec.json.decode(item.params)
        media_ids = p.get("media_ids") or []
        rows = page.media.get(item.id, [])
        poll = p.get("poll")
        out.append({
            "id": str(item.id),
            "scheduled_at": item.scheduled_at,
            "params": {
                "text": p.get("text", ""),
                "poll": None if poll is None else {
                    "options": poll["options"], "expires_in": poll["expires_in"],
                    "multiple": bool(poll.get("multiple")), "hide_totals": bool(poll.get("hide_totals"))},
                "media_ids": [str(m) for m in media_ids] or None,
                "sensitive": p.get("sensitive"),
                "spoiler_text": p.get("spoiler_text") or None,
                "visibility": p.get("visibility"),
                "in_reply_to_id": str(p["in_reply_to_id"]) if p.get("in_reply_to_id") else None,
                "language": p.get("language"),
                "application_id": p.get("app_id"),
                "scheduled_at": None,
                "idempotency": None,
                "with_rate_limit": False,
            },
            "media_attachments": [media_json(site, r) for r in rows],
        })
    return out
