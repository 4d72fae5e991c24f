"""Hashtags as things to look at and follow: a followed hashtag's public posts reach the home feed."""

from __future__ import annotations

import re

from server.records import Account
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


async def follow(state: State, account: Account, name: str) -> tuple[int, str]:
    async with state.db.transaction() as tx:
        tag_id, stored = await store.ensure_tag(tx, normalise(name))
        await store.follow(tx, account.id, tag_id)
    return tag_id, stored


async def unfollow(state: State, account: Account, name: str) -> tuple[int, str] | None:
    found = await store.tag_by_name(state.db, normalise(name))
    if found is not None:
        async with state.db.transaction() as tx:
            await store.unfollow(tx, account.id, found[0])
    return found
