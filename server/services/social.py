"""Following, follow requests, blocking and muting."""

from __future__ import annotations

from server.ids import new_id
from server.records import Account
from server.services import notify
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.services.streaming import relations_changed
from server.state import State
from server.storage import notifications as notification_store
from server.storage import relations, timelines


async def follow(state: State, account: Account, target: Account, *, reblogs: bool = True,
                 notify_posts: bool = False, follow_uri: str | None = None) -> None:
    """Follow `target`; for a remote follower, `follow_uri` is the id of its Follow activity."""
    if target.id == account.id:
        raise Unprocessable("You cannot follow yourself")
    if await relations.blocked_either_way(state.db, account.id, target.id):
        raise Forbidden("This action is not allowed")
    if await relations.follow(state.db, account.id, target.id) is not None:
        async with state.db.transaction() as tx:
            await relations.insert_follow(tx, account.id, target.id, show_reblogs=reblogs, notify=notify_posts, uri=None)
        if not account.local:  # a repeated Follow: the remote side lost our Accept, so send it again
            await state.outbound.follow_accepted(target, account, follow_uri)
        return
    if await relations.follow_request(state.db, account.id, target.id) is not None:
        return
    if account.local:
        follow_uri = f"{account.uri}/follows/{new_id()}"
    notes = []
    if target.locked or not target.local:
        # Remote follows stay requests until the remote side answers with Accept.
        async with state.db.transaction() as tx:
            await relations.insert_follow_request(tx, account.id, target.id, show_reblogs=reblogs,
                                                  notify=notify_posts, uri=follow_uri)
            if target.local:
                notes.append(await notify.create(state, tx, target.id, account.id, "follow_request"))
    else:
        async with state.db.transaction() as tx:
            await relations.insert_follow(tx, account.id, target.id, show_reblogs=reblogs, notify=notify_posts,
                                          uri=follow_uri)
            if account.local:
                await timelines.backfill_feed(tx, account.id, target.id)
            notes.append(await notify.create(state, tx, target.id, account.id, "follow"))
    notify.announce(state, notes)
    if not target.local and follow_uri:
        await state.outbound.follow_requested(account, target, follow_uri)
    elif not account.local and not target.locked:
        await state.outbound.follow_accepted(target, account, follow_uri)


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


async def unfollow(state: State, account: Account, target: Account) -> None:
    async with state.db.transaction() as tx:
        row = await relations.follow(tx, account.id, target.id)
        removed = await relations.delete_follow(tx, account.id, target.id)
        request = await relations.delete_follow_request(tx, account.id, target.id)
        if removed and account.local:
            await timelines.remove_account_from_feed(tx, account.id, target.id)
    if (removed or request is not None) and not target.local:
        uri = (row["uri"] if row is not None else None) or (request["uri"] if request is not None else None)
        await state.outbound.unfollowed(account, target, uri)


async def answer_request(state: State, account: Account, requester: Account, accept: bool) -> None:
    async with state.db.transaction() as tx:
        request = await relations.delete_follow_request(tx, requester.id, account.id)
        if request is None:
            raise NotFound("Follow request not found")
        await notification_store.delete_matching(tx, requester.id, "follow_request", account_id=account.id)
        note = None
        if accept:
            await relations.insert_follow(tx, requester.id, account.id, show_reblogs=bool(request["show_reblogs"]),
                                          notify=bool(request["notify"]), uri=request["uri"])
            if requester.local:
                await timelines.backfill_feed(tx, requester.id, account.id)
            note = await notify.create(state, tx, account.id, requester.id, "follow")
    notify.announce(state, [note])
    if not requester.local:
        if accept:
            await state.outbound.follow_accepted(account, requester, request["uri"])
        else:
            await state.outbound.follow_rejected(account, requester, request["uri"])


async def remove_follower(state: State, account: Account, follower: Account) -> None:
    async with state.db.transaction() as tx:
        row = await relations.follow(tx, follower.id, account.id)
        removed = await relations.delete_follow(tx, follower.id, account.id)
        if removed and follower.local:
            await timelines.remove_account_from_feed(tx, follower.id, account.id)
    if removed and not follower.local:
        await state.outbound.follow_rejected(account, follower, row["uri"] if row is not None else None)


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
        added = await relations.set_block(tx, account.id, target.id, True, block_uri)
        await notification_store.delete_from(tx, account.id, target.id)
    relations_changed(state, account.id, target.id)
    if added and not target.local and block_uri:
        await state.outbound.blocked(account, target, block_uri)


async def unblock(state: State, account: Account, target: Account) -> None:
    uri = await relations.block_uri(state.db, account.id, target.id)
    async with state.db.transaction() as tx:
        removed = await relations.set_block(tx, account.id, target.id, False)
    relations_changed(state, account.id, target.id)
    if removed and not target.local:
        await state.outbound.unblocked(account, target, uri)


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
