"""Following, follow requests, blocking and muting."""

from __future__ import annotations

from server.domain.events import (
    Blocked,
    Followed,
    FollowRejected,
    FollowRequested,
    Unblocked,
    Unfollowed,
)
from server.domain.paging import Page
from server.domain.records import Account, Relationship
from server.ids import new_id
from server.services import group_rules
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.services.streaming import relations_changed
from server.state import State
from server.storage import accounts as account_store
from server.storage import notifications as notification_store
from server.storage import relations, timelines


async def follow(state: State, account: Account, target: Account, *, reblogs: bool = True,
                 notify_posts: bool = False, follow_uri: str | None = None) -> None:
    """Follow `target`; for a remote follower, `follow_uri` is the id of its Follow activity."""
    if target.id == account.id:
        raise Unprocessable("You cannot follow yourself")
    if await relations.blocked_either_way(state.db, account.id, target.id):
        raise Forbidden("This action is not allowed")
    if target.actor_type == "Group":
        await group_rules.check_join(state, account, target)
    if await relations.follow(state.db, account.id, target.id) is not None:
        async with state.db.transaction() as tx:
            await relations.insert_follow(tx, account.id, target.id, show_reblogs=reblogs, notify=notify_posts, uri=None)
            if not account.local:  # a repeated Follow: the remote side lost our Accept, so send it again
                await state.events.record(tx, Followed(follower_id=account.id, target_id=target.id,
                                                       uri=follow_uri, repeated=True))
        return
    if await relations.follow_request(state.db, account.id, target.id) is not None:
        return
    if account.local:
        follow_uri = f"{account.uri}/follows/{new_id()}"
    async with state.db.transaction() as tx:
        if target.locked or not target.local:
            # Remote follows stay requests until the remote side answers with Accept.
            await relations.insert_follow_request(tx, account.id, target.id, show_reblogs=reblogs,
                                                  notify=notify_posts, uri=follow_uri)
            await state.events.record(tx, FollowRequested(follower_id=account.id, target_id=target.id,
                                                          uri=follow_uri))
        else:
            await relations.insert_follow(tx, account.id, target.id, show_reblogs=reblogs, notify=notify_posts,
                                          uri=follow_uri)
            if account.local:
                await timelines.backfill_feed(tx, account.id, target.id)
            await state.events.record(tx, Followed(follower_id=account.id, target_id=target.id, uri=follow_uri))


async def accept_remote_follow(state: State, follower: Account, target: Account) -> None:
    """The remote side accepted a follow request we sent (the inbox calls this)."""
    async with state.db.transaction() as tx:
        request = await relations.delete_follow_request(tx, follower.id, target.id)
        if request is None:
            return
        await relations.insert_follow(tx, follower.id, target.id, show_reblogs=bool(request["show_reblogs"]),
                                      notify=bool(request["notify"]), uri=request["uri"])


async def drop_follow(state: State, follower: Account, target: Account) -> None:
    """The remote side rejected our follow (or removed us as a follower after accepting)."""
    async with state.db.transaction() as tx:
        await relations.delete_follow_request(tx, follower.id, target.id)
        if await relations.delete_follow(tx, follower.id, target.id) and follower.local:
            await timelines.remove_account_from_feed(tx, follower.id, target.id)


async def refuse_follow(state: State, follower: Account, target: Account, follow_uri: str | None) -> None:
    """Answer a Follow we will not take (e.g. from a blocked account) with a Reject."""
    async with state.db.transaction() as tx:
        await state.events.record(tx, FollowRejected(follower_id=follower.id, target_id=target.id, uri=follow_uri))


async def unfollow(state: State, account: Account, target: Account) -> None:
    async with state.db.transaction() as tx:
        row = await relations.follow(tx, account.id, target.id)
        removed = await relations.delete_follow(tx, account.id, target.id)
        request = await relations.delete_follow_request(tx, account.id, target.id)
        if removed and account.local:
            await timelines.remove_account_from_feed(tx, account.id, target.id)
        if removed or request is not None:
            uri = (row["uri"] if row is not None else None) or (request["uri"] if request is not None else None)
            await state.events.record(tx, Unfollowed(follower_id=account.id, target_id=target.id, uri=uri))


async def answer_request(state: State, account: Account, requester: Account, accept: bool) -> None:
    async with state.db.transaction() as tx:
        request = await relations.delete_follow_request(tx, requester.id, account.id)
        if request is None:
            raise NotFound("Follow request not found")
        await notification_store.delete_matching(tx, requester.id, "follow_request", account_id=account.id)
        if accept:
            await relations.insert_follow(tx, requester.id, account.id, show_reblogs=bool(request["show_reblogs"]),
                                          notify=bool(request["notify"]), uri=request["uri"])
            if requester.local:
                await timelines.backfill_feed(tx, requester.id, account.id)
            await state.events.record(tx, Followed(follower_id=requester.id, target_id=account.id,
                                                   uri=request["uri"]))
        else:
            await state.events.record(tx, FollowRejected(follower_id=requester.id, target_id=account.id,
                                                         uri=request["uri"]))


async def remove_follower(state: State, account: Account, follower: Account) -> None:
    async with state.db.transaction() as tx:
        row = await relations.follow(tx, follower.id, account.id)
        removed = await relations.delete_follow(tx, follower.id, account.id)
        if removed:
            if follower.local:
                await timelines.remove_account_from_feed(tx, follower.id, account.id)
            await state.events.record(tx, FollowRejected(follower_id=follower.id, target_id=account.id,
                                                         uri=row["uri"] if row is not None else None))


async def block(state: State, account: Account, target: Account, block_uri: str | None = None) -> None:
    if target.id == account.id:
        raise Unprocessable("You cannot block yourself")
    if account.local:
        block_uri = f"{account.uri}/blocks/{new_id()}"
    async with state.db.transaction() as tx:
        for a, b in ((account, target), (target, account)):
            if await relations.delete_follow(tx, a.id, b.id) and a.local:
                await timelines.remove_account_from_feed(tx, a.id, b.id)
            await relations.delete_follow_request(tx, a.id, b.id)
        if await relations.set_block(tx, account.id, target.id, True, block_uri):
            await state.events.record(tx, Blocked(account_id=account.id, target_id=target.id, uri=block_uri))
        await notification_store.delete_from(tx, account.id, target.id)
    relations_changed(state, account.id, target.id)


async def unblock(state: State, account: Account, target: Account) -> None:
    uri = await relations.block_uri(state.db, account.id, target.id)
    async with state.db.transaction() as tx:
        if await relations.set_block(tx, account.id, target.id, False):
            await state.events.record(tx, Unblocked(account_id=account.id, target_id=target.id, uri=uri))
    relations_changed(state, account.id, target.id)


async def mute(state: State, account: Account, target: Account, *, notifications: bool, duration: int) -> None:
    if target.id == account.id:
        raise Unprocessable("You cannot mute yourself")
    expires = None
    if duration > 0:
        from datetime import UTC, datetime, timedelta

        from server.ids import iso
        expires = iso(datetime.now(UTC) + timedelta(seconds=duration))
    async with state.db.transaction() as tx:
        await relations.set_mute(tx, account.id, target.id, True, notifications, expires)
    relations_changed(state, account.id)


async def unmute(state: State, account: Account, target: Account) -> None:
    async with state.db.transaction() as tx:
        await relations.set_mute(tx, account.id, target.id, False)
    relations_changed(state, account.id)


# -- listings ------------------------------------------------------------------------------------

async def _accounts(state: State, rows: list[tuple[int, int]]) -> tuple[list[Account], list[int]]:
    """(row id, account id) pairs → the accounts that exist, in order, and the row ids paging follows."""
    found = await account_store.get_many(state.db, [a for _, a in rows])
    return [found[a] for _, a in rows if a in found], [r for r, _ in rows]


async def follow_list(state: State, account: Account, direction: str, page: Page) -> tuple[list[Account], list[int]]:
    """An account's followers or follows ("followers" / "following")."""
    rows = await relations.followers_page(state.db, account.id, direction, page.max_id, page.since_id or page.min_id,
                                          page.limit)
    return await _accounts(state, rows)


async def follow_requests(state: State, account: Account, page: Page) -> tuple[list[Account], list[int]]:
    rows = await relations.pending_requests(state.db, account.id, page.max_id, page.since_id or page.min_id, page.limit)
    return await _accounts(state, rows)


async def targets(state: State, account: Account, table: str, page: Page) -> tuple[list[Account], list[int]]:
    """The accounts this one blocks or mutes ("blocks" / "mutes")."""
    rows = await relations.list_targets(state.db, table, account.id, page.max_id, page.since_id or page.min_id,
                                        page.limit)
    return await _accounts(state, rows)


async def relationships(state: State, viewer: Account, ids: list[int]) -> dict[int, Relationship]:
    """The viewer's relationship with each of these accounts (existing or not), in this order."""
    return await relations.relationships(state.db, viewer.id, ids)


async def answer_request_from(state: State, account: Account, requester_id: int, accept: bool) -> int:
    """Accept or reject the follow request of the account with this id; its id back."""
    requester = await account_store.get(state.db, requester_id)
    if requester is None:
        raise NotFound()
    await answer_request(state, account, requester, accept)
    return requester.id
