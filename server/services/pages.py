"""What the public web pages show (server/http/web.py renders them): only public posts that are not
local-only, with their pictures and the posts they answer, loaded for a whole page at once."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.records import Account, Status
from server.ports import Row
from server.state import State
from server.storage import accounts as account_store
from server.storage import media as media_store
from server.storage import statuses as status_store

PROFILE_POSTS = 20


def shown_publicly(status: Status) -> bool:
    """What a visitor without an account may see: public posts (not unlisted, not local-only)."""
    return (status.visibility == "public" and not status.local_only and status.deleted_at is None
            and status.reblog_of_id is None)


@dataclass(frozen=True, slots=True)
class PublicPosts:
    items: list[Status]
    media: dict[int, list[Row]]  # status id → its attachment rows, in order
    parents: dict[int, Status]  # the posts they answer, when those are public too


@dataclass(frozen=True, slots=True)
class Profile:
    posts: PublicPosts
    older_id: int | None  # where the next (older) page starts, if there is one


async def public_posts(state: State, items: list[Status]) -> PublicPosts:
    media: dict[int, list[Row]] = {}
    for row in await media_store.for_statuses(state.db, [s.id for s in items]):
        media.setdefault(row["status_id"], []).append(row)
    parents = await status_store.get_many(state.db, [s.in_reply_to_id for s in items if s.in_reply_to_id])
    return PublicPosts(items=items, media=media, parents={i: p for i, p in parents.items() if shown_publicly(p)})


async def local_account(state: State, username: str) -> Account | None:
    """A local person by username (None for unknown ones and the instance's own actor)."""
    account = await account_store.by_username(state.db, username)
    if account is None or not account.local or account.actor_type == "Application":
        return None
    return account


async def profile(state: State, account: Account, max_id: int | None) -> Profile:
    """A page of the account's public posts, newest first, before `max_id`."""
    ids = await status_store.public_ids_of(state.db, account.id, PROFILE_POSTS + 1, max_id, only_public=True)
    older_id = ids[PROFILE_POSTS - 1] if len(ids) > PROFILE_POSTS else None
    found = await status_store.get_many(state.db, ids[:PROFILE_POSTS])
    items = [found[i] for i in ids[:PROFILE_POSTS] if i in found and shown_publicly(found[i])]
    return Profile(posts=await public_posts(state, items), older_id=older_id)
