"""The rules a group puts on joining and posting, asked by the general use cases (following, posting)
without them knowing about groups otherwise. The organisation's boundary part of these rules lives
in the boundary module (`Boundary.group_refusal`)."""

from __future__ import annotations

import logging

from server.domain.enums import Visibility
from server.domain.groups import GroupRole, NonMemberPosts
from server.domain.records import Account, Status
from server.services.boundary import Refused
from server.services.errors import Forbidden, TooMany, Unprocessable
from server.state import State
from server.storage import accounts as account_store
from server.storage import groups as store
from server.storage import relations

log = logging.getLogger("crosstalk.groups")


async def check_join(state: State, account: Account, group_account: Account) -> None:
    """May `account` join (follow) the group? Raises Forbidden or Unprocessable; remote joiners are
    refused (and logged) by the boundary."""
    if group_account.actor_type != "Group" or not group_account.local:
        return
    group = await store.get(state.db, group_account.id)
    if group is None:
        return
    if group.archived_at is not None:
        raise Unprocessable("This group is archived")
    if await store.is_banned(state.db, group_account.id, account.id):
        raise Forbidden("You are banned from this group")
    if not account.local:
        try:
            await state.boundary.admit_group_activity(group, group_account.uri, account, "Follow")
        except Refused as exc:
            raise Forbidden(exc.reason) from exc
    await _join_flood(state, account, group_account)


async def _join_flood(state: State, account: Account, group_account: Account) -> None:
    """Join floods: a local account may join (or ask to join) only so many groups per hour and a group
    takes only so many joins per hour (429 with the window's end); one remote domain may follow one
    group only so many times per hour (refused, and logged in the boundary log)."""
    limits = state.rate_limits
    if not limits.enabled:
        return
    if account.local:
        for limit, subject in ((limits.group_joins_account, str(account.id)),
                               (limits.group_joins_group, str(group_account.id))):
            usage = await limits.hit(limit, subject)
            if usage.exceeded:
                log.info("join of group %s by %s refused: %s", group_account.id, account.acct, limit.name)
                raise TooMany("Too many group joins; try again later", limit=limit.limit, reset_at=usage.reset_at)
        return
    usage = await limits.hit(limits.group_follows_domain, f"{group_account.id}|{account.domain}")
    if usage.exceeded:
        reason = f"too many follows of the group from {account.domain} (at most {usage.limit.limit} an hour)"
        state.boundary.record("in", "group", account.domain, "rejected", actor=account.uri, activity_type="Follow",
                              reason=f"{group_account.uri}: {reason}")
        raise Forbidden(reason)


async def post_visibility(state: State, author: Account, mentioned: list[int], parent: Status | None,
                          visibility: Visibility) -> Visibility:
    """A post mentioning a members-only group (or replying in one of its threads) is addressed to the
    group alone: it becomes `direct`, and the group shares it with its members. Mentioning anyone who
    is not a member alongside is refused, so nothing of it reaches outsiders."""
    group_ids = [gid for gid in (await store.get_many(state.db, mentioned)) if gid in mentioned]
    if parent is not None:
        group_ids += [p.group_id for p in await store.posts_of(state.db, parent.id) if p.removed_at is None]
    groups = await store.get_many(state.db, group_ids)
    members_only = [g for g in groups.values() if g.members_only]
    if not members_only:
        return visibility
    for group in members_only:
        for account_id in mentioned:
            if account_id == group.account_id:
                continue
            if (await relations.follow(state.db, account_id, group.account_id) is None
                    and account_id != author.id):
                other = await account_store.get(state.db, account_id)
                name = other.acct if other is not None else str(account_id)
                raise Unprocessable(f"{name} is not a member of this members-only group")
    return Visibility.DIRECT


async def posting_to(state: State, author: Account, group_id: int, parent: Status | None,
                     mentioned: list[int]) -> list[int]:
    """A post sent with `group_id` (the Soapbox web client's way of posting in a group) is addressed to
    the group as a mention would be. Only a member may post so; a reply goes to its thread's group."""
    group_account = await account_store.get(state.db, group_id)
    if group_account is None or group_account.actor_type != "Group" or group_account.deleted_at is not None:
        raise Unprocessable("group_id is not a group")
    if (await relations.follow(state.db, author.id, group_id) is None
            and await store.role_of(state.db, group_id, author.id) == GroupRole.USER):
        group = await store.get(state.db, group_id)
        if group is None or group.non_member_posts != NonMemberPosts.HOLD:
            raise Forbidden("You are not a member of this group")
    if parent is not None:
        return mentioned
    return mentioned if group_id in mentioned else [*mentioned, group_id]
