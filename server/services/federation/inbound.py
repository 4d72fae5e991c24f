"""The inbox: who may send us what, and applying what was accepted.

Receiving (`receive`, `authorize_fetch`): the request's signature must verify against its key's owner,
the activity's actor must be that signer, and its id must be on the signer's host; an accepted activity
is persisted before we acknowledge it. Applying (`process`, run by the inbox worker): each handler
checks that the actor may do what the activity says, then calls the same service functions the client
API uses, so a local action and its federated twin share one set of rules."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from federation import html as ap_html
from federation import models as ap
from federation.models import host_of
from federation.signatures import SignatureError, parse_signed_request, verify_signed_request
from server.domain.enums import Visibility
from server.domain.records import Account, Status
from server.ids import iso, now_iso
from server.metrics import INBOX_ACTIVITIES, SIGNATURE_FAILURES
from server.services import reactions, social
from server.services import reports as report_service
from server.services import statuses as status_service
from server.services.boundary import Refused
from server.services.errors import Forbidden, NotFound, ServiceError
from server.services.federation import actors, keys, notes
from server.services.federation import groups as group_federation
from server.services.federation.client import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import polls as poll_store
from server.storage import relations, remote_actors, remote_posts
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.inbox")


MAX_ACTIVITY_ID = 2048


class InboxRejection(Exception):
    """A request to an inbox (or a signed fetch) is refused before anything is stored: `status` is the
    HTTP answer (401 bad signature, 403 refused by policy, 400 malformed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class SignedRequest:
    """What the HTTP edge hands over of a request that may carry an HTTP signature."""

    method: str
    path: str
    path_qs: str
    host: str  # the Host it was addressed to
    headers: Mapping[str, str]
    key_host: str | None = None  # set once the signature names its key (for the access log)


def is_signed(headers: Mapping[str, str]) -> bool:
    return ("Signature" in headers or "Signature-Input" in headers
            or headers.get("Authorization", "")[:10].lower() == "signature ")


def claimed_host(headers: Mapping[str, str]) -> str:
    """The host a rejected request claimed to come from (its keyId), for the boundary log."""
    header = headers.get("Signature") or headers.get("Signature-Input") or ""
    marker = 'keyid="' if 'keyid="' in header else 'keyId="'
    if marker in header:
        return host_of(header.split(marker, 1)[1].split('"', 1)[0]) or "unknown"
    return "unknown"


async def verify_signature(state: State, request: SignedRequest, body: bytes | None,
                           event: str = "receive") -> Account:
    """The remote actor whose key signed this request. Refetches the key once to follow rotations."""
    if request.host.lower() != state.domain:
        # A signature made for another host must not be replayed here (proxies must keep Host).
        SIGNATURE_FAILURES.labels("wrong_host").inc()
        raise InboxRejection(401, f"request was addressed to {request.host}, not {state.domain}")
    try:
        signed = parse_signed_request(request.method, request.path_qs, request.headers, body,
                                      scheme=state.settings.scheme, authority=state.domain)
    except SignatureError as exc:
        SIGNATURE_FAILURES.labels("malformed").inc()
        raise InboxRejection(401, exc.reason) from exc
    request.key_host = host_of(signed.key_id)
    try:
        await state.boundary.admit_request(host_of(signed.key_id), event, request.path)
    except Refused as exc:
        raise InboxRejection(exc.status, exc.reason) from exc
    try:
        owner = await keys.key_owner(state, signed.key_id)
    except (RemoteError, Exception) as exc:
        SIGNATURE_FAILURES.labels("key_unavailable").inc()
        raise InboxRejection(401, f"could not fetch the signing key: {exc}") from exc
    try:
        verify_signed_request(signed, owner.public_key_pem)
    except SignatureError:
        try:
            owner = await keys.key_owner(state, signed.key_id, refresh=True)
            verify_signed_request(signed, owner.public_key_pem)
        except (SignatureError, RemoteError, Exception) as exc:
            SIGNATURE_FAILURES.labels("invalid").inc()
            raise InboxRejection(401, "signature does not verify") from exc
    return owner


async def authorize_fetch(state: State, request: SignedRequest) -> Account | None:
    """Authorized fetch: AS2 documents need a valid signature from an allowed domain. Returns the
    signer (None for an unsigned request when secure mode is off); raises InboxRejection."""
    boundary = state.boundary
    if not is_signed(request.headers):
        if state.settings.federation.authorized_fetch:
            boundary.record("in", "fetch", "unknown", "rejected", activity_type=request.path,
                            reason="unsigned fetch in secure mode")
            raise InboxRejection(401, "Request not signed")
        return None
    try:
        signer = await verify_signature(state, request, None, event="fetch")
    except InboxRejection as exc:
        if exc.status != 403:  # refusals by policy are logged by the boundary itself
            boundary.record("in", "fetch", claimed_host(request.headers), "rejected", reason=exc.reason,
                            activity_type=request.path)
        raise
    boundary.record("in", "fetch", signer.domain, "ok", actor=signer.uri, activity_type=request.path)
    return signer


async def receive(state: State, request: SignedRequest, body: bytes) -> bool:
    """A POST to one of our inboxes: authenticate it, check the activity against its signer and
    persist it (group-committed with concurrent deliveries) before it is acknowledged. Returns False
    for an activity seen before; raises InboxRejection."""
    doc: Any = None
    try:
        signer = await verify_signature(state, request, body)
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InboxRejection(400, "body is not JSON") from None
        if not isinstance(doc, dict):
            raise InboxRejection(400, "activity must be a JSON object")
        actor_uri = doc.get("actor")
        if isinstance(actor_uri, dict):
            actor_uri = actor_uri.get("id")
        if not isinstance(actor_uri, str) or actor_uri != signer.uri:
            raise InboxRejection(401, "the activity's actor is not the signer")
        activity_id = doc.get("id")
        if not isinstance(activity_id, str) or len(activity_id) > MAX_ACTIVITY_ID or host_of(activity_id) != host_of(signer.uri):
            raise InboxRejection(400, "the activity id must be a URL on the actor's host")
    except InboxRejection as exc:
        INBOX_ACTIVITIES.labels(_activity_type(doc), "refused" if exc.status == 403 else "rejected").inc()
        if exc.status != 403:  # refusals by policy are logged by the boundary itself
            state.boundary.record("in", "receive", claimed_host(request.headers), "rejected", reason=exc.reason)
        raise
    fresh = await state.inbox_worker.persist(activity_id, signer.uri, body.decode("utf-8", "replace"), signer.domain)
    INBOX_ACTIVITIES.labels(_activity_type(doc), "accepted" if fresh else "duplicate").inc()
    return fresh


def _activity_type(doc: Any) -> str:
    """A metrics label: the activity's type when it is a plain string, else "unknown"."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    return kind if isinstance(kind, str) and len(kind) <= 40 and kind.isalnum() else "unknown"


# -- applying ------------------------------------------------------------------------------------------

class Rejected(Exception):
    """The activity is not acceptable (wrong actor, foreign object...); it is dropped, not retried."""


async def _admit(state: State, doc: dict[str, Any], memo: dict[str, Any] | None = None,
                 ) -> tuple[Account, ap.ParsedActivity]:
    """The checks every activity passes before its handler: well formed, from a remote actor we can
    know, allowed by the boundary."""
    try:
        activity = ap.parse_activity(doc)
    except ap.InvalidObject as exc:
        raise Rejected(f"invalid activity: {exc}") from exc
    actor = memo.get(activity.actor) if memo is not None else None
    if actor is None:
        actor = await actors.actor(state, activity.actor)
        if memo is not None:
            memo[activity.actor] = actor
    if actor.local:
        raise Rejected("activity claims a local actor")
    try:
        await state.boundary.inbound_activity(actor.domain, actor.uri, activity.type, doc)
    except Refused as exc:
        raise Rejected(exc.reason) from exc
    return actor, activity


def batch_keys(doc: Any) -> set[str] | None:
    """For the inbox worker's batches: the URIs a Create with an embedded note touches (the note and
    the post it replies to) when it is one that `prepare` can take, else None (apply it with
    `process`, in order, after the notes prepared before it are stored)."""
    if not isinstance(doc, dict) or doc.get("type") != "Create":
        return None
    obj = doc.get("object")
    if not isinstance(obj, dict) or isinstance(obj.get("name"), str):  # a poll vote is a Note with a name
        return None
    keys = {ap.id_of(obj.get("id")) or "", ap.id_of(obj.get("inReplyTo")) or ""}
    keys.discard("")
    return keys


NEW_NOTES = "new notes"  # in a batch's memo: the URIs of its notes found neither stored nor deleted


async def expect_notes(state: State, docs: list[Any], memo: dict[str, Any]) -> None:
    """Before a batch is prepared: which of the notes its Creates embed are neither stored nor deleted
    here, read for all of them at once (`prepare` then reads neither for each). Anything applied
    with `process` clears the memo, and with it this."""
    uris = [uri for doc in docs if batch_keys(doc) is not None and (uri := ap.id_of(doc["object"].get("id")))]
    if uris:
        known = await status_store.existing_uris(state.db, uris) | await remote_posts.tombstoned_uris(state.db, uris)
        memo[NEW_NOTES] = set(uris) - known


async def prepare(state: State, doc: dict[str, Any], memo: dict[str, Any]) -> notes.NotePlan | str:
    """`process` for an activity `batch_keys` accepted, short of storing: the note to store (the
    worker stores a run of them in one transaction), or the outcome when there is nothing to store.
    Raises as `process` does. `memo` keeps what the activities of one batch share (their actor,
    whether anyone here follows it); the caller starts a new one after anything else is applied."""
    actor, activity = await _admit(state, doc, memo)
    if activity.type != "Create":  # batch_keys looked at the raw document; parse_activity decides
        memo.clear()
        return await _handle(state, actor, activity)
    try:
        planned = await _create_plan(state, actor, activity, memo)
    except ServiceError as exc:
        raise Rejected(f"{activity.type} refused: {exc.message}") from exc
    return planned if isinstance(planned, notes.NotePlan) else "applied"


async def process(state: State, doc: dict[str, Any]) -> str:
    """Apply one activity; returns a short outcome word for logs and metrics."""
    actor, activity = await _admit(state, doc)
    return await _handle(state, actor, activity)


async def _handle(state: State, actor: Account, activity: ap.ParsedActivity) -> str:
    handler = HANDLERS.get(activity.type)
    if handler is None:
        return "ignored"
    try:
        await handler(state, actor, activity)
    except ServiceError as exc:  # the rules a local action obeys refused its federated twin
        raise Rejected(f"{activity.type} refused: {exc.message}") from exc
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
        await social.refuse_follow(state, actor, target, activity.id)
        return
    try:
        await social.follow(state, actor, target, follow_uri=activity.id)
    except Forbidden as exc:  # a group's rules (ban, boundary) refuse the join: answer with a Reject
        await social.refuse_follow(state, actor, target, activity.id)
        raise Rejected(f"Follow refused: {exc.message}") from exc


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
            row = await remote_posts.favourite_by_uri(state.db, activity.object_id)
            status = await status_store.get(state.db, row["status_id"]) if row else None
        if status is not None:  # the favourite, or the reaction a Like with an emoji made
            await reactions.undo_remote(state, actor, status, "Like", inner or None, activity.object_id)
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
            await reactions.unreact(state, actor, status.id, (inner.get("content") or "")[:64] or None,
                                    activity.object_id)


# -- posts ---------------------------------------------------------------------------------------------

async def on_create(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    planned = await _create_plan(state, actor, activity)
    if isinstance(planned, notes.NotePlan):
        try:
            await notes.store_planned(state, planned)
        except RemoteError as exc:
            raise Rejected(str(exc)) from exc


async def _create_plan(state: State, actor: Account, activity: ap.ParsedActivity,
                       memo: dict[str, Any] | None = None) -> notes.NotePlan | None:
    """The checks of a Create: the note to store, or None when there is nothing to store (not a post,
    a poll vote, irrelevant here, already stored)."""
    if activity.object is None:
        if not activity.object_id:
            raise Rejected("Create without an object")
        _object_host_matches(actor, activity.object_id)
        doc = await state.remote.fetch(activity.object_id)
    else:
        doc = activity.object
    if ap.first_str(doc.get("type")) not in ap.POST_TYPES:
        return None
    note_id = ap.id_of(doc.get("id"))
    _object_host_matches(actor, note_id)
    if ap.id_of(doc.get("attributedTo")) != actor.uri:
        raise Rejected("note is attributed to someone other than the actor")
    if await _poll_vote(state, actor, doc):
        return None
    if not await _relevant(state, actor, doc, memo):
        return None
    try:
        planned = await notes.plan_note(state, doc, actor=actor, source=actor.domain,
                                        new=memo.get(NEW_NOTES) if memo is not None else None)
    except RemoteError as exc:
        raise Rejected(str(exc)) from exc
    return planned if isinstance(planned, notes.NotePlan) else None


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
        await poll_store.lock(tx, poll.id)
        if await poll_store.vote_exists(tx, poll.id, actor.id, choice):
            return True
        if not poll.multiple and await poll_store.has_voted(tx, poll.id, actor.id):
            raise Rejected("this poll allows one choice")
        await poll_store.add_votes(tx, poll.id, actor.id, [choice], uri=ap.id_of(doc.get("id")))
    return True


async def _relevant(state: State, actor: Account, doc: dict[str, Any], memo: dict[str, Any] | None = None) -> bool:
    """Like Mastodon: keep a post only if someone here follows the author, it replies to something we
    have, or it addresses or mentions a local account."""
    key = f"followed {actor.id}"
    followed = memo.get(key) if memo is not None else None
    if followed is None:
        followed = await remote_actors.has_local_followers(state.db, actor.id)
        if memo is not None:
            memo[key] = followed
    if followed:
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
        await actors.store_actor(state, doc)
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
    mentioned, tags = await notes.tags_of(state, parsed)
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
            await remote_actors.mark_account_deleted(tx, actor.id)
        return
    _object_host_matches(actor, target)
    status = await status_store.by_uri(state.db, target)
    async with state.db.transaction() as tx:
        await remote_posts.add_tombstone(tx, target, actor.uri)
    if status is None or status.deleted_at is not None:
        return
    if status.account_id != actor.id:
        raise Rejected("only the author may delete a post")
    await status_service.remove_status(state, status)


async def on_announce(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    if await status_store.by_uri(state.db, activity.id) is not None:
        return
    if await group_federation.announce_from_group(state, actor, activity):  # FEP-1b12
        return
    _object_host_matches(actor, activity.id)
    object_uri = activity.object_id
    original = await _local_status(state, object_uri)
    if original is None:
        if not await remote_actors.has_local_followers(state.db, actor.id):
            return  # nobody here follows the booster, and it's not our post
        if activity.object is not None and object_uri:
            try:  # believed as embedded only from the note's own server, else fetched from there
                original = await notes.note(state, activity.object, source=actor.domain)
            except RemoteError:
                original = None
        if original is None and object_uri:
            original = await notes.status_by_uri(state, object_uri)
    if original is None or original.visibility not in ("public", "unlisted"):
        return
    visibility = Visibility.PUBLIC if any(ap.is_public(a) for a in activity.to) else Visibility.UNLISTED
    await status_service.store_reblog(state, actor, original, uri=activity.id, url=activity.id, visibility=visibility,
                                      created_at=iso(activity.published) if activity.published else None)


async def on_like(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    status = await _local_status(state, activity.object_id)
    if status is None:
        return
    try:  # a Like with an emoji (Misskey) is a reaction
        await reactions.apply_remote(state, actor, status, "Like", activity.raw)
    except NotFound as exc:
        raise Rejected("the liker may not see this post") from exc


async def on_emoji_react(state: State, actor: Account, activity: ap.ParsedActivity) -> None:
    status = await _local_status(state, activity.object_id)
    name = (activity.content or "").strip()[:64]
    if status is None or not name:
        return
    try:
        await reactions.react(state, actor, status.id, name, uri=activity.id)
    except NotFound as exc:
        raise Rejected("the reacting actor may not see this post") from exc


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
        await remote_actors.record_move(tx, actor.id, activity.target_id)


HANDLERS = {
    "Follow": on_follow, "Accept": on_accept, "Reject": on_reject, "Undo": on_undo, "Create": on_create,
    "Update": on_update, "Delete": on_delete, "Announce": on_announce, "Like": on_like,
    "EmojiReact": on_emoji_react, "Block": on_block, "Flag": on_flag, "Move": on_move,
}
