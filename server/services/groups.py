"""Groups (FEP-1b12) as local actors: creating and changing them, membership (joining is following the
group account; approval groups are locked and their moderators answer the requests), moderation, and
the group taking posts in and sharing them with its members.

Posting to a group is mentioning it, or replying in one of its threads. After the post is stored the
`groups` subscriber decides: a member's post is taken in (a GroupPostAccepted event); a top-level post
is shared by the group's boost, so members see it in their home timeline in any Mastodon app; replies
thread under it and are not re-shared, so a lively group does not flood timelines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import msgspec

from server.domain import text
from server.domain.enums import Visibility
from server.domain.events import (
    DomainEvent,
    Followed,
    FollowRequested,
    GroupPostAccepted,
    GroupPostRemoved,
    ProfileUpdated,
    StatusCreated,
)
from server.domain.groups import (
    GroupFederation,
    GroupKind,
    GroupPost,
    GroupRole,
    HeldPost,
    LocalGroup,
    NonMemberPosts,
)
from server.domain.records import Account, Notification, Status
from server.ids import new_id, now_iso
from server.ports import Tx
from server.services import accounts as account_service
from server.services import audit, event_reads, feeds, notify, social
from server.services import statuses as status_service
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.state import State
from server.storage import accounts as account_store
from server.storage import groups as store
from server.storage import relations
from server.storage import statuses as status_store
from server.storage.paging import Page

log = logging.getLogger("crosstalk.groups")
DOMAIN = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$")
MAX_PARTNERS = 50
MAX_RULES = 5000


class GroupSpec(msgspec.Struct, kw_only=True):
    username: str
    display_name: str = ""
    note: str = ""
    kind: str = GroupKind.OPEN
    federation: str = GroupFederation.LOCAL
    partners: list[str] = []
    rules: str = ""


class GroupChanges(msgspec.Struct, kw_only=True):
    display_name: str | None = None
    note: str | None = None
    kind: str | None = None
    federation: str | None = None
    partners: list[str] | None = None
    rules: str | None = None
    discoverable: bool | None = None
    non_member_posts: str | None = None


def _non_member_posts(value: str) -> NonMemberPosts:
    try:
        return NonMemberPosts(value)
    except ValueError:
        raise Unprocessable(f"non_member_posts must be one of {', '.join(NonMemberPosts)}") from None


def _kind(value: str) -> GroupKind:
    try:
        return GroupKind(value)
    except ValueError:
        raise Unprocessable(f"kind must be one of {', '.join(GroupKind)}") from None


def _federation(value: str) -> GroupFederation:
    try:
        return GroupFederation(value)
    except ValueError:
        raise Unprocessable(f"federation must be one of {', '.join(GroupFederation)}") from None


def _partners(values: list[str]) -> list[str]:
    cleaned = []
    for value in values[:MAX_PARTNERS + 1]:
        domain = value.strip().lower()
        if not DOMAIN.match(domain):
            raise Unprocessable(f"{value!r} is not a domain")
        if domain not in cleaned:
            cleaned.append(domain)
    if len(cleaned) > MAX_PARTNERS:
        raise Unprocessable(f"at most {MAX_PARTNERS} partner domains")
    return cleaned


def _check_texts(display_name: str | None, rules: str | None) -> None:
    if display_name is not None and len(display_name) > 100:
        raise Unprocessable("display_name is too long (100 characters at most)")
    if rules is not None and len(rules) > MAX_RULES:
        raise Unprocessable(f"rules are too long ({MAX_RULES} characters at most)")


# -- looking groups up ---------------------------------------------------------------------------------

async def group_account(state: State, group_id: int) -> Account:
    """A group (hosted here or elsewhere) by account id; 404 for anything else."""
    account = await account_store.get(state.db, group_id)
    if account is None or account.actor_type != "Group" or account.deleted_at is not None or account.suspended:
        raise NotFound("Group not found")
    return account


async def local_group(state: State, group_id: int) -> tuple[Account, LocalGroup]:
    account = await group_account(state, group_id)
    group = await store.get(state.db, group_id)
    if group is None:
        raise NotFound("Group not found")
    return account, group


async def by_name(state: State, name: str) -> tuple[Account, LocalGroup]:
    account = await account_store.by_username(state.db, name.lstrip("@").split("@")[0])
    if account is None:
        raise NotFound(f"no group {name}")
    return await local_group(state, account.id)


async def settings_of(state: State, group_ids: list[int]) -> dict[int, LocalGroup]:
    return await store.get_many(state.db, group_ids)


async def role(state: State, group_id: int, account_id: int) -> GroupRole:
    return await store.role_of(state.db, group_id, account_id)


async def owner_of(state: State, group_id: int) -> int | None:
    return await store.owner_id(state.db, group_id)


async def _moderator(state: State, group_id: int, actor: Account | None,
                     owner_only: bool = False) -> tuple[Account, LocalGroup]:
    """The group, if `actor` moderates it (None: the instance's administrator, from the CLI)."""
    account, group = await local_group(state, group_id)
    if actor is not None:
        found = await store.role_of(state.db, group_id, actor.id)
        if found == GroupRole.USER or (owner_only and found != GroupRole.OWNER):
            raise Forbidden("Only the group's " + ("owner" if owner_only else "moderators") + " may do this")
    return account, group


# -- creating and changing -----------------------------------------------------------------------------

async def create(state: State, owner: Account, spec: GroupSpec) -> Account:
    if not account_service.USERNAME.match(spec.username):
        raise Unprocessable("Group name must be 1-30 letters, digits or underscores")
    if spec.username.lower() in account_service.RESERVED:
        raise Unprocessable(f"Name {spec.username} is reserved")
    if await account_store.by_username(state.db, spec.username):
        raise Unprocessable("Name has already been taken")
    if not owner.local:
        raise Unprocessable("A group's owner is a local account")
    _check_texts(spec.display_name, spec.rules)
    kind, federation, partners = _kind(spec.kind), _federation(spec.federation), _partners(spec.partners)
    if federation == GroupFederation.PARTNERS and not partners:
        raise Unprocessable("A partners group names at least one partner domain")
    group = LocalGroup(account_id=new_id(), kind=kind, federation=federation, partners=partners, rules=spec.rules,
                       archived_at=None, created_at=now_iso())
    rendered = text.render(spec.note, state.base_url, state.domain, {}) if spec.note else None
    async with state.db.transaction() as tx:
        await store.insert(tx, username=spec.username, display_name=spec.display_name or spec.username,
                           note=rendered.html if rendered else "", note_source=spec.note, group=group,
                           base_url=state.base_url)
        await store.set_role(tx, group.account_id, owner.id, GroupRole.OWNER)
        await relations.insert_follow(tx, owner.id, group.account_id, show_reblogs=True, notify=False, uri=None)
        await state.events.record(tx, Followed(follower_id=owner.id, target_id=group.account_id, uri=None))
    log.info("group %s created by %s (%s, %s)", spec.username, owner.acct, kind, federation)
    account = await account_store.get(state.db, group.account_id)
    assert account is not None
    return account


async def update(state: State, actor: Account | None, group_id: int, changes: GroupChanges) -> Account:
    account, group = await _moderator(state, group_id, actor)
    _check_texts(changes.display_name, changes.rules)
    settings: dict[str, object] = {}
    if changes.kind is not None:
        settings["kind"] = _kind(changes.kind)
    if changes.federation is not None:
        settings["federation"] = _federation(changes.federation)
    if changes.partners is not None:
        settings["partners"] = _partners(changes.partners)
    if changes.rules is not None:
        settings["rules"] = changes.rules
    if changes.non_member_posts is not None:
        settings["non_member_posts"] = _non_member_posts(changes.non_member_posts)
    if (settings.get("federation", group.federation) == GroupFederation.PARTNERS
            and not settings.get("partners", group.partners)):
        raise Unprocessable("A partners group names at least one partner domain")
    profile: dict[str, object] = {}
    if changes.display_name is not None:
        profile["display_name"] = changes.display_name
    if changes.note is not None:
        profile["note"] = text.render(changes.note, state.base_url, state.domain, {}).html if changes.note else ""
        profile["note_source"] = changes.note
    if changes.discoverable is not None:
        profile["discoverable"] = int(changes.discoverable)
    if "kind" in settings:
        profile["locked"] = int(settings["kind"] != GroupKind.OPEN)
    async with state.db.transaction() as tx:
        await store.update(tx, group_id, settings)
        await account_store.update_profile(tx, group_id, profile)
        await state.events.record(tx, ProfileUpdated(account_id=group_id))
    fresh = await account_store.get(state.db, account.id)
    assert fresh is not None
    return fresh


async def set_archived(state: State, actor: Account | None, group_id: int, archived: bool) -> None:
    """An archived group is read-only: nobody joins, nothing new is taken in or shared."""
    await _moderator(state, group_id, actor, owner_only=True)
    async with state.db.transaction() as tx:
        await store.update(tx, group_id, {"archived_at": now_iso() if archived else None})


async def transfer(state: State, actor: Account | None, group_id: int, new_owner: Account) -> None:
    """Hand the group to another local member; the old owner stays on as a moderator."""
    await _moderator(state, group_id, actor, owner_only=True)
    if not new_owner.local:
        raise Unprocessable("A group's owner is a local account")
    if await relations.follow(state.db, new_owner.id, group_id) is None:
        raise Unprocessable("The new owner must be a member of the group")
    previous = await store.owner_id(state.db, group_id)
    async with state.db.transaction() as tx:
        if previous is not None and previous != new_owner.id:
            await store.set_role(tx, group_id, previous, GroupRole.ADMIN)
        await store.set_role(tx, group_id, new_owner.id, GroupRole.OWNER)


async def set_role(state: State, actor: Account | None, group_id: int, member: Account, new_role: GroupRole) -> None:
    """Promote a member to moderator or demote a moderator (the owner's decision); ownership moves
    only through `transfer`."""
    await _moderator(state, group_id, actor, owner_only=True)
    if new_role == GroupRole.OWNER:
        raise Unprocessable("Use a transfer of ownership to change the owner")
    if await store.role_of(state.db, group_id, member.id) == GroupRole.OWNER:
        raise Unprocessable("The owner's role changes only through a transfer of ownership")
    if new_role == GroupRole.ADMIN and await relations.follow(state.db, member.id, group_id) is None:
        raise Unprocessable("Only members can become moderators")
    async with state.db.transaction() as tx:
        await store.set_role(tx, group_id, member.id, new_role)


# -- membership ----------------------------------------------------------------------------------------

async def join(state: State, account: Account, group_id: int) -> None:
    """Joining is following the group account (group_rules.check_join decides, through social.follow)."""
    target = await group_account(state, group_id)
    await social.follow(state, account, target)


async def leave(state: State, account: Account, group_id: int) -> None:
    target = await group_account(state, group_id)
    if target.local and await store.role_of(state.db, group_id, account.id) == GroupRole.OWNER:
        raise Unprocessable("The owner cannot leave the group; transfer the ownership first")
    await social.unfollow(state, account, target)
    if target.local:
        async with state.db.transaction() as tx:
            await store.set_role(tx, group_id, account.id, GroupRole.USER)


async def requests(state: State, actor: Account | None, group_id: int, limit: int) -> list[int]:
    await _moderator(state, group_id, actor)
    return [account_id for _, account_id in await relations.pending_requests(state.db, group_id, None, None, limit)]


async def answer_request(state: State, actor: Account | None, group_id: int, requester: Account, accept: bool) -> None:
    account, _ = await _moderator(state, group_id, actor)
    if accept and await store.is_banned(state.db, group_id, requester.id):
        raise Forbidden("This account is banned from the group")
    await social.answer_request(state, account, requester, accept)


async def _removable(state: State, actor: Account | None, group_id: int, member: Account) -> Account:
    account, _ = await _moderator(state, group_id, actor)
    target_role = await store.role_of(state.db, group_id, member.id)
    if target_role == GroupRole.OWNER:
        raise Forbidden("The owner cannot be removed from the group")
    if actor is not None and target_role == GroupRole.ADMIN and (
            await store.role_of(state.db, group_id, actor.id)) != GroupRole.OWNER:
        raise Forbidden("Only the owner removes a moderator")
    return account


async def kick(state: State, actor: Account | None, group_id: int, member: Account) -> None:
    account = await _removable(state, actor, group_id, member)
    await social.remove_follower(state, account, member)
    async with state.db.transaction() as tx:
        await store.set_role(tx, group_id, member.id, GroupRole.USER)


async def ban(state: State, actor: Account | None, group_id: int, member: Account, on: bool = True) -> None:
    """A ban removes the member (and any pending request) and refuses them from then on."""
    if not on:
        await _moderator(state, group_id, actor)
        async with state.db.transaction() as tx:
            await store.set_ban(tx, group_id, member.id, False)
        return
    account = await _removable(state, actor, group_id, member)
    async with state.db.transaction() as tx:
        await store.set_ban(tx, group_id, member.id, True)
        await store.set_role(tx, group_id, member.id, GroupRole.USER)
        await relations.delete_follow_request(tx, member.id, group_id)
    await social.remove_follower(state, account, member)


async def banned(state: State, actor: Account | None, group_id: int) -> list[int]:
    await _moderator(state, group_id, actor)
    return await store.banned_ids(state.db, group_id)


async def members(state: State, group_id: int, member_role: GroupRole | None, page: Page) -> list[tuple[int, int]]:
    await group_account(state, group_id)
    return await store.members_page(state.db, group_id, member_role, page)


async def roles(state: State, group_id: int) -> dict[int, GroupRole]:
    return await store.roles(state.db, group_id)


async def joined(state: State, account: Account) -> list[Account]:
    return await store.joined(state.db, account.id)


async def roles_of(state: State, account: Account, group_ids: list[int]) -> dict[int, GroupRole]:
    return await store.roles_of_account(state.db, account.id, group_ids)


async def browse(state: State, query: str, limit: int, offset: int) -> list[Account]:
    return await store.browse(state.db, query.strip(), limit, offset)


async def suggestions(state: State, viewer: Account, limit: int) -> list[Account]:
    """Groups joined by the viewer's colleagues: the same department first (profile field), then the
    people the viewer follows."""
    from server.services import directory  # colleagues are found through the people directory

    colleagues = [a.id for a in await directory.colleagues(state, viewer, 200)]
    colleagues += await relations_following(state, viewer.id)
    ids = await store.colleague_groups(state.db, list(dict.fromkeys(colleagues)), viewer.id, limit)
    found = await account_store.get_many(state.db, ids)
    return [found[i] for i in ids if i in found]


async def relations_following(state: State, account_id: int) -> list[int]:
    rows = await relations.followers_page(state.db, account_id, "following", None, None, 200)
    return [other for _, other in rows]


# -- posts in a group ----------------------------------------------------------------------------------

async def timeline(state: State, viewer: Account | None, group_id: int, page: Page) -> list[Status]:
    account = await group_account(state, group_id)
    group = await store.get(state.db, group_id)
    if group is not None and group.members_only and (
            viewer is None or (await relations.follow(state.db, viewer.id, account.id) is None
                               and await store.role_of(state.db, group_id, viewer.id) == GroupRole.USER)):
        raise Forbidden("This group's posts are for its members")
    ids = await store.timeline(state.db, group_id, page)
    found = await status_store.get_many(state.db, ids)
    items = [found[i] for i in ids if i in found]
    from server.services.visibility import visible_ids

    visible = await visible_ids(state, viewer.id if viewer else None, items)
    return [s for s in items if s.id in visible]


async def pinned(state: State, group_id: int) -> list[int]:
    return await store.timeline(state.db, group_id, Page(limit=20), pinned=True)


async def remove_post(state: State, actor: Account | None, group_id: int, status_id: int) -> None:
    """A moderator removes a post from the group: it is deleted, here and (announced by the group) on
    the members' servers."""
    await _moderator(state, group_id, actor)
    post = await store.post(state.db, group_id, status_id)
    if post is None or post.removed_at is not None:
        raise NotFound("This post is not in the group")
    async with state.db.transaction() as tx:
        if await store.mark_removed(tx, group_id, status_id):
            await state.events.record(tx, GroupPostRemoved(group_id=group_id, status_id=status_id,
                                                           moderator_id=actor.id if actor else group_id))


async def pin_post(state: State, actor: Account | None, group_id: int, status_id: int, on: bool) -> Status:
    await _moderator(state, group_id, actor)
    post = await store.post(state.db, group_id, status_id)
    if post is None or post.removed_at is not None or not post.top_level:
        raise NotFound("This post is not in the group")
    async with state.db.transaction() as tx:
        await store.set_pinned(tx, group_id, status_id, on)
    status = await status_store.get(state.db, status_id)
    assert status is not None
    return status


# -- taking posts in (the `groups` event subscriber) ---------------------------------------------------

async def on_event(state: State, event_id: int, event: DomainEvent) -> None:
    match event:
        case StatusCreated(status_id=status_id, mentioned=mentioned):
            status = await event_reads.created_status(state.db, status_id)
            if status is not None and status.deleted_at is None and status.reblog_of_id is None:
                await take_in(state, status, mentioned)
        case GroupPostAccepted(share_id=share_id) if share_id is not None:
            share = await status_store.get(state.db, share_id)
            if share is not None and share.deleted_at is None:
                await feeds.fan_out(state, share, [])
        case GroupPostRemoved(status_id=status_id):
            status = await status_store.get(state.db, status_id)
            if status is not None and status.deleted_at is None:
                await status_service.remove_status(state, status)


async def take_in(state: State, status: Status, mentioned: list[int]) -> None:
    """Record the status in the groups it is posted to: the local groups it mentions (top-level posts),
    and the group of the thread it replies in."""
    top_level = status.in_reply_to_id is None
    candidates: dict[int, bool] = {}
    if top_level:
        for group_id in await store.get_many(state.db, mentioned):
            candidates[group_id] = True
    else:
        for post in await store.posts_of(state.db, status.in_reply_to_id or 0):
            if post.removed_at is None:
                candidates[post.group_id] = False
    if not candidates:
        return
    author = await account_store.get(state.db, status.account_id)
    if author is None:
        return
    local = await store.get_many(state.db, candidates)
    for group_id in candidates:
        group = local.get(group_id)
        if group is None:  # a remote group's thread: remember the audience, the group itself decides
            async with state.db.transaction() as tx:
                await store.insert_post(tx, GroupPost(group_id=group_id, status_id=status.id, share_id=None,
                                                      top_level=top_level, pinned=False, removed_at=None,
                                                      created_at=status.created_at))
            continue
        reason = await _refusal(state, group, author, status)
        if reason == NOT_A_MEMBER and group.non_member_posts == NonMemberPosts.HOLD:
            reason = await _refusal(state, group, author, status, membership=False)
            if reason is None:
                await _hold(state, group, author, status, top_level)
                continue
        if reason is not None:
            log.info("group %s refused status %s from %s: %s", group_id, status.id, author.acct, reason)
            if not author.local:
                state.boundary.record("in", "group", author.domain, "rejected", actor=author.uri,
                                      activity_type="Create", reason=f"group {group_id}: {reason}")
            continue
        await _accept(state, group, author, status, top_level)


NOT_A_MEMBER = "the author is not a member of the group"


async def _refusal(state: State, group: LocalGroup, author: Account, status: Status,
                   membership: bool = True) -> str | None:
    """Why the group does not take the post in (None: it does); `membership=False` leaves out the
    membership rule (a post held for, or approved by, the moderators)."""
    if group.archived_at is not None:
        return "the group is archived"
    if await store.is_banned(state.db, group.account_id, author.id):
        return "the author is banned from the group"
    if (membership and await relations.follow(state.db, author.id, group.account_id) is None
            and await store.role_of(state.db, group.account_id, author.id) == GroupRole.USER):
        return NOT_A_MEMBER
    if not author.local:
        reason = await state.boundary.group_refusal(group, author.domain)
        if reason is not None:
            return reason
    if not group.members_only and status.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        return "only public and unlisted posts are shared by a group that is not members-only"
    return None


async def _hold(state: State, group: LocalGroup, author: Account, status: Status, top_level: bool) -> None:
    """A non-member's post to a group that holds such posts: kept for the moderators, not shared."""
    async with state.db.transaction() as tx:
        held = await store.hold_post(tx, HeldPost(group_id=group.account_id, status_id=status.id,
                                                  author_id=author.id, top_level=top_level, created_at=now_iso()))
    if held:
        log.info("group %s holds status %s from non-member %s for its moderators", group.account_id, status.id,
                 author.acct)


def _audit_actor(actor: Account | None) -> audit.Actor:
    return audit.CLI if actor is None else audit.person(actor.username, actor.id)


async def held_posts(state: State, actor: Account | None, group_id: int, limit: int) -> list[Status]:
    """The non-members' posts waiting for the group's moderators (oldest first)."""
    await _moderator(state, group_id, actor)
    held = await store.held_posts(state.db, group_id, limit)
    found = await status_store.get_many(state.db, [h.status_id for h in held])
    return [found[h.status_id] for h in held if h.status_id in found and found[h.status_id].deleted_at is None]


async def answer_held_post(state: State, actor: Account | None, group_id: int, status_id: int, approve: bool) -> None:
    """A moderator approves a held post (the group then takes it in and shares it exactly as a member's
    post) or rejects it (it stays its author's post, outside the group). Audited either way."""
    _, group = await _moderator(state, group_id, actor)
    held = await store.held_post(state.db, group_id, status_id)
    status = await status_store.get(state.db, status_id)
    if held is None or status is None or status.deleted_at is not None:
        raise NotFound("No such post is waiting for this group's moderators")
    author = await account_store.get(state.db, held.author_id)
    if approve:
        if author is None:
            raise NotFound("No such post is waiting for this group's moderators")
        reason = await _refusal(state, group, author, status, membership=False)
        if reason is not None:
            raise Unprocessable(f"The group cannot take this post in: {reason}")

    async def answered(tx: Tx) -> bool:
        if not await store.release_held(tx, group_id, status_id):
            return False
        await audit.record(tx, _audit_actor(actor), "group.approve-post" if approve else "group.reject-post",
                           target_type="group", target_id=group_id, target=str(status_id),
                           detail={"status_id": str(status_id), "author": author.acct if author else None})
        return True

    if approve:
        assert author is not None
        if not await _accept(state, group, author, status, held.top_level, answered):
            raise NotFound("No such post is waiting for this group's moderators")
        return
    async with state.db.transaction() as tx:
        if not await answered(tx):
            raise NotFound("No such post is waiting for this group's moderators")


async def _accept(state: State, group: LocalGroup, author: Account, status: Status, top_level: bool,
                  also: Callable[[Tx], Awaitable[bool]] | None = None) -> bool:
    """Take the post in (and share a top-level one) in one transaction with the GroupPostAccepted event;
    `also` runs first in that transaction (False from it: nothing is done). False when nothing was."""
    account = await account_store.get(state.db, group.account_id)
    assert account is not None
    activity = None if author.local else await store.inbound_create(state.db, author.uri, status.uri)
    share = None
    if top_level:
        share_id = new_id()
        if group.members_only:
            visibility = Visibility.PRIVATE
        else:
            visibility = Visibility.PUBLIC if status.visibility == Visibility.PUBLIC else Visibility.UNLISTED
        share = Status(id=share_id, uri=f"{account.uri}/statuses/{share_id}/activity", url=f"{account.url}/{share_id}",
                       account_id=account.id, local=True, in_reply_to_id=None, in_reply_to_account_id=None,
                       reblog_of_id=status.id, thread_id=None, content="", source_text="", spoiler_text="",
                       visibility=visibility, sensitive=False, language=None, app_id=None, created_at=now_iso(),
                       edited_at=None, deleted_at=None, replies_count=0, reblogs_count=0, favourites_count=0,
                       local_only=status.local_only or group.federation == GroupFederation.LOCAL)
    async with state.db.transaction() as tx:
        if also is not None and not await also(tx):
            return False
        post = GroupPost(group_id=group.account_id, status_id=status.id, share_id=share.id if share else None,
                         top_level=top_level, pinned=False, removed_at=None, created_at=now_iso())
        if not await store.insert_post(tx, post, activity):
            return also is not None  # taken in before (the event was dispatched again)
        if share is not None:
            await status_store.insert(tx, share)
            await status_store.adjust_counts(tx, status.id, reblogs=1)
            await account_store.count_posts(tx, account.id, 1, share.id, share.created_at[:10])
        await state.events.record(tx, GroupPostAccepted(group_id=group.account_id, status_id=status.id,
                                                        share_id=share.id if share else None))
    return True


# -- what the API shows about groups -------------------------------------------------------------------

class Membership(msgspec.Struct, kw_only=True):
    member: bool
    requested: bool
    role: GroupRole
    banned: bool
    pending_requests: bool


async def memberships(state: State, viewer: Account, group_ids: list[int]) -> dict[int, Membership]:
    rels = await relations.relationships(state.db, viewer.id, group_ids)
    found_roles = await store.roles_of_account(state.db, viewer.id, group_ids)
    out = {}
    for group_id in group_ids:
        rel = rels[group_id]
        found = found_roles.get(group_id, GroupRole.USER)
        pending = False
        if found != GroupRole.USER:
            pending = bool(await relations.pending_requests(state.db, group_id, None, None, 1))
        out[group_id] = Membership(member=rel.following, requested=rel.requested, role=found,
                                   banned=await store.is_banned(state.db, group_id, viewer.id),
                                   pending_requests=pending)
    return out


async def owners(state: State, group_ids: list[int]) -> dict[int, int]:
    out = {}
    for group_id in group_ids:
        found = await store.owner_id(state.db, group_id)
        if found is not None:
            out[group_id] = found
    return out


async def account_by_id(state: State, account_id: int) -> Account:
    account = await account_store.get(state.db, account_id)
    if account is None or account.deleted_at is not None:
        raise NotFound("Account not found")
    return account


async def account_by_handle(state: State, handle: str) -> Account:
    """A local (`name`) or known remote (`name@domain`) account, for the CLI."""
    name, _, domain = handle.lstrip("@").partition("@")
    account = await account_store.by_username(state.db, name, "" if domain == state.domain else domain)
    if account is None:
        raise NotFound(f"no account {handle}")
    return account


async def served_outside(state: State, account: Account) -> bool:
    """Whether other servers may see this account at all: a local-only group is not served to them
    (neither WebFinger nor its actor), so nobody outside can follow it or address it."""
    if account.actor_type != "Group" or not account.local:
        return True
    group = await store.get(state.db, account.id)
    return group is None or group.federation != GroupFederation.LOCAL


async def notify_moderators_in_tx(tx: Tx, events: list[tuple[int, DomainEvent]]) -> list[Notification | None]:
    """A request to join an approval group reaches its owners and moderators as a `group_request`
    notification from the requester (the group account itself gets Mastodon's `follow_request`), inside
    the recording transaction as every notification."""
    notes: list[Notification | None] = []
    for event_id, event in events:
        if not isinstance(event, FollowRequested):
            continue
        if await store.get(tx, event.target_id) is None or await relations.follow_request(
                tx, event.follower_id, event.target_id) is None:
            continue
        staff = [a for a, r in (await store.roles(tx, event.target_id)).items() if r != GroupRole.USER]
        notes += [await notify.create(tx, event_id, a, event.follower_id, "group_request") for a in staff]
    return notes
