"""Groups across servers (FEP-1b12).

Out: a local group wraps each activity it accepted (Create, Update, Delete) unchanged in an `Announce`
to its followers, plus a plain `Announce` of the Note for top-level posts (Mastodon drops
`Announce{Create}` but shows an announced Note as a boost); a moderator's removal goes out as the
group's `Announce{Delete}`. Who may receive what is the boundary's decision (`plan_group_delivery`).
Posts by our users in a group get `audience`, and replies in a remote group's thread go to the group.

In: an `Announce` from a remote Group actor that our users follow is unwrapped: the post is stored
(believed as embedded only from its own server, else fetched from there), recorded as the group's,
and a top-level post becomes the group's boost so members see it in their home timelines; a wrapped
`Delete` of a post in the group's audience is the group's moderation and is applied; a wrapped `Like`,
`EmojiReact` or `Undo` of one is applied for its actor.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from federation import documents as docs
from federation import models as ap
from federation.models import AS_PUBLIC, host_of
from server.domain.enums import Visibility
from server.domain.events import DomainEvent, GroupPostAccepted, GroupPostRemoved, StatusDeleted, StatusEdited
from server.domain.groups import GroupPost, LocalGroup
from server.domain.records import Account, Status
from server.ids import now_iso
from server.render import activitypub as render_ap
from server.services import reactions
from server.services import statuses as status_service
from server.services.errors import NotFound
from server.services.federation import actors, notes, serving
from server.services.federation.client import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import deliveries as delivery_store
from server.storage import groups as store
from server.storage import remote_actors
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.groups")
_encode = msgspec.json.Encoder().encode
WRAPPED = ("Create", "Update", "Delete", "Like", "EmojiReact", "Undo")


# -- outgoing ------------------------------------------------------------------------------------------

async def on_event(state: State, event_id: int, event: DomainEvent) -> None:
    match event:
        case GroupPostAccepted(group_id=group_id, status_id=status_id, share_id=share_id):
            found = await _local_group_post(state, group_id, status_id)
            if found is not None:
                await _announce_post(state, event_id, *found, share_id)
        case StatusEdited(status_id=status_id):
            for post in await store.posts_of(state.db, status_id):
                found = await _local_group_post(state, post.group_id, status_id)
                if found is not None and post.removed_at is None:
                    await _announce_update(state, event_id, *found)
        case StatusDeleted(status_id=status_id):
            for post in await store.posts_of(state.db, status_id):
                found = await _local_group_post(state, post.group_id, status_id, deleted_too=True)
                if found is not None and post.removed_at is None:  # removals are announced as such
                    await _announce_delete(state, event_id, *found, None)
        case GroupPostRemoved(group_id=group_id, status_id=status_id, moderator_id=moderator_id):
            found = await _local_group_post(state, group_id, status_id, deleted_too=True)
            if found is not None:
                moderator = await account_store.get(state.db, moderator_id)
                await _announce_delete(state, event_id, *found, moderator)


async def _local_group_post(state: State, group_id: int, status_id: int, deleted_too: bool = False
                            ) -> tuple[Account, LocalGroup, Status, Account] | None:
    group = await store.get(state.db, group_id)
    account = await account_store.get(state.db, group_id)
    status = await status_store.get(state.db, status_id)
    if group is None or account is None or status is None or (status.deleted_at is not None and not deleted_too):
        return None
    author = await account_store.get(state.db, status.account_id)
    if author is None or status.local_only or group.federation == "local":
        return None
    return account, group, status, author


def _addressing(account: Account, group: LocalGroup) -> tuple[list[str], list[str]]:
    followers = account.followers_url or f"{account.uri}/followers"
    if group.members_only:
        return [followers], []
    return [AS_PUBLIC], [followers]


async def _send(state: State, event_id: int, account: Account, group: LocalGroup, activity: dict[str, Any],
                exclude_host: str | None = None) -> None:
    targets = []
    for inbox, shared in await remote_actors.remote_follower_inboxes(state.db, account.id):
        url = shared or inbox
        host = host_of(url)
        if url and host and host != state.domain:
            targets.append((url, host))
    targets = list(dict.fromkeys(targets))
    if not targets:
        return
    plan = await state.boundary.plan_group_delivery(group, account, activity, targets)
    async with state.db.transaction() as tx:
        if not await delivery_store.claim_event_activity(tx, event_id, activity["id"]):
            return
        for variant, hosts in plan:
            await delivery_store.enqueue(tx, variant["id"], account.id, _encode(variant), hosts)
    state.jobs.wake("delivery")


async def _note(state: State, status: Status, group: Account) -> dict[str, Any]:
    note = await serving.note_document(state, status)
    note["audience"] = group.uri
    return note


async def _announce(account: Account, group: LocalGroup, inner: Any, stamp: str) -> dict[str, Any]:
    to, cc = _addressing(account, group)
    return docs.activity("Announce", f"{account.uri}#announces/{stamp}", account.uri, inner, to=to, cc=cc)


async def _announce_post(state: State, event_id: int, account: Account, group: LocalGroup, status: Status,
                         author: Account, share_id: int | None) -> None:
    """Announce{Create} (FEP-1b12) and, for a top-level post, the plain Announce of the Note."""
    note = None
    if author.local:
        note = await _note(state, status, account)
        create: dict[str, Any] | None = render_ap.create_activity(note)
    else:
        raw = await store.post_activity(state.db, account.id, status.id)
        create = _parse(raw)
    if create is not None:
        await _send(state, event_id, account, group, await _announce(account, group, create, f"create/{status.id}"))
    share = await status_store.get(state.db, share_id) if share_id is not None else None
    if share is not None and share.deleted_at is None:
        to, cc = _addressing(account, group)
        plain = docs.activity("Announce", share.uri, account.uri, note if note is not None else status.uri,
                              to=to, cc=[*cc, author.uri], published=share.created_at)
        await _send(state, event_id, account, group, plain)


async def _announce_update(state: State, event_id: int, account: Account, group: LocalGroup, status: Status,
                           author: Account) -> None:
    if not author.local:
        return  # a remote author's Update reaches us unwrapped; only what we can render is re-shared
    note = await _note(state, status, account)
    update = render_ap.create_activity(note, "Update", event_id)
    await _send(state, event_id, account, group, await _announce(account, group, update, f"update/{event_id}"))


async def _announce_delete(state: State, event_id: int, account: Account, group: LocalGroup, status: Status,
                           author: Account, moderator: Account | None) -> None:
    actor = moderator.uri if moderator is not None and moderator.local else (
        author.uri if moderator is None else account.uri)
    to, cc = _addressing(account, group)
    delete = docs.activity("Delete", f"{status.uri}#delete/{event_id}", actor, docs.tombstone(status.uri),
                           to=to, cc=cc)
    delete["audience"] = account.uri
    await _send(state, event_id, account, group, await _announce(account, group, delete, f"delete/{event_id}"))


def _parse(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return doc if isinstance(doc, dict) else None


async def audience(state: State, status: Status, mentioned: list[Account]) -> Account | None:
    """The group a local post is posted in: a group it mentions (top-level), or the group of the
    thread it replies in."""
    if status.in_reply_to_id is None:
        return next((a for a in mentioned if a.actor_type == "Group"), None)
    for post in await store.posts_of(state.db, status.in_reply_to_id):
        if post.removed_at is None:
            return await account_store.get(state.db, post.group_id)
    return None


async def address_to_group(state: State, status: Status, note: dict[str, Any],
                           recipients: list[str]) -> None:
    """Set `audience` on a local post in a group, address the group, and deliver to a remote group."""
    mentioned = await account_store.get_many(state.db, await status_store.mentioned_ids(state.db, status.id))
    group = await audience(state, status, list(mentioned.values()))
    if group is None:
        return
    note["audience"] = group.uri
    if group.uri not in note.get("to", []) and group.uri not in note.get("cc", []):
        note.setdefault("cc", []).append(group.uri)
    if not group.local:
        recipients.append(group.inbox_url)


# -- incoming ------------------------------------------------------------------------------------------

async def announce_from_group(state: State, actor: Account, activity: ap.ParsedActivity) -> bool:
    """Handle an Announce from a remote Group actor; False when the actor is not a group."""
    if actor.actor_type != "Group":
        return False
    if not await remote_actors.has_local_followers(state.db, actor.id):
        return True  # nobody here is a member: nothing to show
    inner = activity.object
    kind = ap.first_str(inner.get("type")) if isinstance(inner, dict) else None
    if kind in WRAPPED:
        assert isinstance(inner, dict)
        await _unwrap(state, actor, activity, kind, inner)
        return True
    note_doc = inner if isinstance(inner, dict) else None
    status = await _store_note(state, actor, note_doc, activity.object_id)
    if status is not None:
        await _take(state, actor, status, activity.id)
    return True


async def _store_note(state: State, group: Account, doc: dict[str, Any] | None, uri: str | None) -> Status | None:
    if doc is not None and ap.first_str(doc.get("type")) not in ap.POST_TYPES:
        return None
    try:
        if doc is not None:  # believed as embedded only from the note's own server, else fetched from there
            return await notes.note(state, doc, source=group.domain)
        return await notes.status_by_uri(state, uri) if uri else None
    except RemoteError as exc:
        log.info("group %s: could not get %s: %s", group.acct, uri, exc)
        return None


async def _take(state: State, group: Account, status: Status, announce_id: str | None) -> None:
    """Record the status as the group's; a top-level post becomes the group's boost (once)."""
    if status.deleted_at is not None:
        return
    top_level = status.in_reply_to_id is None
    async with state.db.transaction() as tx:
        await store.insert_post(tx, GroupPost(group_id=group.id, status_id=status.id, share_id=None,
                                              top_level=top_level, pinned=False, removed_at=None,
                                              created_at=now_iso()))
    if not top_level or await status_store.reblog_by(state.db, group.id, status.id) is not None:
        return
    visibility: Visibility = status.visibility
    if visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
        visibility = Visibility.PRIVATE  # a members-only group's post: its members see it through the group
    uri = announce_id or f"{group.uri}#announces/{status.id}"
    await status_service.store_reblog(state, group, status, uri=uri, url=uri, visibility=visibility)


async def _unwrap(state: State, group: Account, activity: ap.ParsedActivity, kind: str,
                  inner: dict[str, Any]) -> None:
    obj = inner.get("object")
    obj_id = ap.id_of(obj)
    if kind in ("Create", "Update"):
        doc = obj if isinstance(obj, dict) else None
        status = await _store_note(state, group, doc, obj_id)
        if status is not None and kind == "Create":
            await _take(state, group, status, activity.id)
        elif status is not None and kind == "Update" and doc is not None and not ap.same_host(status.uri, group.uri):
            # An edit announced for another server's post: fetched from its home (never believed).
            try:
                await notes.note(state, await state.remote.fetch(status.uri), source=host_of(status.uri))
            except RemoteError:
                pass
        return
    if kind == "Delete" and obj_id:
        status = await status_store.by_uri(state.db, obj_id)
        if status is None or status.deleted_at is not None:
            return
        # The group moderates the posts in its audience (its moderators' removals arrive this way); a
        # post of ours is taken out of the group, not deleted; anything outside the audience is ignored.
        if await store.post(state.db, group.id, status.id) is None:
            log.info("group %s announced a Delete of %s outside its audience: ignored", group.acct, obj_id)
            return
        if not status.local:
            await status_service.remove_status(state, status)
            return
        async with state.db.transaction() as tx:
            await store.mark_removed(tx, group.id, status.id)
        boost = await status_store.reblog_by(state.db, group.id, status.id)
        if boost is not None:
            await status_service.remove_status(state, boost)
    if kind in ("Like", "EmojiReact", "Undo"):
        await _relayed_reaction(state, group, kind, inner)


async def _relayed_reaction(state: State, group: Account, kind: str, inner: dict[str, Any]) -> None:
    """A `Like` (a favourite, or a reaction when it carries an emoji), an `EmojiReact`, or the `Undo` of
    one, relayed by a remote group for a post in its audience (Lemmy sends votes only to the community,
    which announces them). Believed as relayed when its actor is on the group's own server (the group
    speaks for its users); otherwise fetched by its id from its actor's server, and ignored if that
    fails. Our own users' activities were applied when they made them."""
    actor_uri = ap.id_of(inner.get("actor"))
    if not actor_uri or host_of(actor_uri) == state.domain:
        return
    if not ap.same_host(actor_uri, group.uri):
        inner_id = ap.id_of(inner)
        try:
            if not inner_id or not ap.same_host(inner_id, actor_uri):
                raise RemoteError("not fetchable from its actor's server")
            fetched = await state.remote.fetch(inner_id)
        except RemoteError as exc:
            log.info("group %s relayed a %s by %s that could not be verified: %s", group.acct, kind, actor_uri, exc)
            return
        if ap.id_of(fetched.get("actor")) != actor_uri or ap.first_str(fetched.get("type")) != kind:
            return
        inner = fetched
    undone = inner.get("object") if kind == "Undo" else inner
    undone_kind = ap.first_str(undone.get("type")) if isinstance(undone, dict) else None
    if kind == "Undo" and undone_kind not in ("Like", "EmojiReact"):
        return
    target = ap.id_of(undone.get("object")) if isinstance(undone, dict) else None
    status = await status_store.by_uri(state.db, target) if target else None
    if status is None or await store.post(state.db, group.id, status.id) is None:
        return  # not a post in this group's audience
    try:
        actor = await actors.actor(state, actor_uri)
        if kind == "Undo":
            assert isinstance(undone, dict)
            await reactions.undo_remote(state, actor, status, undone_kind, undone, ap.id_of(undone))
        else:
            await reactions.apply_remote(state, actor, status, kind, inner)
    except (RemoteError, NotFound) as exc:
        log.info("group %s relayed a %s by %s that was not applied: %s", group.acct, kind, actor_uri, exc)
