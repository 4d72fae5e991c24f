"""Matching statuses against a viewer's active filters (Mastodon's FilterResult rules).

Matching works on rendered status JSON, so the REST renderer and the streaming layer (which renders
a status once for every viewer) share it. Changing filters lives in services/filters.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

import msgspec

from server.ids import now_iso
from server.records import Filter, FilterKeyword, FilterStatus
from server.render.lists_filters import filter_json
from server.state import State
from server.storage import filters as store

_WORD_START = re.compile(r"^\w")
_WORD_END = re.compile(r"\w$")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"</p>\s*<p[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


class ActiveFilter(msgspec.Struct, frozen=True):
    """A filter compiled for matching; `entity` is the Filter JSON that goes into FilterResult."""
    id: int
    action: str
    context: frozenset[str]
    expires_at: str | None
    regex: re.Pattern[str] | None
    status_ids: frozenset[int]
    entity: dict[str, Any]


def keyword_pattern(keyword: str, whole_word: bool) -> str:
    """Mastodon's rule: whole-word keywords get a word boundary on each side that is a word character."""
    escaped = re.escape(keyword)
    if not whole_word:
        return escaped
    start = r"\b" if _WORD_START.search(keyword) else ""
    end = r"\b" if _WORD_END.search(keyword) else ""
    return f"{start}{escaped}{end}"


def compile_filters(filters: list[Filter], keywords: dict[int, list[FilterKeyword]],
                    statuses: dict[int, list[FilterStatus]]) -> list[ActiveFilter]:
    out = []
    for f in filters:
        words = keywords.get(f.id, [])
        regex = None
        if words:
            regex = re.compile("|".join(keyword_pattern(k.keyword, k.whole_word) for k in words), re.IGNORECASE)
        out.append(ActiveFilter(
            id=f.id, action=f.action, context=frozenset(msgspec.json.decode(f.context)), expires_at=f.expires_at,
            regex=regex, status_ids=frozenset(s.status_id for s in statuses.get(f.id, [])), entity=filter_json(f)))
    return out


async def active_filters(state: State, account_id: int) -> list[ActiveFilter]:
    """The account's unexpired filters, compiled: one query when there are none (the common case)."""
    filters = await store.active(state.db, account_id, now_iso())
    if not filters:
        return []
    ids = [f.id for f in filters]
    return compile_filters(filters, await store.keywords_for(state.db, ids), await store.statuses_for(state.db, ids))


def plain_text(content: str) -> str:
    text = _BR.sub("\n", content)
    text = _PARAGRAPH.sub("\n\n", text)
    return html.unescape(_TAG.sub("", text))


def searchable_text(data: dict[str, Any]) -> str:
    """What keywords are matched against (Mastodon's searchable_text): content warning, text, poll
    options and media descriptions of the status itself (the boosted one for a boost)."""
    proper = data.get("reblog") or data
    parts = [proper.get("spoiler_text") or "", plain_text(proper.get("content") or "")]
    poll = proper.get("poll")
    if isinstance(poll, dict):
        parts.extend(str(o.get("title", "")) for o in poll.get("options") or [])
    parts.extend(m.get("description") or "" for m in proper.get("media_attachments") or [])
    return "\n\n".join(p for p in parts if p)


def match(filters: list[ActiveFilter], text: str, status_ids: set[int], now: str | None = None) -> list[dict[str, Any]]:
    """FilterResult entities for the filters the status trips."""
    if not filters:
        return []
    now = now or now_iso()
    results = []
    for f in filters:
        if f.expires_at is not None and f.expires_at <= now:
            continue
        keyword_matches = None
        if f.regex is not None and text:
            found = f.regex.search(text)
            if found is not None:
                keyword_matches = [found.group(0)]
        status_matches = [str(i) for i in sorted(status_ids & f.status_ids)] or None
        if keyword_matches or status_matches:
            results.append({"filter": f.entity, "keyword_matches": keyword_matches, "status_matches": status_matches})
    return results


def annotate(filters: list[ActiveFilter], data: dict[str, Any]) -> None:
    """Fill `filtered` of a rendered status (and of the status it boosts) for the viewer."""
    if not filters:
        return
    text = searchable_text(data)
    inner = data.get("reblog")
    ids = {int(data["id"])}
    if inner:
        ids.add(int(inner["id"]))
        inner["filtered"] = match(filters, text, {int(inner["id"])})
    data["filtered"] = match(filters, text, ids)


def hides(results: list[dict[str, Any]] | None, context: str) -> bool:
    """Does a `hide` filter for this context match?"""
    return any(r["filter"]["filter_action"] == "hide" and context in r["filter"]["context"] for r in results or ())


def drop_hidden(items: list[dict[str, Any]], context: str) -> list[dict[str, Any]]:
    """Rendered statuses without those a `hide` filter removes in this context."""
    return [s for s in items if not hides(s.get("filtered"), context)]


def drop_hidden_notifications(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in items if not (n.get("status") and hides(n["status"].get("filtered"), "notifications"))]
