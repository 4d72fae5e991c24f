"""Trending tags, links and posts inside the organisation, and their admin review.

What counts: public, original posts of listed accounts here and on the instances that cross our
boundary (remote posts are stored only after the boundary admitted them), never silenced or suspended
accounts, never a deleted post. Local-only posts count only for signed-in viewers of this instance, so
anonymous visitors never learn of them, not even as a count. Unlisted, followers-only and direct posts
(members-only group posts among them) never count.

- A tag trends when at least `trends.min_accounts` accounts used it in the last `trends.window_hours`;
  tags are ranked by those accounts, then by uses. History: the last 7 days, as Mastodon renders it.
- A link (in a post's text, not a mention or hashtag) trends by the same rule.
- A post trends when at least `trends.min_accounts` other accounts favourited, boosted or reacted to it
  within the window (posts of the window only), the most engaged first.

Admins (and moderators) hide an item by rejecting it and show it again by approving it (Mastodon's
/api/v1/admin/trends/*). Counts are kept in a bounded cache for `trends.cache_seconds`; a review drops
the cache in every process.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from server.caches import BoundedCache
from server.domain.records import Account, Status
from server.domain.trends import LinkTrend, StatusTrend, TagTrend, Trends, Usage
from server.ids import id_for_time
from server.services import audit
from server.services.errors import NotFound, Unprocessable
from server.state import Invalidation, State
from server.storage import relations, tag_follows
from server.storage import statuses as status_store
from server.storage import trends as store

CACHE = "trends"  # (audience, reviewed?) → Trends; owner: this module
HISTORY_DAYS = 7
CANDIDATES = 100  # tags, links and posts kept per computation (clients page through at most 40)
LINK_POSTS = 5000  # newest posts with links read per computation
KINDS = ("tag", "status", "link")
T = TypeVar("T")


def link_id(url: str) -> int:
    """A stable positive id for a link (its URL hashed), for the admin API's /links/:id."""
    return int(hashlib.sha256(url.encode()).hexdigest()[:15], 16)


class _Links(HTMLParser):
    """The links of a post's HTML, mentions and hashtags left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if "mention" in classes or "hashtag" in classes or found.get("rel") == "tag":
            return
        url = _normal(found.get("href") or "")
        if url and url not in self.urls:
            self.urls.append(url)


def _normal(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        return None
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))


def links_of(html: str) -> list[str]:
    parser = _Links()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; a pathological post simply has no links
        return []
    return parser.urls


def _id_at(moment: datetime) -> int:
    return id_for_time(int(moment.timestamp()))


def _days(now: datetime) -> list[str]:
    """The last HISTORY_DAYS days (YYYY-MM-DD, UTC), today first."""
    return [(now - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(HISTORY_DAYS)]


def _history(per_day: dict[str, tuple[int, int]], days: list[str]) -> Usage:
    return [(d, *per_day.get(d, (0, 0))) for d in days]


def _cache(state: State) -> BoundedCache | None:
    seconds = state.settings.trends.cache_seconds
    if seconds <= 0:
        return None
    try:
        return state.caches.get(CACHE)
    except KeyError:
        return state.caches.add(BoundedCache(CACHE, maxsize=4, ttl=float(seconds)))


async def compute(state: State, *, local_only: bool) -> Trends:
    """Every candidate, rejected ones marked (the admin view); the public view drops those."""
    cache = _cache(state)
    cached = cache.get(local_only) if cache is not None else None
    if isinstance(cached, Trends):
        return cached
    found = await _compute(state, local_only)
    if cache is not None:
        cache.put(local_only, found)
    return found


async def _compute(state: State, local_only: bool) -> Trends:
    settings = state.settings.trends
    now = datetime.now(UTC)
    days = _days(now)
    window_start = _id_at(now - timedelta(hours=settings.window_hours))
    history_start = _id_at(datetime.strptime(days[-1], "%Y-%m-%d").replace(tzinfo=UTC))
    db = state.db

    rejected = {kind: await store.rejected(db, kind) for kind in KINDS}
    tag_rows = await store.tag_window(db, window_start, local_only, settings.min_accounts, CANDIDATES)
    per_tag: dict[int, dict[str, tuple[int, int]]] = {}
    for tag_id, day, uses, people in await store.tag_history(db, history_start, local_only, [r[0] for r in tag_rows]):
        per_tag.setdefault(tag_id, {})[day] = (uses, people)
    tags = [TagTrend(id=r[0], name=r[1], uses=r[2], accounts=r[3], history=_history(per_tag.get(r[0], {}), days),
                     rejected=str(r[0]) in rejected["tag"]) for r in tag_rows]

    # Links: who shared which URL, per day and within the window.
    link_days: dict[str, dict[str, tuple[set[int], int]]] = {}
    link_window: dict[str, tuple[set[int], int]] = {}
    for status_id, account_id, day, content in await store.linking_posts(db, history_start, local_only, LINK_POSTS):
        for url in links_of(content or ""):
            people, uses = link_days.setdefault(url, {}).get(day, (set(), 0))
            people.add(account_id)
            link_days[url][day] = (people, uses + 1)
            if status_id >= window_start:
                people, uses = link_window.get(url, (set(), 0))
                people.add(account_id)
                link_window[url] = (people, uses + 1)
    ranked = sorted(((len(p), uses, url) for url, (p, uses) in link_window.items() if len(p) >= settings.min_accounts),
                    reverse=True)[:CANDIDATES]
    links = [LinkTrend(id=link_id(url), url=url, uses=uses, accounts=people,
                       history=_history({d: (u, len(p)) for d, (p, u) in link_days[url].items()}, days),
                       rejected=str(link_id(url)) in rejected["link"]) for people, uses, url in ranked]

    engaged = await store.status_engagement(db, window_start, local_only, settings.min_accounts, CANDIDATES)
    statuses = [StatusTrend(status_id=s, accounts=n, rejected=str(s) in rejected["status"]) for s, n in engaged]
    return Trends(tags=tags, links=links, statuses=statuses)


def _page(items: list[T], offset: int, limit: int, maximum: int) -> list[T]:
    if offset < 0:
        raise Unprocessable("offset must not be negative")
    return items[offset:offset + max(1, min(limit, maximum))]


def _local_only_for(viewer: Account | None) -> bool:
    return viewer is not None and viewer.local


async def tags(state: State, viewer: Account | None, *, offset: int = 0,
               limit: int = 10) -> tuple[list[TagTrend], set[int] | None]:
    """A page of trending tags, and which of them the viewer follows (None when anonymous)."""
    found = await compute(state, local_only=_local_only_for(viewer))
    shown = _page([t for t in found.tags if not t.rejected], offset, limit, 20)
    following = await tag_follows.following(state.db, viewer.id, [t.id for t in shown]) if viewer else None
    return shown, following


async def links(state: State, viewer: Account | None, *, offset: int = 0, limit: int = 10) -> list[LinkTrend]:
    found = await compute(state, local_only=_local_only_for(viewer))
    return _page([t for t in found.links if not t.rejected], offset, limit, 20)


async def statuses(state: State, viewer: Account | None, *, offset: int = 0, limit: int = 20) -> list[Status]:
    """Trending posts, those of accounts the viewer blocked or muted (or is blocked by) left out."""
    found = await compute(state, local_only=_local_only_for(viewer))
    hidden = await relations.hidden_account_ids(state.db, viewer.id) if viewer is not None else set()
    ids = [t.status_id for t in found.statuses if not t.rejected]
    loaded = await status_store.get_many(state.db, ids)
    visible = [loaded[i] for i in ids if i in loaded and loaded[i].deleted_at is None
               and loaded[i].account_id not in hidden]
    return _page(visible, offset, limit, 40)


# -- admin review ---------------------------------------------------------------------------------------

async def admin_list(state: State) -> Trends:
    """Everything trending for signed-in people (the widest audience), rejected items included."""
    return await compute(state, local_only=True)


async def review(state: State, actor: audit.Actor, kind: str, item_id: int, approve: bool) -> None:
    """Approve (show) or reject (hide) a trending tag, post or link; recorded in the audit log, and every
    process drops its counted trends."""
    if kind not in KINDS:
        raise NotFound()
    if kind == "tag" and not await store.tag_exists(state.db, item_id):
        raise NotFound()
    if kind == "status" and await status_store.get(state.db, item_id) is None:
        raise NotFound()
    if kind == "link" and not any(t.id == item_id for t in (await admin_list(state)).links) and not (
            await store.reviews(state.db, "link", [str(item_id)])):
        raise NotFound()
    verdict = "approved" if approve else "rejected"
    async with state.db.transaction() as tx:
        await store.review(tx, kind, str(item_id), verdict, actor.account_id)
        await audit.record(tx, actor, f"trend.{'approve' if approve else 'reject'}", target_type=kind,
                           target_id=item_id)
        await state.invalidations.announce(tx, Invalidation.TRENDS)
    cache = _cache(state)
    if cache is not None:
        cache.invalidate()


async def admin_statuses(state: State, only: list[int] | None = None) -> list[Status]:
    """Trending posts for review, rejected ones included (or just the `only` ones, trending or not)."""
    ids = only if only is not None else [t.status_id for t in (await admin_list(state)).statuses]
    loaded = await status_store.get_many(state.db, ids)
    return [loaded[i] for i in ids if i in loaded]
