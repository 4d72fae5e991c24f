"""Matching statuses against a viewer's active filters (Mastodon's FilterResult rules), pure.

The filters come in compiled (services/filters.py loads and compiles them); nothing here reads the
database. The loaders match a page of status records before rendering (services/loaders.py), the
streaming layer matches a status rendered once for every viewer: both go through `searchable` so they
see the same text. Changing filters lives in services/filters.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from server.domain.records import Filter, FilterKeyword, FilterStatus

FilterResult = dict[str, Any]  # the Mastodon FilterResult entity

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
                    statuses: dict[int, list[FilterStatus]],
                    entity: Callable[[Filter], dict[str, Any]]) -> list[ActiveFilter]:
    """`entity` renders the Filter JSON a FilterResult carries."""
    out = []
    for f in filters:
        words = keywords.get(f.id, [])
        regex = None
        if words:
            regex = re.compile("|".join(keyword_pattern(k.keyword, k.whole_word) for k in words), re.IGNORECASE)
        out.append(ActiveFilter(
            id=f.id, action=f.action, context=frozenset(msgspec.json.decode(f.context)), expires_at=f.expires_at,
            regex=regex, status_ids=frozenset(s.status_id for s in statuses.get(f.id, [])), entity=entity(f)))
    return out


def plain_text(content: str) -> str:
    text = _BR.sub("\n", content)
    text = _PARAGRAPH.sub("\n\n", text)
    return html.unescape(_TAG.sub("", text))


def searchable(spoiler_text: str | None, content: str | None, poll_options: Iterable[str],
               media_descriptions: Iterable[str | None]) -> str:
    """What keywords are matched against (Mastodon's searchable_text): content warning, text, poll
    options and media descriptions of the status itself (the boosted one for a boost)."""
    parts = [spoiler_text or "", plain_text(content or "")]
    parts.extend(poll_options)
    parts.extend(d or "" for d in media_descriptions)
    return "\n\n".join(p for p in parts if p)


def searchable_text(data: dict[str, Any]) -> str:
    """`searchable` for a rendered status."""
    proper = data.get("reblog") or data
    poll = proper.get("poll")
    options = [str(o.get("title", "")) for o in poll.get("options") or []] if isinstance(poll, dict) else []
    return searchable(proper.get("spoiler_text"), proper.get("content"), options,
                      [m.get("description") for m in proper.get("media_attachments") or []])


def match(filters: list[ActiveFilter], text: str, status_ids: set[int], now: str) -> list[FilterResult]:
    """FilterResult entities for the filters the status trips (`now`: ISO time, for expiry)."""
    if not filters:
        return []
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


def hides(results: list[FilterResult] | None, context: str) -> bool:
    """Does a `hide` filter for this context match?"""
    return any(r["filter"]["filter_action"] == "hide" and context in r["filter"]["context"] for r in results or ())
