"""Applying activities that arrived in our inboxes. The signature was checked before we got here;
each handler checks that the actor may do what the activity says, then calls the same service
functions the client API uses, so a local action and its federated twin share one set of rules."""

from __future__ import annotations

import logging
from typing import Any

from federation import html as ap_html
from federation import models as ap
from server.ids import iso, now_iso
from server.records import Account, Status
from server.services import reports as report_service
from server.services import social
from server.services import statuses as status_service
from server.services.boundary import Refused
from server.services.remote import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import federation as fed_store
from server.storage import polls as poll_store
from server.storage import relations
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.inbox")


class Rejected(Exception):
    """The activity is not acceptable (wrong actor, foreign object...); it is dropped, not retried."""


async def process(state: State, doc: dict[str, Any]) -> str:
    """Apply one activity; returns a short outcome word for logs and metrics."""
    try:
        activity = ap.parse_activity(doc)
    except ap.InvalidObject as exc:
        raise Rejected(f"invalid activity: {exc}") from exc
    actor = await state.federation.actor(activity.actor)
    if actor.local:
        raise Rejected("activity claims a local actor")
    try:
        await state.boundary.inbound_activity(actor.domain, actor.uri, activity.type, doc)
    except Refused as exc:
        raise Rejected(exc.reason) from exc
    handler = HANDLERS.get(activity.type)
    if handler is None:
        return "ignored"
    await handler(state, actor, activity)
    return "applied"


def _ids(values: list[Any]) -> list[str]:
    """ids of references given as strings or embedded objects, skipping junk."""
    return [i for i in (ap.id_of(v) for v in values) if i]


def _object_host_matches(actor: Account, object_id: str | None) -> None:
    if object_id and not ap.same_host(object_id, actor.uri):
        raise Rejected("object is on another host than its actor")


async def _local_account(state: State, uri: str | None) -> Account | None:
    if not uri:
        return None
    account = await account_store.by_uri(state.db, uri)
    return account if account is not None and account.local else None


async def _local_status(state: State, uri: str | None) -> Status | None:
    if not uri:
        return None
    status = await status_store.by_uri(state.db, uri)
    if status is not None and status.local_only:
        raise Rejected("the object is a local-only post")
    return status if status is not None and status.deleted_at is None else None


# -- follows -------------------------------------------------------------------------------------------

async def on_follow(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    target = await _local_account(state, activity.object_id)
    if target is None or target.actor_type == "Application":
        raise Rejected("follow of an unknown local actor")
    if await relations.blocked_either_way(state.db, actor.id, target.id):
        await state.outbound.follow_rejected(target, actor, activity.id)
        return
    await social.follow(state, actor, target, follow_uri=activity.id)


def _follow_parts(activity: ap.ParsedActivity) -> tuple[str | None, str | None, str | None]:
    """(follow id, follower, followed) of the Follow an Accept/Reject/Undo refers to."""
    obj = activity.object or {}
    return activity.object_id, ap.id_of(obj.get("actor")), ap.id_of(obj.get("object"))


async def on_accept(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    follow_id, follower_uri, _ = _follow_parts(activity)
    request = await relations.follow_request_by_uri(state.db, follow_id) if follow_id else None
    follower = None
    if request is not None and request["target_account_id"] == actor.id:
        follower = await account_store.get(state.db, request["account_id"])
    elif follower_uri:
        follower = await _local_account(state, follower_uri)
    if follower is not None:
        await social.accept_remote_follow(state, follower, actor)


async def on_reject(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    follow_id, follower_uri, _ = _follow_parts(activity)
    request = await relations.follow_request_by_uri(state.db, follow_id) if follow_id else None
    follower = await account_store.get(state.db, request["account_id"]) if request else await _local_account(state, follower_uri)
    if follower is not None:
        await social.drop_follow(state, follower, actor)


async def on_undo(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    inner = activity.object or {}
    kind = activity.object_type or ap.first_str(inner.get("type"))
    inner_actor = ap.id_of(inner.get("actor"))
    if inner_actor is not None and inner_actor != actor.uri:
        raise Rejected("cannot undo another actor's activity")
    target_uri = ap.id_of(inner.get("object"))
    if kind == "Follow" or (kind is None and activity.object_id and await relations.follow_by_uri(state.db, activity.object_id)):
        target = await _local_account(state, target_uri)
        if target is None and activity.object_id:
            row = await relations.follow_by_uri(state.db, activity.object_id) or await relations.follow_request_by_uri(
                state.db, activity.object_id)
            target = await account_store.get(state.db, row["target_account_id"]) if row else None
        if target is not None:
            await social.unfollow(state, actor, target)
    elif kind == "Like":
        status = await _local_status(state, target_uri)
        if status is None and activity.object_id:
            row = await fed_store.favourite_by_uri(state.db, activity.object_id)
            status = await status_store.get(state.db, row["status_id"]) if row else None
        if status is not None:
            await status_service.unfavourite(state, actor, status.id)
    elif kind == "Announce":
        boost = await status_store.by_uri(state.db, activity.object_id or "")
        if boost is not None and boost.account_id == actor.id and boost.reblog_of_id is not None:
            await status_service.remove_status(state, boost)
    elif kind == "Block":
        target = await _local_account(state, target_uri)
        if target is not None:
            await social.unblock(state, actor, target)
    elif kind in ("EmojiReact",):
        status = await _local_status(state, target_uri)
        if status is not None:
            async with state.db.transaction() as tx:
                await fed_store.set_reaction(tx, actor.id, status.id, (inner.get("content") or "")[:64], activity.object_id, False)


# -- posts ---------------------------------------------------------------------------------------------

async def on_create(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    if activity.object is None:
        if not activity.object_id:
            raise Rejected("Create without an object")
        _object_host_matches(actor, activity.object_id)
        doc = await state.federation.fetch(activity.object_id)
    else:
        doc = activity.object
    if ap.first_str(doc.get("type")) not in ap.POST_TYPES:
        return
    note_id = ap.id_of(doc.get("id"))
    _object_host_matches(actor, note_id)
    if ap.id_of(doc.get("attributedTo")) != actor.uri:
        raise Rejected("note is attributed to someone other than the actor")
    if await _poll_vote(state, actor, doc):
        return
    if not await _relevant(state, actor, doc):
        return
    try:
        await state.federation.note(doc, actor=actor)
    except RemoteError as exc:
        raise Rejected(str(exc)) from exc


async def _poll_vote(state: State, actor: Account, doc: dict[str, Any]) -> bool:
    """A vote on one of our polls arrives as a Note with a `name` (the option), no content, replying to
    the poll. Returns True when `doc` was such a vote."""
    name = doc.get("name")
    if not isinstance(name, str) or doc.get("content") or not ap.id_of(doc.get("inReplyTo")):
        return False
    status = await _local_status(state, ap.id_of(doc.get("inReplyTo")))
    poll = (await poll_store.for_statuses(state.db, [status.id])).get(status.id) if status and status.local else None
    if poll is None or status is None:
        return False
    if poll.expires_at is not None and poll.expires_at <= now_iso():
        raise Rejected("the poll has ended")
    if name not in poll.options:
        raise Rejected("the vote names no option of this poll")
    choice = poll.options.index(name)
    async with state.db.transaction() as tx:
        if await poll_store.vote_exists(tx, poll.id, actor.id, choice):
            return True
        if not poll.multiple and await poll_store.has_voted(tx, poll.id, actor.id):
            raise Rejected("this poll allows one choice")
        await poll_store.add_votes(tx, poll.id, actor.id, [choice], uri=ap.id_of(doc.get("id")))
    return True


async def _relevant(state: State, actor: Account, doc: dict[str, Any]) -> bool:
    """Like Mastodon: keep a post only if someone here follows the author, it replies to something we
    have, or it addresses or mentions a local account."""
    if await fed_store.has_local_followers(state.db, actor.id):
        return True
    reply_to = ap.id_of(doc.get("inReplyTo"))
    if reply_to and await status_store.by_uri(state.db, reply_to) is not None:
        return True
    addressed = _ids([*ap.as_list(doc.get("to")), *ap.as_list(doc.get("cc"))][:1000])
    for tag in ap.as_list(doc.get("tag"))[:1000]:
        if isinstance(tag, dict) and ap.first_str(tag.get("type")) == "Mention":
            addressed.append(ap.id_of(tag.get("href")) or "")
    base = state.base_url + "/"
    return any(a.startswith(base) for a in addressed if a)


async def on_update(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    doc = activity.object
    kind = activity.object_type
    if doc is None:
        return
    if kind in ap.ACTOR_TYPES:
        if ap.id_of(doc.get("id")) != actor.uri:
            raise Rejected("actors may only update themselves")
        await state.federation.store_actor(doc)
        return
    if kind not in ap.POST_TYPES:
        return
    try:
        parsed = ap.parse_note(doc)
    except ap.InvalidObject as exc:
        raise Rejected(f"invalid note: {exc}") from exc
    if parsed.attributed_to != actor.uri:
        raise Rejected("only the author may edit a post")
    status = await status_store.by_uri(state.db, parsed.id)
    if status is None or status.deleted_at is not None or status.account_id != actor.id:
        return  # an edit of something we never had: nothing to update
    if parsed.poll_options and not parsed.updated:
        # Mastodon sends Update(Question) without `updated` when only the counts changed.
        poll = (await poll_store.for_statuses(state.db, [status.id])).get(status.id)
        if poll is not None and len(parsed.poll_options) == len(poll.options):
            end = parsed.poll_closed or parsed.poll_end_time
            async with state.db.transaction() as tx:
                await poll_store.set_remote_tallies(tx, poll.id, [max(0, o.votes) for o in parsed.poll_options],
                                                    parsed.poll_voters_count, iso(end) if end else None)
        return
    content = ap_html.sanitize_html(parsed.content or "")
    mentioned, tags = await state.federation.tags_of(parsed)
    await status_service.apply_edit(
        state, status, content=content, source_text=ap_html.html_to_text(content),
        spoiler_text=(parsed.summary or "")[:1000], sensitive=bool(parsed.sensitive or parsed.summary),
        language=parsed.language or status.language, mentioned=mentioned, tags=tags,
        edited_at=iso(parsed.updated) if parsed.updated else now_iso())


async def on_delete(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    target = activity.object_id
    if not target:
        return
    if target == actor.uri:
        async with state.db.transaction() as tx:
            await fed_store.mark_account_deleted(tx, actor.id)
        return
    _object_host_matches(actor, target)
    status = await status_store.by_uri(state.db, target)
    async with state.db.transaction() as tx:
        await fed_store.add_tombstone(tx, target, actor.uri)
    if status is None or status.deleted_at is not None:
        return
    if status.account_id != actor.id:
        raise Rejected("only the author may delete a post")
    await status_service.remove_status(state, status)


async def on_announce(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    if await status_store.by_uri(state.db, activity.id) is not None:
        return
    _object_host_matches(actor, activity.id)
    object_uri = activity.object_id
    original = await _local_status(state, object_uri)
    if original is None:
        if not await fed_store.has_local_followers(state.db, actor.id):
            return  # nobody here follows the booster, and it's not our post
        if activity.object is not None and object_uri and ap.same_host(object_uri, ap.id_of(activity.object.get("attributedTo")) or ""):
            try:
                original = await state.federation.note(activity.object)
            except RemoteError:
                original = None
        if original is None and object_uri:
            original = await state.federation.status_by_uri(object_uri)
    if original is None or original.visibility not in ("public", "unlisted"):
        return
    visibility = "public" if any(ap.is_public(a) for a in activity.to) else "unlisted"
    await status_service.store_reblog(state, actor, original, uri=activity.id, url=activity.id, visibility=visibility,
                                      created_at=iso(activity.published) if activity.published else None)


async def on_like(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    status = await _local_status(state, activity.object_id)
    if status is None:
        return
    await status_service.favourite(state, actor, status.id, uri=activity.id)


async def on_emoji_react(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    status = await _local_status(state, activity.object_id)
    name = (activity.content or "").strip()[:64]
    if status is None or not name:
        return
    async with state.db.transaction() as tx:
        await fed_store.set_reaction(tx, actor.id, status.id, name, activity.id, True)


async def on_block(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    target = await _local_account(state, activity.object_id)
    if target is not None:
        await social.block(state, actor, target, block_uri=activity.id)


async def on_flag(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    objects = _ids(ap.as_list(activity.raw.get("object"))[:100])
    target = None
    status_ids = []
    for uri in objects:
        account = await _local_account(state, uri)
        if account is not None:
            target = target or account
            continue
        status = await _local_status(state, uri)
        if status is not None:
            status_ids.append(status.id)
            target = target or await account_store.get(state.db, status.account_id)
    if target is None:
        return
    await report_service.store_report(state, actor, target, status_ids, (activity.content or "")[:5000],
                                      uri=activity.id)


async def on_move(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    if activity.object_id != actor.uri or not activity.target_id:
        raise Rejected("Move must move the actor itself")
    async with state.db.transaction() as tx:
        await fed_store.record_move(tx, actor.id, activity.target_id)


HANDLERS = {
    "Follow": on_follow, "Accept": on_accept, "Reject": on_reject, "Undo": on_undo, "Create": on_create,
    "Update": on_update, "Delete": on_delete, "Announce": on_announce, "Like": on_like,
    "EmojiReact": on_emoji_react, "Block": on_block, "Flag": on_flag, "Move": on_move,
}
