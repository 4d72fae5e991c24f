"""Hashtags as things to look at and follow: a followed hashtag's public posts reach the home feed."""

from __future__ import annotations

import re
import time

from server.domain.paging import Page
from server.domain.records import Account
from server.ids import id_for_time
from server.render.bundles import TagView
from server.services.errors import NotFound
from server.state import State
from server.storage import tag_follows as store

# The same shape text.py links as a hashtag: word characters with at least one that is not a digit.
_NAME = re.compile(r"^\w*[^\W\d]\w*$")
MAX_NAME = 255


def normalise(name: str) -> str:
    """A tag name from a URL (`#` allowed in front); 404 for anything that cannot be a hashtag."""
    name = name.strip().lstrip("#")
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise NotFound()
    return name


async def views(state: State, tags: list[tuple[int | None, str]], following: set[int] | None) -> list[TagView]:
    """Tags with a week of use (one query for all); `following` None for nobody in particular."""
    since = id_for_time((int(time.time()) // 86400 - 6) * 86400)
    ids = [t for t, _ in tags if t is not None]
    usage = await store.history(state.db, ids, since) if ids else {}
    return [TagView(name=name, tag_id=tag_id, usage=usage.get(tag_id, []) if tag_id is not None else [],
                    following=None if following is None else tag_id in following) for tag_id, name in tags]


async def viewed_by(state: State, viewer: Account | None, tags: list[tuple[int | None, str]]) -> list[TagView]:
    """`views` with whether the viewer follows each tag."""
    ids = [t for t, _ in tags if t is not None]
    following = await store.following(state.db, viewer.id, ids) if viewer is not None else None
    return await views(state, tags, following)


async def show(state: State, viewer: Account | None, name: str) -> TagView:
    """A hashtag by name; one nobody used yet still exists as far as clients are concerned."""
    name = normalise(name)
    found = await store.tag_by_name(state.db, name)
    if found is None:
        return TagView(name=name, tag_id=None, usage=[], following=False if viewer else None)
    return (await viewed_by(state, viewer, [found]))[0]


async def follow(state: State, account: Account, name: str) -> TagView:
    async with state.db.transaction() as tx:
        tag_id, stored = await store.ensure_tag(tx, normalise(name))
        await store.follow(tx, account.id, tag_id)
    return (await views(state, [(tag_id, stored)], {tag_id}))[0]


async def unfollow(state: State, account: Account, name: str) -> TagView:
    name = normalise(name)
    found = await store.tag_by_name(state.db, name)
    if found is None:
        return TagView(name=name, tag_id=None, usage=[], following=False)
    async with state.db.transaction() as tx:
        await store.unfollow(tx, account.id, found[0])
    return (await views(state, [found], set()))[0]


async def followed(state: State, account: Account, page: Page) -> tuple[list[TagView], list[int]]:
    """The hashtags the account follows, and the row ids paging follows."""
    rows = await store.followed_page(state.db, account.id, page)
    tags: list[tuple[int | None, str]] = [(tag_id, name) for _, tag_id, name in rows]
    return await views(state, tags, {t for t, _ in tags if t is not None}), [r for r, _, _ in rows]
