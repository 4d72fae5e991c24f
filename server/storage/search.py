"""Search: the full-text index of statuses, and the account and hashtag look-ups.

The index covers the plain text and content warning of every row of `statuses` and is kept in step
by the database itself, so every writer updates it without knowing about it: on SQLite an FTS5 table
`status_search` (rowid = status id) with triggers (schema/sqlite/0002_media_search.sql), on PostgreSQL
a generated tsvector column with a GIN index (schema/postgres/0008_baseline.sql). The dialect turns
the user's terms into the engine's query (dialect.status_text_match); both treat every term as plain
text, so no input is query syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from server.ports import Reader

MAX_TERMS = 12
MAX_QUERY = 500
# A quoted phrase (optionally negated), or a run of non-space characters.
_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')


def terms(query: str) -> tuple[list[str], list[str]]:
    """The words and phrases a user typed: (wanted, excluded). `"a b"` is a phrase, `-word` excludes.
    Anything without a letter or digit (FTS syntax such as *, (, ^, :) is dropped."""
    wanted: list[str] = []
    excluded: list[str] = []
    # NUL separates words: FTS5 reads its query as a C string (it would end there) and PostgreSQL
    # text cannot hold it.
    for m in _TOKEN.finditer(query[:MAX_QUERY].replace("\x00", " ")):
        negated, phrase, word = m.group(1), m.group(2), m.group(3)
        text = phrase if phrase is not None else word
        if word is not None and word.startswith("-") and len(word) > 1:
            negated, text = "-", word[1:]
        if not any(ch.isalnum() for ch in text):
            continue
        (excluded if negated else wanted).append(text)
    return wanted[:MAX_TERMS], excluded[:MAX_TERMS]


async def status_candidates(db: Reader, wanted: list[str], excluded: list[str], viewer_id: int, *, window: int,
                            account_id: int | None = None, hidden: Iterable[int] = ()) -> list[Any]:
    """The newest `window` matching statuses the viewer may read: rows of (id, source_text, spoiler_text).

    The index is read newest-first, so the LIMIT stops the scan early however common the words are.
    The visibility test is the one can_see applies (own, public/unlisted, followed private, mentioned),
    narrowed by the authors' choice: public posts of accounts that opted out of discovery are found only
    by their followers.
    """
    match = db.dialect.status_text_match(wanted, excluded)
    params: list[Any] = [*match.params, viewer_id, viewer_id, viewer_id]
    extra = ""
    if account_id is not None:
        extra += " AND s.account_id = ?"
        params.append(account_id)
    hidden = list(hidden)
    if hidden:
        extra += f" AND s.account_id NOT IN ({','.join('?' * len(hidden))})"
        params.extend(hidden)
    params.append(window)
    return await db.fetchall(
        "SELECT s.id, s.source_text, s.spoiler_text"
        f" FROM {match.source} JOIN accounts a ON a.id = s.account_id"
        f" WHERE {match.condition} AND s.deleted_at IS NULL AND s.reblog_of_id IS NULL AND a.suspended = 0"
        "   AND (s.account_id = ?"
        "     OR (s.visibility IN ('public', 'unlisted') AND a.discoverable = 1)"
        "     OR (s.visibility IN ('public', 'unlisted', 'private') AND EXISTS (SELECT 1 FROM follows f"
        "         WHERE f.account_id = ? AND f.target_account_id = s.account_id))"
        "     OR EXISTS (SELECT 1 FROM mentions m WHERE m.status_id = s.id AND m.account_id = ?))"
        f"{extra}"
        f" ORDER BY {match.newest_first} LIMIT ?", params)


async def hashtags(db: Reader, prefix: str, limit: int, offset: int) -> list[tuple[int, str]]:
    """Tags whose name starts with `prefix` (case-insensitive): the exact one first, then shortest."""
    low = prefix.lower()
    by_code_point = f"lower(name) COLLATE {db.dialect.binary_collation}"
    rows = await db.fetchall(
        f"SELECT id, name FROM tags WHERE {by_code_point} >= ? AND {by_code_point} < ?"
        " ORDER BY lower(name) = ? DESC, length(name), lower(name) LIMIT ? OFFSET ?",
        (low, low + "\U0010ffff", low, limit, offset))
    return [(r[0], r[1]) for r in rows]

