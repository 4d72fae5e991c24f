"""Where a new status goes beyond its followers' home feeds: lists (replies policy, exclusive lists),
the home feeds of those following its hashtags, and the list and hashtag streams.

fan_out (services/statuses.py) asks `plan` first, stores with `store`, and announces with `publish`.
"""

from __future__ import annotations

import msgspec

from server.events import Event
from server.records import Status, UserList
from server.state import State
from server.storage import lists as list_store
from server.storage import relations, tag_follows
from server.storage import statuses as status_store


class Delivery(msgspec.Struct):
    home: set[int]  # readers whose home feed gets the status
    lists: list[int]  # list feeds that get it
    tags: list[str]  # its hashtags (lower case), for the hashtag streams


async def _reply_shown(state: State, status: Status, item: UserList) -> bool:
    """Mastodon's list replies policy: replies to the owner or to oneself always show; otherwise
    `followed` shows replies to accounts the owner follows, `list` to list members, `none` nothing."""
    target = status.in_reply_to_account_id
    if status.in_reply_to_id is None or target is None or target in (status.account_id, item.account_id):
        return True
    if item.replies_policy == "followed":
        return await relations.follow(state.db, item.account_id, target) is not None
    if item.replies_policy == "list":
        return target in await list_store.member_ids(state.db, item.id)
    return False


async def plan(state: State, status: Status, readers: set[int]) -> Delivery:
    home = set(readers)
    list_ids: list[int] = []
    if status.visibility in ("public", "unlisted", "private"):
        exclusive_owners = set()
        for item in await list_store.containing(state.db, status.account_id):
            # Only owners who receive the status at all (following, boosts shown) get it in their lists.
            if item.account_id not in readers or item.account_id == status.account_id:
                continue
            if item.exclusive:
                exclusive_owners.add(item.account_id)
            if await _reply_shown(state, status, item):
                list_ids.append(item.id)
        home -= exclusive_owners
    tags: list[str] = []
    if status.reblog_of_id is None:
        tags = sorted({t.lower() for t in (await status_store.tags_for(state.db, [status.id])).get(status.id, [])})
        if tags and status.visibility == "public":
            home |= await tag_follows.local_followers_of_tags(state.db, status.id)
    return Delivery(home=home, lists=list_ids, tags=tags)


async def store(tx: object, status: Status, delivery: Delivery) -> None:
    if delivery.lists:
        await list_store.add_to_feeds(tx, status.id, delivery.lists)


def publish(state: State, status: Status, delivery: Delivery, name: str = "update") -> None:
    for list_id in delivery.lists:
        state.bus.publish(Event(topic=f"list:{list_id}", name=name, payload=None, status_id=status.id))
    if status.visibility == "public" and status.reblog_of_id is None:
        for tag in delivery.tags:
            state.bus.publish(Event(topic=f"hashtag:{tag}", name=name, payload=None, status_id=status.id))
            if status.local:
                state.bus.publish(Event(topic=f"hashtag:local:{tag}", name=name, payload=None, status_id=status.id))


async def publish_edit(state: State, status: Status) -> None:
    """status.update to the lists holding an edited status and to its hashtag streams."""
    tags = sorted({t.lower() for t in (await status_store.tags_for(state.db, [status.id])).get(status.id, [])})
    lists = await list_store.lists_holding(state.db, status.id)
    publish(state, status, Delivery(home=set(), lists=lists, tags=tags), "status.update")
