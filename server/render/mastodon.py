"""Domain records → Mastodon API entities (plain dicts, encoded by msgspec at the edge).

Status rendering is batched: one call gathers everything a page of statuses needs in a fixed number
of queries, whatever the page size.
"""

from __future__ import annotations

from typing import Any

import msgspec

from server.records import Account, Notification, Status, User
from server.render import polls as poll_render
from server.services import filtering
from server.state import State
from server.storage import accounts as account_store
from server.storage import media as media_store
from server.storage import oauth as oauth_store
from server.storage import relations
from server.storage import statuses as status_store
from server.storage.relations import Relationship

DEFAULT_AVATAR = "/static/avatar.png"
DEFAULT_HEADER = "/static/header.png"


def _image(base_url: str, url: str, default: str) -> str:
    if not url:
        return base_url + default
    return url if url.startswith(("http://", "https://")) else base_url + url


def account_json(state: State, a: Account) -> dict[str, Any]:
    fields = msgspec.json.decode(a.fields or "[]")
    avatar = _image(state.base_url, a.avatar_url, DEFAULT_AVATAR)
    header = _image(state.base_url, a.header_url, DEFAULT_HEADER)
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


def credential_account_json(state: State, a: Account, user: User | None) -> dict[str, Any]:
    data = account_json(state, a)
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


async def accounts_json(state: State, ids: list[int]) -> list[dict[str, Any]]:
    found = await account_store.get_many(state.db, ids)
    return [account_json(state, found[i]) for i in ids if i in found]


async def relationships_json(state: State, viewer_id: int, ids: list[int]) -> list[dict[str, Any]]:
    rels = await relations.relationships(state.db, viewer_id, ids)
    return [relationship_json(i, rels[i]) for i in ids]


def media_json(state: State, row: Any) -> dict[str, Any]:
    meta = msgspec.json.decode(row["meta"] or "{}")
    if row["focus_x"] or row["focus_y"]:
        meta["focus"] = {"x": row["focus_x"], "y": row["focus_y"]}
    url = f"{state.base_url}/media/{row['file_path']}" if row["file_path"] else row["remote_url"]
    preview = f"{state.base_url}/media/{row['preview_path']}" if row["preview_path"] else url
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


async def _media_for(state: State, status_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for r in await media_store.for_statuses(state.db, status_ids):
        out.setdefault(r["status_id"], []).append(media_json(state, r))
    return out


async def statuses_json(state: State, viewer_id: int | None, items: list[Status],
                        with_source: bool = False) -> list[dict[str, Any]]:
    if not items:
        return []
    originals = await status_store.get_many(state.db, [s.reblog_of_id for s in items if s.reblog_of_id])
    every = {s.id: s for s in items} | originals
    ids = list(every)
    mentions = await status_store.mentions_for(state.db, ids)
    account_ids = {s.account_id for s in every.values()}
    for mentioned in mentions.values():
        account_ids.update(mentioned)
    found_accounts = await account_store.get_many(state.db, account_ids)
    account_cache: dict[int, dict[str, Any]] = {}

    def acct(account_id: int) -> dict[str, Any] | None:
        if account_id not in account_cache and account_id in found_accounts:
            account_cache[account_id] = account_json(state, found_accounts[account_id])
        return account_cache.get(account_id)

    tags = await status_store.tags_for(state.db, ids)
    media = await _media_for(state, ids)
    polls = await poll_render.polls_for_statuses(state, viewer_id, ids)
    flags = await status_store.viewer_flags(state.db, viewer_id, ids) if viewer_id is not None else None
    viewer_filters = await filtering.active_filters(state, viewer_id) if viewer_id is not None else []
    found_apps = await oauth_store.apps_by_ids(state.db, {s.app_id for s in every.values() if s.app_id})
    apps = {app.id: {"name": app.name, "website": app.website} for app in found_apps.values()}

    def one(s: Status) -> dict[str, Any]:
        mention_list = []
        for mid in mentions.get(s.id, []):
            m = found_accounts.get(mid)
            if m is not None:
                mention_list.append({"id": str(m.id), "username": m.username, "url": m.url, "acct": m.acct})
        data: dict[str, Any] = {
            "id": str(s.id),
            "uri": s.uri,
            "url": s.url,
            "created_at": s.created_at,
            "account": acct(s.account_id),
            "content": s.content,
            "visibility": s.visibility,
            "sensitive": bool(s.sensitive),
            "spoiler_text": s.spoiler_text,
            "language": s.language,
            "application": apps.get(s.app_id) if s.app_id else None,
            "media_attachments": media.get(s.id, []),
            "mentions": mention_list,
            "tags": [{"name": t.lower(), "url": f"{state.base_url}/tags/{t.lower()}"} for t in tags.get(s.id, [])],
            "emojis": [],
            "reblogs_count": s.reblogs_count,
            "favourites_count": s.favourites_count,
            "replies_count": s.replies_count,
            "in_reply_to_id": str(s.in_reply_to_id) if s.in_reply_to_id else None,
            "in_reply_to_account_id": str(s.in_reply_to_account_id) if s.in_reply_to_account_id else None,
            "reblog": None,
            "poll": polls.get(s.id),
            "card": None,
            "edited_at": s.edited_at,
            "local_only": bool(s.local_only),
            "filtered": [],
        }
        if flags is not None:
            data["favourited"] = s.id in flags.favourited
            data["reblogged"] = s.id in flags.reblogged
            data["bookmarked"] = s.id in flags.bookmarked
            data["muted"] = False
            if s.account_id == viewer_id:
                data["pinned"] = s.id in flags.pinned
        if with_source:
            data["text"] = s.source_text
        return data

    out = []
    for s in items:
        data = one(s)
        if s.reblog_of_id is not None:
            original = originals.get(s.reblog_of_id)
            data["reblog"] = one(original) if original is not None else None
        filtering.annotate(viewer_filters, data)
        out.append(data)
    return out



async def notifications_json(state: State, viewer_id: int, notes: list[Notification]) -> list[dict[str, Any]]:
    status_ids = [n.status_id for n in notes if n.status_id]
    found_statuses = await status_store.get_many(state.db, status_ids)
    rendered = {s["id"]: s for s in await statuses_json(state, viewer_id, list(found_statuses.values()))}
    found_accounts = await account_store.get_many(state.db, [n.from_account_id for n in notes])
    reports = await _reports_for(state, [n.id for n in notes if n.type == "admin.report"])
    out = []
    for n in notes:
        account = found_accounts.get(n.from_account_id)
        if account is None:
            continue
        data: dict[str, Any] = {"id": str(n.id), "type": n.type, "created_at": n.created_at,
                                "group_key": f"ungrouped-{n.id}", "account": account_json(state, account)}
        if n.id in reports:
            data["report"] = reports[n.id]
        if n.status_id:
            status = rendered.get(str(n.status_id))
            if status is None:
                continue
            data["status"] = status
        out.append(data)
    return out


async def _reports_for(state: State, notification_ids: list[int]) -> dict[int, dict[str, Any]]:
    """notification id → the Report entity an admin.report notification is about."""
    if not notification_ids:
        return {}
    from server.render.reports import reports_json  # it renders accounts with this module
    from server.storage import reports as report_store
    links = await report_store.for_notifications(state.db, notification_ids)
    found = await report_store.get_many(state.db, links.values())
    rendered = {r["id"]: r for r in await reports_json(state, list(found.values()))}
    return {n: rendered[str(r)] for n, r in links.items() if str(r) in rendered}
