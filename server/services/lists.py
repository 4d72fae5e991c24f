"""Lists: an owner's named groups of followed accounts, each with its own feed."""

from __future__ import annotations

from server.domain.paging import Page
from server.domain.records import Account, UserList
from server.render.bundles import StatusPage
from server.services import accounts as account_service
from server.services import loaders
from server.services.errors import NotFound, Unprocessable
from server.state import State
from server.storage import accounts as account_store
from server.storage import lists as store
from server.storage import relations

REPLIES_POLICIES = ("followed", "list", "none")
MAX_TITLE = 256
MAX_LISTS = 500


def _title(title: str | None) -> str:
    title = (title or "").strip()
    if not title:
        raise Unprocessable("Title can't be blank")
    if len(title) > MAX_TITLE:
        raise Unprocessable(f"Title is too long (maximum is {MAX_TITLE} characters)")
    return title


def _policy(policy: str | None) -> str:
    policy = policy or "list"
    if policy not in REPLIES_POLICIES:
        raise Unprocessable(f"Replies policy must be one of {', '.join(REPLIES_POLICIES)}")
    return policy


async def own_list(state: State, account: Account, list_id: int) -> UserList:
    item = await store.get(state.db, list_id)
    if item is None or item.account_id != account.id:
        raise NotFound()
    return item


async def create(state: State, account: Account, title: str | None, replies_policy: str | None,
                 exclusive: bool | None) -> UserList:
    title_, policy = _title(title), _policy(replies_policy)
    if len(await store.owned(state.db, account.id)) >= MAX_LISTS:
        raise Unprocessable(f"You can have at most {MAX_LISTS} lists")
    async with state.db.transaction() as tx:
        return await store.insert(tx, account.id, title_, policy, bool(exclusive))


async def update(state: State, account: Account, list_id: int, title: str | None, replies_policy: str | None,
                 exclusive: bool | None) -> UserList:
    item = await own_list(state, account, list_id)
    title_ = item.title if title is None else _title(title)
    policy = item.replies_policy if replies_policy is None else _policy(replies_policy)
    flag = item.exclusive if exclusive is None else exclusive
    async with state.db.transaction() as tx:
        await store.update(tx, list_id, title_, policy, flag)
    return await own_list(state, account, list_id)


async def delete(state: State, account: Account, list_id: int) -> None:
    await own_list(state, account, list_id)
    async with state.db.transaction() as tx:
        await store.delete(tx, list_id)


async def add_members(state: State, account: Account, list_id: int, account_ids: list[int]) -> None:
    """Only accounts the owner follows can join a list (as in Mastodon); all or nothing."""
    item = await own_list(state, account, list_id)
    if not account_ids:
        raise Unprocessable("Account ids can't be blank")
    found = await account_store.get_many(state.db, account_ids)
    for account_id in account_ids:
        if account_id not in found:
            raise NotFound()
        if await relations.follow(state.db, account.id, account_id) is None:
            raise NotFound("Record not found", "You can only add accounts you follow to a list")
    async with state.db.transaction() as tx:
        for member in await store.add_members(tx, item.id, dict.fromkeys(account_ids)):
            await store.backfill(tx, item.id, account.id, member)


async def remove_members(state: State, account: Account, list_id: int, account_ids: list[int]) -> None:
    item = await own_list(state, account, list_id)
    async with state.db.transaction() as tx:
        await store.remove_members(tx, item.id, list(dict.fromkeys(account_ids)))


async def owned(state: State, account: Account) -> list[UserList]:
    return await store.owned(state.db, account.id)


async def containing(state: State, account: Account, member_id: int) -> list[UserList]:
    """The account's lists that hold this (existing) account."""
    target = await account_service.require_account(state, member_id)
    return await store.owned_containing(state.db, account.id, target.id)


async def members(state: State, account: Account, list_id: int, page: Page | None) -> tuple[list[Account], list[int]]:
    """The members of one of the account's lists (every one when `page` is None), and the row ids
    paging follows."""
    item = await own_list(state, account, list_id)
    rows = await store.members_page(state.db, item.id, page)
    found = await account_store.get_many(state.db, [a for _, a in rows])
    return [found[a] for _, a in rows if a in found], [r for r, _ in rows]


async def timeline(state: State, account: Account, list_id: int, page: Page) -> StatusPage:
    """A list's feed, ruled like the home timeline (blocks and mutes, `hide` filters for home)."""
    item = await own_list(state, account, list_id)
    hidden = await relations.hidden_account_ids(state.db, account.id)
    ids = await store.timeline(state.db, item.id, page, hidden)
    return loaders.without_hidden(await loaders.statuses_by_ids(state, account.id, ids), "home")
