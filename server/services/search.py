"""Search: accounts (names and profile fields), hashtags (by prefix) and the text of statuses.

Status search reads the full-text index newest-first and takes the newest WINDOW matches the caller
may see, then orders them by BM25 relevance. Scoring only that window keeps a search over millions of
posts to a few milliseconds however common the words are (SQLite's own bm25() counts every match of
every word first), and its statistics are the window's own. Results beyond the window are not offered.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import msgspec

from server.domain.records import Account, Status
from server.ids import parse_id
from server.render.bundles import StatusPage, TagView
from server.services import directory, loaders
from server.services import tags as tag_service
from server.services.errors import Unauthorized, Unprocessable
from server.services.visibility import can_see
from server.state import State
from server.storage import accounts as account_store
from server.storage import relations
from server.storage import search as store
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.search")

TYPES = ("accounts", "hashtags", "statuses")
WINDOW = 200
BM25_K1 = 1.2
BM25_B = 0.75
SPOILER_WEIGHT = 0.5
_TAG_PREFIX = re.compile(r"^\w+$")
_TAG_NAME = re.compile(r"^\w*[^\W\d]\w*$")  # what text.py links as a hashtag: not digits only
_WORD = re.compile(r"[^\W_]+")


class Query(msgspec.Struct, kw_only=True):
    q: str
    type: str | None = None
    limit: int = 20
    offset: int = 0
    resolve: bool = False
    following: bool = False
    account_id: int | None = None


class Results(msgspec.Struct, kw_only=True):
    accounts: list[Account]
    statuses: list[Status]
    hashtags: list[tuple[int | None, str]]  # (tag id, or None for a hashtag nobody has used yet; name)


@dataclass(frozen=True, slots=True)
class Found:
    """Search results ready to render."""
    accounts: list[Account]
    statuses: StatusPage
    hashtags: list[TagView]


def _is_url(q: str) -> bool:
    return q.startswith(("https://", "http://")) and " " not in q


async def search(state: State, viewer: Account | None, query: Query) -> Results:
    """Mastodon's /api/v2/search rules: anonymous callers get accounts and hashtags only, and may not
    page or make the server fetch from elsewhere."""
    q = query.q.strip()
    if query.type is not None and query.type not in TYPES:
        raise Unprocessable(f"type must be one of {', '.join(TYPES)}")
    if viewer is None and query.resolve:
        raise Unauthorized("Search queries that resolve remote resources are not supported without authentication")
    if viewer is None and query.offset:
        raise Unauthorized("Search queries pagination is not supported without authentication")
    limit = max(1, min(query.limit, 40))
    offset = max(0, query.offset)
    wants = set(TYPES) if query.type is None else {query.type}
    found = Results(accounts=[], statuses=[], hashtags=[])
    if not q:
        return found
    resolved = await _resolve(state, viewer, q, query.resolve) if _is_url(q) else None
    if "accounts" in wants:
        if isinstance(resolved, Account):
            found.accounts = [resolved]
        elif not _is_url(q):
            found.accounts = await accounts(state, viewer, q, limit=limit, offset=offset, resolve=query.resolve,
                                            following=query.following)
    if "statuses" in wants and viewer is not None:
        if isinstance(resolved, Status):
            found.statuses = [resolved]
        elif not _is_url(q):
            found.statuses = await statuses(state, viewer, q, limit=limit, offset=offset,
                                            account_id=query.account_id)
    if "hashtags" in wants and not _is_url(q):
        found.hashtags = await hashtags(state, q, limit=limit, offset=offset)
    return found


async def search_page(state: State, viewer: Account | None, query: Query) -> Found:
    """`search`, with what rendering the statuses and hashtags needs."""
    found = await search(state, viewer, query)
    return Found(accounts=found.accounts,
                 statuses=await loaders.status_page(state, viewer.id if viewer else None, found.statuses),
                 hashtags=await tag_service.viewed_by(state, viewer, found.hashtags))


async def _resolve(state: State, viewer: Account | None, url: str, fetch: bool) -> Account | Status | None:
    """A pasted link to a post or profile: one we know, or (resolve=true) one fetched from its server.
    A post is returned only if the caller may see it."""
    found: Account | Status | None = await status_store.by_uri(state.db, url) or \
        await account_store.by_uri(state.db, url) or await _local_link(state, url)
    resolver = state.resolve_url  # None unless federation runs
    if found is None and fetch and resolver is not None:
        try:
            found = await resolver(url)
        except Exception:  # resolving is best effort: a broken remote never breaks search
            log.warning("resolving %s failed", url, exc_info=True)
            found = None
    if isinstance(found, Status):
        if found.reblog_of_id is not None or not await can_see(state, viewer.id if viewer else None, found):
            return None
    if isinstance(found, Account) and (found.suspended or found.deleted_at is not None):
        return None
    return found


async def _local_link(state: State, url: str) -> Account | Status | None:
    """Our own web links: {base}/@name and {base}/@name/{status id}."""
    prefix = state.base_url + "/@"
    if not url.startswith(prefix):
        return None
    name, _, rest = url[len(prefix):].partition("/")
    account = await account_store.by_username(state.db, name)
    if account is None:
        return None
    if not rest:
        return account
    status_id = parse_id(rest)
    if status_id is not None:
        status = await status_store.get(state.db, status_id)
        if status is not None and status.account_id == account.id:
            return status
    return None


async def accounts(state: State, viewer: Account | None, q: str, *, limit: int, offset: int = 0,
                   resolve: bool = False, following: bool = False) -> list[Account]:
    """Accounts by name or profile field; `user@domain` is an exact look-up, fetched when `resolve`."""
    q = q.strip().lstrip("@")
    if not q:
        return []
    qualified = directory.qualifiers(q)
    if qualified is not None:  # department:…, title:…, location:… (services/directory.py)
        return await directory.search(state, viewer, qualified[0], qualified[1], limit=limit, offset=offset,
                                      following=following)
    username, _, domain = q.partition("@")
    if domain:
        if domain.lower() == state.domain:
            domain = ""
        exact = await account_store.by_username(state.db, username, domain.lower())
        resolver = state.resolve_account
        if exact is None and domain and resolve and viewer is not None and resolver is not None:
            try:
                exact = await resolver(f"{username}@{domain}")
            except Exception:  # resolving is best effort: a broken remote never breaks search
                log.warning("resolving %s@%s failed", username, domain, exc_info=True)
                exact = None
        if exact is None or exact.suspended or exact.deleted_at is not None or offset:
            return []
        return [exact]
    return await account_store.search(state.db, q, limit, offset,
                                      following_of=viewer.id if following and viewer is not None else None)


async def hashtags(state: State, q: str, *, limit: int, offset: int = 0) -> list[tuple[int | None, str]]:
    """Hashtags starting with the query. For `#name`, that very hashtag comes first even if nobody has
    used it yet (as in Mastodon), so it can be opened and followed."""
    typed_hash = q.strip().startswith("#")
    name = q.strip().lstrip("#")
    if not _TAG_PREFIX.match(name) or len(name) > 255:
        return []
    found: list[tuple[int | None, str]] = list(await store.hashtags(state.db, name, limit, offset))
    if typed_hash and offset == 0 and _TAG_NAME.match(name) and not any(n.lower() == name.lower() for _, n in found):
        found = [(None, name), *found][:limit]
    return found


async def statuses(state: State, viewer: Account, q: str, *, limit: int, offset: int = 0,
                   account_id: int | None = None) -> list[Status]:
    """Statuses containing every word (and quoted phrase) of the query and none of the `-excluded`
    ones, that the viewer may see, most relevant first."""
    wanted, excluded = store.terms(q)
    if not wanted or offset >= WINDOW:
        return []
    hidden = await relations.hidden_account_ids(state.db, viewer.id)
    rows = await store.status_candidates(state.db, wanted, excluded, viewer.id, window=WINDOW,
                                         account_id=account_id, hidden=hidden)
    ranked = rank(rows, wanted)
    page = ranked[offset:offset + limit]
    found = await status_store.get_many(state.db, page)
    return [found[i] for i in page if i in found]


# ASCII letters and digits kept (lower-cased), everything else a space: bytes.translate runs in C, and
# most posts are ASCII; search sits on the request path, so this is worth the two branches.
_ASCII_WORDS = bytes(c if chr(c).isalnum() else 32 for c in range(128)).lower() + b" " * 128


def _words(text: str) -> list[bytes]:
    """Words as the index's tokenizer (unicode61, diacritics removed) sees them, near enough to score."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORDS).split()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch))
    return [w.encode() for w in _WORD.findall(text)]


def rank(rows: list[Any], wanted: list[str]) -> list[int]:
    """Status ids of (id, text, spoiler) rows by BM25 over the query's words, ties newest first."""
    if not rows:
        return []
    terms = list(dict.fromkeys(w for phrase in wanted for w in _words(phrase)))
    docs = []
    for row in rows:
        text_words = _words(row[1] or "")
        spoiler_words = _words(row[2] or "") if row[2] else []
        # list.count runs in C; a query has a handful of terms, a post a few dozen words
        counts = {t: text_words.count(t) + SPOILER_WEIGHT * spoiler_words.count(t) for t in terms}
        docs.append((row[0], counts, len(text_words) + SPOILER_WEIGHT * len(spoiler_words)))
    n = len(docs)
    average = sum(length for _, _, length in docs) / n or 1.0
    idf = {}
    for t in terms:
        df = sum(1 for _, counts, _ in docs if counts[t])
        idf[t] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    scored = []
    for status_id, counts, length in docs:
        score = 0.0
        for t in terms:
            tf = counts[t]
            if tf:
                score += idf[t] * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * length / average))
        scored.append((-score, -status_id))
    scored.sort()
    return [-sid for _, sid in scored]
