"""Remote posts: a Note (or Question, Article...) → a stored status, with its mentions, hashtags,
poll and media; and a status by URI, fetched from its origin (with its ancestors) when we lack it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from federation import html as ap_html
from federation import models as ap
from federation.addressing import visibility_from_addressing
from server.domain.enums import Visibility
from server.domain.records import Account, Status
from server.ids import iso, new_id, now_iso
from server.ports import Tx
from server.services import statuses as status_service
from server.services.boundary import Refused
from server.services.federation import actors
from server.services.federation.client import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import polls as poll_store
from server.storage import remote_actors, remote_posts
from server.storage import statuses as status_store
from server.storage.errors import IntegrityError

log = logging.getLogger("crosstalk.federation")
MAX_ANCESTORS = 20
MAX_POLL_OPTIONS = 20
ID_ATTEMPTS = 5


async def status_by_uri(state: State, uri: str, depth: int = 0) -> Status | None:
    """A status we have, or fetch it (and its ancestors) from its origin."""
    found = await status_store.by_uri(state.db, uri)
    if found is not None or depth > MAX_ANCESTORS:
        return found
    if ap.host_of(uri) == state.domain or await remote_posts.is_tombstoned(state.db, uri):
        return None
    try:
        return await note(state, await state.remote.fetch(uri), depth=depth + 1, source=ap.host_of(uri))
    except RemoteError as exc:
        log.info("could not fetch %s: %s", uri, exc)
        return None


async def note(state: State, doc: dict[str, Any], depth: int = 0, actor: Account | None = None, *,
               source: str) -> Status:
    """Store a remote Note (if new) and return its status. `source` is the host the document came
    from (the server that served or delivered it). Checks that its author is on its host, and
    believes a copy only from that host: a note embedded by a third server (in an Announce, a
    replies collection...) is fetched from its origin instead, so no server can plant posts
    attributed to another's accounts."""
    planned = await plan_note(state, doc, depth, actor, source=source)
    return planned if isinstance(planned, Status) else await store_planned(state, planned)


class NotePlan(msgspec.Struct):
    """A remote note checked and ready to store (plan_note), stored by store_planned or, several
    in one transaction, by store_planned_batch."""

    status: Status
    mentioned: list[int]
    tags: list[str]
    attachments: list[Any]
    poll_options: list[Any] | None
    poll_multiple: bool
    poll_voters_count: int | None
    poll_end: str | None
    published: float

    def extra(self) -> Callable[[Tx], Awaitable[None]] | None:
        """What goes into the note's transaction besides the status: its media and poll."""
        if not self.attachments and not (self.poll_options and len(self.poll_options) >= 2):
            return None
        status, attachments, options = self.status, self.attachments, self.poll_options

        async def media(tx: Tx) -> None:
            for position, a in enumerate(attachments):
                await remote_posts.insert_remote_media(tx, status.account_id, status.id, position, a)
            if options and len(options) >= 2:  # a Question: keep its options and its own counts
                await poll_store.insert(tx, status_id=status.id, account_id=status.account_id,
                                        options=[o.name[:200] for o in options], multiple=self.poll_multiple,
                                        hide_totals=False, expires_at=self.poll_end,
                                        tallies=[max(0, o.votes) for o in options],
                                        voters_count=self.poll_voters_count or 0)
        return media

    def with_fresh_id(self) -> NotePlan:
        """The same note with another id (another post drew this time-based one)."""
        status = self.status
        fresh_id = _note_id(self.published)
        return msgspec.structs.replace(self, status=msgspec.structs.replace(
            status, id=fresh_id, thread_id=fresh_id if status.thread_id == status.id else status.thread_id))


def _note_id(published: float) -> int:
    return new_id(int(published * 1000)) if published < time.time() - 5 else new_id()


async def plan_note(state: State, doc: dict[str, Any], depth: int = 0, actor: Account | None = None, *,
                    source: str, new: set[str] | None = None) -> Status | NotePlan:
    """`note` up to the storing: the status we already have, or a NotePlan of the note to store
    (parents are fetched and stored on the way). `new`: URIs found neither stored nor deleted here,
    read together for a batch (the inbox worker's): one of them is taken from the set and not read
    again, so a second copy of it in the batch is."""
    try:
        parsed = ap.parse_note(doc)
    except ap.InvalidObject as exc:
        raise RemoteError(f"unusable note: {exc}") from exc
    if not ap.same_host(parsed.id, parsed.attributed_to):
        raise RemoteError("note and author are on different hosts")
    if ap.host_of(parsed.id) == state.domain:
        raise RemoteError("refusing a remote copy of a local note")
    if new is not None and parsed.id in new:
        new.discard(parsed.id)
    else:
        existing = await status_store.by_uri(state.db, parsed.id)
        if existing is not None:
            return existing
        if await remote_posts.is_tombstoned(state.db, parsed.id):
            raise RemoteError("note was deleted")
    if ap.host_of(parsed.id) != source.lower():
        if depth > MAX_ANCESTORS:
            raise RemoteError("too deep")
        origin = await state.remote.fetch(parsed.id)  # its id is on the host it was finally served from
        return await plan_note(state, origin, depth + 1, source=ap.host_of(ap.id_of(origin.get("id")) or ""))
    author = (actor if actor is not None and actor.uri == parsed.attributed_to
              else await actors.actor(state, parsed.attributed_to))
    parent = None
    if parsed.in_reply_to:
        parent = await status_by_uri(state, parsed.in_reply_to, depth)
        if parent is not None and parent.local_only:
            raise RemoteError("replies to local-only posts are not accepted")
    return await _plan_note(state, parsed, author, parent)


async def _plan_note(state: State, parsed: ap.ParsedNote, author: Account, parent: Status | None) -> NotePlan:
    boundary = state.boundary
    visibility = visibility_from_addressing(parsed.to, parsed.cc, author.followers_url or None)
    try:
        most_public, strip_media, no_direct = await boundary.inbound_note_rules(author.domain)
    except Refused as exc:
        raise RemoteError(exc.reason) from exc
    if no_direct and visibility == "direct":
        boundary.record("in", "receive", author.domain, "rejected", actor=author.uri,
                        activity_type="Note", reason="partner policy: no direct messages")
        raise RemoteError("direct messages from this partner are not accepted")
    clamped = Visibility(boundary.clamp(visibility, most_public))
    content = ap_html.sanitize_html(parsed.content or "")
    if parsed.name and not content:
        content = f"<p>{ap_html.sanitize_html(parsed.name)}</p>"
    mentioned, tags = await tags_of(state, parsed)
    published = parsed.published.timestamp() if parsed.published else time.time()
    status_id = _note_id(published)
    created = iso(parsed.published) if parsed.published else now_iso()
    status = Status(
        id=status_id, uri=parsed.id, url=parsed.url or parsed.id, account_id=author.id, local=False,
        in_reply_to_id=parent.id if parent else None, in_reply_to_account_id=parent.account_id if parent else None,
        reblog_of_id=None, thread_id=(parent.thread_id or parent.id) if parent else status_id, content=content,
        source_text=ap_html.html_to_text(content), spoiler_text=(parsed.summary or "")[:1000],
        visibility=clamped, sensitive=bool(parsed.sensitive or parsed.summary), language=parsed.language,
        app_id=None, created_at=created, edited_at=iso(parsed.updated) if parsed.updated else None,
        deleted_at=None, replies_count=0, reblogs_count=0, favourites_count=0)
    end = parsed.poll_closed or parsed.poll_end_time
    return NotePlan(status=status, mentioned=mentioned, tags=tags,
                    attachments=[] if strip_media else parsed.attachments[:8],
                    poll_options=parsed.poll_options[:MAX_POLL_OPTIONS] if parsed.poll_options else None,
                    poll_multiple=parsed.poll_multiple, poll_voters_count=parsed.poll_voters_count,
                    poll_end=iso(end) if end else None, published=published)


async def store_planned(state: State, plan: NotePlan) -> Status:
    """Store a planned note in a transaction of its own; the status stored (or the one a concurrent
    delivery of the same note stored first)."""
    for attempt in range(ID_ATTEMPTS):
        try:
            await status_service.store_status(state, plan.status, plan.mentioned, plan.tags, plan.extra())
            return plan.status
        except Exception as exc:
            existing = await status_store.by_uri(state.db, plan.status.uri)
            if existing is not None:  # a concurrent delivery of the same note won the race
                return existing
            if not isinstance(exc, IntegrityError) or attempt == ID_ATTEMPTS - 1:
                raise RemoteError(f"could not store note: {exc}") from exc
            # Another post published in the same millisecond drew this time-based id: draw again.
            plan = plan.with_fresh_id()
    raise RemoteError("could not store note")


async def store_planned_batch(state: State, plans: list[NotePlan]) -> list[Status | RemoteError]:
    """Store several planned notes (of distinct URIs) in one transaction: one commit instead of one
    per note, for a sender's run of posts. Should that transaction fail (an id drawn twice, a note
    stored meanwhile by another process), each is stored on its own instead. Returns, per plan, the
    status stored or the error that kept it out."""
    if len(plans) > 1:
        try:
            await status_service.store_statuses(state, [(p.status, p.mentioned, p.tags, p.extra()) for p in plans])
            return [p.status for p in plans]
        except Exception as exc:
            log.info("storing %d notes at once failed (%s); storing them one by one", len(plans), exc)
    results: list[Status | RemoteError] = []
    for plan in plans:
        try:
            results.append(await store_planned(state, plan))
        except RemoteError as exc:
            results.append(exc)
    return results


async def tags_of(state: State, parsed: ap.ParsedNote) -> tuple[list[int], list[str]]:
    """(ids of the accounts mentioned that we know, hashtag names) of a note."""
    mentioned: list[int] = []
    tags: list[str] = []
    for tag in parsed.tags:
        if tag.type == "Mention" and tag.href:
            account = await account_store.by_uri(state.db, tag.href)
            if account is None and ap.host_of(tag.href) == state.domain:
                local_id = await remote_actors.local_account_id_by_url(state.db, tag.href)
                account = await account_store.get(state.db, local_id) if local_id else None
            if account is not None and account.id not in mentioned:
                mentioned.append(account.id)
        elif tag.type == "Hashtag" and tag.name:
            name = tag.name.lstrip("#")
            if name and len(name) <= 100 and name not in tags:
                tags.append(name)
    return mentioned[:100], tags[:50]
