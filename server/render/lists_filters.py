"""Mastodon entities for lists, filters (v2 and v1), markers and hashtags."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from server.domain.records import Filter, FilterKeyword, FilterStatus, Marker, UserList
from server.render.bundles import Site, TagView


def list_json(item: UserList) -> dict[str, Any]:
    return {"id": str(item.id), "title": item.title, "replies_policy": item.replies_policy,
            "exclusive": bool(item.exclusive)}


def keyword_json(k: FilterKeyword) -> dict[str, Any]:
    return {"id": str(k.id), "keyword": k.keyword, "whole_word": bool(k.whole_word)}


def filter_status_json(s: FilterStatus) -> dict[str, Any]:
    return {"id": str(s.id), "status_id": str(s.status_id)}


def filter_json(f: Filter, keywords: list[FilterKeyword] | None = None,
                statuses: list[FilterStatus] | None = None) -> dict[str, Any]:
    """The v2 Filter; keywords and statuses only where the rules were asked for (not inside FilterResult)."""
    data: dict[str, Any] = {"id": str(f.id), "title": f.title, "context": msgspec.json.decode(f.context),
                            "expires_at": f.expires_at, "filter_action": f.action}
    if keywords is not None:
        data["keywords"] = [keyword_json(k) for k in keywords]
    if statuses is not None:
        data["statuses"] = [filter_status_json(s) for s in statuses]
    return data


def filter_v1_json(f: Filter, k: FilterKeyword) -> dict[str, Any]:
    """A v1 filter is one keyword of a v2 filter and carries the keyword's id."""
    return {"id": str(k.id), "phrase": k.keyword, "context": msgspec.json.decode(f.context),
            "whole_word": bool(k.whole_word), "expires_at": f.expires_at, "irreversible": f.action == "hide"}


def marker_json(m: Marker) -> dict[str, Any]:
    return {"last_read_id": str(m.last_read_id), "version": m.version, "updated_at": m.updated_at}


def tag_json(site: Site, name: str, usage: list[tuple[str, int, int]] | None = None,
             following: bool | None = None, tag_id: int | None = None) -> dict[str, Any]:
    """Tag entity with a week of history (newest day first), as Mastodon shows it."""
    by_day = {day: (uses, accounts) for day, uses, accounts in usage or []}
    today = int(time.time()) // 86400 * 86400
    history = []
    for back in range(7):
        ts = today - back * 86400
        day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
        uses, accounts = by_day.get(day, (0, 0))
        history.append({"day": str(ts), "uses": str(uses), "accounts": str(accounts)})
    data: dict[str, Any] = {"name": name, "url": f"{site.base_url}/tags/{name.lower()}", "history": history}
    if tag_id is not None:
        data["id"] = str(tag_id)
    if following is not None:
        data["following"] = following
    return data


def tags_json(site: Site, tags: list[TagView]) -> list[dict[str, Any]]:
    return [tag_json(site, t.name, t.usage, t.following, t.tag_id) for t in tags]
