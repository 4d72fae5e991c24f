"""Accounts, relationships and media attachments as Mastodon API entities: pure, records in, JSON out."""

from __future__ import annotations

from typing import Any

import msgspec

from server.domain.records import Account, Relationship, User
from server.ports import Row
from server.render.bundles import Site

DEFAULT_AVATAR = "/static/avatar.png"
DEFAULT_HEADER = "/static/header.png"


def _image(base_url: str, url: str, default: str) -> str:
    if not url:
        return base_url + default
    return url if url.startswith(("http://", "https://")) else base_url + url


def account_json(site: Site, a: Account) -> dict[str, Any]:
    fields = msgspec.json.decode(a.fields or "[]")
    avatar = _image(site.base_url, a.avatar_url, DEFAULT_AVATAR)
    header = _image(site.base_url, a.header_url, DEFAULT_HEADER)
    return {
        "id": str(a.id),
        "username": a.username,
        "acct": a.acct,
        "display_name": a.display_name,
        "locked": bool(a.locked),
        "bot": bool(a.bot),
        "discoverable": bool(a.discoverable),
        "indexable": bool(a.discoverable),
        "group": a.actor_type == "Group",
        "created_at": a.created_at[:10] + "T00:00:00.000Z",
        "note": a.note,
        "url": a.url,
        "uri": a.uri,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": a.followers_count,
        "following_count": a.following_count,
        "statuses_count": a.statuses_count,
        "last_status_at": a.last_status_at,
        "hide_collections": False,
        "noindex": not a.discoverable,
        "emojis": [],
        "roles": [],
        "fields": [{"name": f[0], "value": f[1], "verified_at": None} for f in fields],
    }


def credential_account_json(site: Site, a: Account, user: User | None) -> dict[str, Any]:
    data = account_json(site, a)
    fields = msgspec.json.decode(a.fields or "[]")
    data["source"] = {
        "privacy": user.default_visibility if user else "public",
        "sensitive": bool(user.default_sensitive) if user else False,
        "language": (user.default_language if user else None) or "",
        "note": a.note_source,
        "fields": [{"name": f[0], "value": f[2] if len(f) > 2 else f[1], "verified_at": None} for f in fields],
        "follow_requests_count": 0,
        "hide_collections": False,
        "discoverable": bool(a.discoverable),
        "indexable": bool(a.discoverable),
    }
    if user is not None:
        data["role"] = {"id": "3" if user.admin else "-99", "name": "Admin" if user.admin else "",
                        "permissions": "1" if user.admin else "0", "color": "", "highlighted": bool(user.admin)}
    return data


def relationship_json(account_id: int, rel: Relationship) -> dict[str, Any]:
    return {
        "id": str(account_id),
        "following": rel.following,
        "showing_reblogs": rel.showing_reblogs,
        "notifying": rel.notifying,
        "languages": None,
        "followed_by": rel.followed_by,
        "blocking": rel.blocking,
        "blocked_by": rel.blocked_by,
        "muting": rel.muting,
        "muting_notifications": rel.muting_notifications,
        "requested": rel.requested,
        "requested_by": rel.requested_by,
        "domain_blocking": rel.domain_blocking,
        "endorsed": False,
        "note": "",
    }


def media_json(site: Site, row: Row) -> dict[str, Any]:
    meta = msgspec.json.decode(row["meta"] or "{}")
    if row["focus_x"] or row["focus_y"]:
        meta["focus"] = {"x": row["focus_x"], "y": row["focus_y"]}
    url = f"{site.base_url}/media/{row['file_path']}" if row["file_path"] else row["remote_url"]
    preview = f"{site.base_url}/media/{row['preview_path']}" if row["preview_path"] else url
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "url": None if row["processing"] else url,
        "preview_url": preview,
        "remote_url": row["remote_url"],
        "preview_remote_url": None,
        "text_url": None,
        "meta": meta,
        "description": row["description"],
        "blurhash": row["blurhash"],
    }
