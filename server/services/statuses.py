"""Posting, editing, deleting, boosting, favouriting, bookmarking and pinning statuses."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from server.domain import text
from server.domain.enums import Visibility
from server.domain.events import (
    Favourited,
    ReblogCreated,
    StatusCreated,
    StatusDeleted,
    StatusEdited,
    Unfavourited,
)
from server.domain.paging import Page
from server.domain.records import Account, Status
from server.domain.records import StatusEdit as StatusEditRecord
from server.ids import new_id, now_iso
from server.ports import Tx
from server.render.bundles import StatusPage
from server.services import accounts as account_service
from server.services import group_rules, loaders, polls, viewers
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.services.media import attach as attach_media
from server.services.visibility import can_see, visible_ids
from server.state import State
from server.storage import accounts, identity, relations, statuses, timelines
from server.storage import conversations as conversation_store
from server.storage import media as media_store
from server.storage import notifications as notification_store

URL_WEIGHT = 23  # Mastodon counts every URL as 23 characters
MAX_PINS = 5
_URL_RE = re.compile(text._URL)


class NewStatus(msgspec.Struct, kw_only=True):
    text: str = ""
    in_reply_to_id: int | None = None
    visibility: str | None = None
    spoiler_text: str = ""
    sensitive: bool | None = None
    language: str | None = None
    media_ids: list[int] = []
    app_id: int | None = None
    idempotency_key: str | None = None
    poll: polls.PollSpec | None = None
    local_only: bool | None = None  # None: the instance default, or the replied-to post's setting
    group_id: int | None = None  # Soapbox: post in this group (as mentioning it does)


def parse_visibility(value: str) -> Visibility:
    try:
        return Visibility(value)
    except ValueError:
        raise Unprocessable(f"Visibility must be one of {', '.join(Visibility)}") from None


def text_length(body: str) -> int:
    return len(_URL_RE.sub("x" * URL_WEIGHT, body))


async def visible_status(state: State, viewer_id: int | None, status_id: int) -> Status:
    """The status if it exists and the viewer may see it; 404 otherwise (never reveal existence)."""
    status = await statuses.get(state.db, status_id)
    if status is None or not await can_see(state, viewer_id, status):
        raise NotFound()
    return status


async def _prepare_text(state: State, author: Account, body: str) -> tuple[text.Rendered, list[int]]:
    handles = text.extract_mentions(body, state.domain)
    resolved = await account_service.resolve_mentions(state, handles, look_up_unknown=True)
    rendered = text.render(body, state.base_url, state.domain, resolved)
    mentioned = []
    for handle in rendered.mentions:  # by id: a handle found through WebFinger may name another domain
        account_id = resolved[handle].account_id
        if account_id != author.id and account_id not in mentioned:
            mentioned.append(account_id)
    return rendered, mentioned


async def post_status(state: State, author: Account, new: NewStatus) -> Status:
    if new.idempotency_key:
        existing = await statuses.idempotent_status(state.db, author.id, new.idempotency_key, time.time() - 3600)
        if existing is not None:
            found = await statuses.get(state.db, existing)
            if found is not None:
                return found
    body = new.text.strip()
    if not body and not new.media_ids:
        raise Unprocessable("Text can't be blank")
    limit = state.settings.statuses.max_characters
    if text_length(body) + len(new.spoiler_text) > limit:
        raise Unprocessable(f"Text character limit of {limit} exceeded")
    if new.poll is not None:
        if new.media_ids:
            raise Unprocessable("A status can't have both a poll and media attachments")
        polls.validate(state, new.poll)
    user = await accounts.user(state.db, author.id)
    visibility = parse_visibility(new.visibility or (user.default_visibility if user else "public"))
    parent = None
    if new.in_reply_to_id is not None:
        parent = await statuses.get(state.db, new.in_reply_to_id)
        if parent is None or parent.reblog_of_id is not None or not await can_see(state, author.id, parent):
            raise NotFound("Record not found", "The status you are replying to does not exist")
        if await relations.blocked_either_way(state.db, author.id, parent.account_id):
            raise Forbidden("This action is not allowed")
    rendered, mentioned = await _prepare_text(state, author, body)
    if new.group_id is not None:
        mentioned = await group_rules.posting_to(state, author, new.group_id, parent, mentioned)
    visibility = await group_rules.post_visibility(state, author, mentioned, parent, visibility)
    sensitive = new.sensitive if new.sensitive is not None else bool(user and user.default_sensitive)
    sensitive = sensitive or await _sensitized(state, author)
    local_only = new.local_only
    if local_only is None:  # replies to local-only posts stay inside too
        local_only = parent.local_only if parent is not None else state.settings.statuses.local_only_default
    status_id = new_id()
    status = Status(
        id=status_id, uri=f"{author.uri}/statuses/{status_id}", url=f"{author.url}/{status_id}",
        account_id=author.id, local=True, in_reply_to_id=parent.id if parent else None,
        in_reply_to_account_id=parent.account_id if parent else None, reblog_of_id=None,
        thread_id=(parent.thread_id or parent.id) if parent else status_id, content=rendered.html,
        source_text=body, spoiler_text=new.spoiler_text.strip(), visibility=visibility,
        sensitive=bool(sensitive or new.spoiler_text.strip()),
        language=new.language or (user.default_language if user else None) or "en", app_id=new.app_id,
        created_at=now_iso(), edited_at=None, deleted_at=None, replies_count=0, reblogs_count=0, favourites_count=0,
        local_only=local_only)

    async def extra(tx: Tx) -> None:
        if new.media_ids:
            await attach_media(tx, author.id, status_id, new.media_ids)
        if new.poll is not None:
            await polls.create_in_tx(tx, new.poll, status_id, author.id)
        if new.idempotency_key:
            await statuses.remember_idempotency(tx, author.id, new.idempotency_key, status_id, time.time())

    await store_status(state, status, mentioned, rendered.tags, extra)
    return status


async def store_status(state: State, status: Status, mentioned: list[int], tags: list[str],
                       extra: Callable[[Tx], Awaitable[None]] | None = None) -> None:
    """Save a new status, local or arrived from elsewhere; feeds, notifications, streams and delivery
    follow from its StatusCreated event after the commit.

    `extra` runs inside the same transaction (media, idempotency keys, remote attachments, polls).
    """
    await store_statuses(state, [(status, mentioned, tags, extra)])


async def store_statuses(state: State, items: list[tuple[Status, list[int], list[str],
                                                        Callable[[Tx], Awaitable[None]] | None]]) -> None:
    """store_status for several statuses (status, mentioned, tags, extra) in one transaction: all or
    none are stored. The inbox stores a sender's run of posts this way (one commit instead of many,
    and one update of the sender's account instead of one per post)."""
    async with state.db.transaction() as tx:
        latest: dict[int, tuple[int, int, str]] = {}  # author → (posts, the largest id, the last one's date)
        for status, mentioned, tags, extra in items:
            await _insert_status(tx, status, mentioned, tags, extra)
            posts, largest, _ = latest.get(status.account_id, (0, 0, ""))
            # A remote post's id encodes its published time, so the largest is not always the last stored.
            latest[status.account_id] = (posts + 1, max(largest, status.id), status.created_at[:10])
        for author_id, (posts, largest, date) in latest.items():
            await accounts.count_posts(tx, author_id, posts, largest, date)
        await state.events.record_many(tx, [StatusCreated(status_id=status.id, mentioned=mentioned)
                                            for status, mentioned, _, _ in items])


async def _insert_status(tx: Tx, status: Status, mentioned: list[int], tags: list[str],
                         extra: Callable[[Tx], Awaitable[None]] | None) -> None:
    """A new status and what hangs off it (its StatusCreated event is the caller's to record)."""
    await statuses.insert(tx, status)
    if status.local:  # the author's own feed at once, so the next home read shows the post
        await timelines.add_to_feeds(tx, status.id, [status.account_id])
    if mentioned:
        await statuses.insert_mentions(tx, status.id, mentioned)
    if tags:
        await statuses.insert_tags(tx, status.id, tags)
    if extra is not None:
        await extra(tx)
    if status.in_reply_to_id is not None:
        await statuses.adjust_counts(tx, status.in_reply_to_id, replies=1)


async def _own_status(state: State, author: Account, status_id: int) -> Status:
    status = await statuses.get(state.db, status_id)
    if status is None or status.deleted_at is not None or status.reblog_of_id is not None:
        raise NotFound()
    if status.account_id != author.id:
        raise Forbidden("This action is not allowed")
    return status


async def delete_status(state: State, author: Account, status_id: int) -> Status:
    status = await _own_status(state, author, status_id)
    await remove_status(state, status)
    return status


async def remove_status(state: State, status: Status) -> None:
    """Delete a status (and the boosts of it) whoever asked; shared by the API and the inbox."""
    reblogs = await statuses.live_reblog_ids(state.db, status.id)
    async with state.db.transaction() as tx:
        await statuses.mark_deleted(tx, status.id)
        await accounts.adjust_counts(tx, status.account_id, statuses=-1)
        if status.in_reply_to_id is not None:
            await statuses.adjust_counts(tx, status.in_reply_to_id, replies=-1)
        if status.reblog_of_id is not None:
            await statuses.adjust_counts(tx, status.reblog_of_id, reblogs=-1)
        for reblog_id in reblogs:
            await statuses.mark_deleted(tx, reblog_id)
        await notification_store.delete_for_status(tx, status.id)
        await conversation_store.forget_status(tx, status.id)
        await state.events.record(tx, StatusDeleted(status_id=status.id, reblog_ids=reblogs))


class StatusEdit(msgspec.Struct, kw_only=True):
    text: str | None = None
    spoiler_text: str | None = None
    sensitive: bool | None = None
    language: str | None = None
    media_ids: list[int] | None = None


async def _sensitized(state: State, author: Account) -> bool:
    """Moderators marked the account sensitive: every post of it is, new or edited (as in Mastodon)."""
    return (await identity.moderation_of(state.db, [author.id]))[author.id].sensitized_at is not None


async def edit_status(state: State, author: Account, status_id: int, edit: StatusEdit) -> Status:
    status = await _own_status(state, author, status_id)
    body = status.source_text if edit.text is None else edit.text.strip()
    spoiler = status.spoiler_text if edit.spoiler_text is None else edit.spoiler_text.strip()
    if not body and not edit.media_ids and not await _has_media(state, status.id):
        raise Unprocessable("Text can't be blank")
    limit = state.settings.statuses.max_characters
    if text_length(body) + len(spoiler) > limit:
        raise Unprocessable(f"Text character limit of {limit} exceeded")
    rendered, mentioned = await _prepare_text(state, author, body)
    sensitive = status.sensitive if edit.sensitive is None else edit.sensitive
    sensitive = sensitive or await _sensitized(state, author)

    async def media(tx: Tx) -> None:
        if edit.media_ids is not None:
            await statuses.detach_media(tx, status.id)
            await attach_media(tx, author.id, status.id, edit.media_ids)

    return await apply_edit(state, status, content=rendered.html, source_text=body, spoiler_text=spoiler,
                            sensitive=bool(sensitive or spoiler), language=edit.language or status.language,
                            mentioned=mentioned, tags=rendered.tags, edited_at=now_iso(), extra=media)


async def apply_edit(state: State, status: Status, *, content: str, source_text: str, spoiler_text: str,
                     sensitive: bool, language: str | None, mentioned: list[int], tags: list[str], edited_at: str,
                     extra: Callable[[Tx], Awaitable[None]] | None = None) -> Status:
    """Record a new version of a status (local edit or remote Update); who needs to know hears of it
    through the StatusEdited event."""
    async with state.db.transaction() as tx:
        # The update first: it locks the row, so concurrent edits of one status take turns and only the
        # first records the original version.
        await statuses.update_content(tx, status.id, content=content, source_text=source_text,
                                      spoiler_text=spoiler_text, sensitive=sensitive, language=language,
                                      edited_at=edited_at)
        if not await statuses.edits(tx, status.id):
            await statuses.insert_edit(tx, status.id, status.content, status.spoiler_text, status.sensitive,
                                       status.created_at)
        await statuses.insert_edit(tx, status.id, content, spoiler_text, sensitive, edited_at)
        old_mentions = set(await statuses.mentioned_ids(tx, status.id))
        await statuses.replace_mentions(tx, status.id, mentioned)
        await statuses.replace_tags(tx, status.id, tags)
        if extra is not None:
            await extra(tx)
        added = [account_id for account_id in mentioned if account_id not in old_mentions]
        await state.events.record(tx, StatusEdited(status_id=status.id, added_mentions=added))
    updated = await statuses.get(state.db, status.id)
    assert updated is not None
    return updated


async def _has_media(state: State, status_id: int) -> bool:
    return await media_store.has_media(state.db, status_id)


async def reblog(state: State, account: Account, status_id: int, visibility: str | None = None) -> Status:
    original = await visible_status(state, account.id, status_id)
    if original.reblog_of_id is not None:
        original = await visible_status(state, account.id, original.reblog_of_id)
    if original.visibility == "direct" or (original.visibility == "private" and original.account_id != account.id):
        raise Forbidden("This action is not allowed")
    existing = await statuses.reblog_by(state.db, account.id, original.id)
    if existing is not None:
        return existing
    boost_visibility = Visibility(visibility) if visibility in tuple(Visibility) else Visibility.PUBLIC
    if original.visibility == Visibility.PRIVATE:
        boost_visibility = Visibility.PRIVATE
    rid = new_id()
    return await store_reblog(state, account, original, uri=f"{account.uri}/statuses/{rid}/activity",
                              url=f"{account.url}/{rid}", visibility=boost_visibility, status_id=rid)


async def store_reblog(state: State, account: Account, original: Status, *, uri: str, url: str,
                       visibility: Visibility,
                       status_id: int | None = None, created_at: str | None = None) -> Status:
    """Save a boost (ours or one that arrived) and fan it out."""
    rid = status_id or new_id()
    boost = Status(id=rid, uri=uri, url=url, account_id=account.id, local=account.local, in_reply_to_id=None,
                   in_reply_to_account_id=None, reblog_of_id=original.id, thread_id=None, content="", source_text="",
                   spoiler_text="", visibility=visibility, sensitive=False, language=None, app_id=None,
                   created_at=created_at or now_iso(), edited_at=None, deleted_at=None, replies_count=0,
                   reblogs_count=0, favourites_count=0, local_only=original.local_only)
    async with state.db.transaction() as tx:
        await statuses.insert(tx, boost)
        if boost.local:
            await timelines.add_to_feeds(tx, boost.id, [account.id])
        await statuses.adjust_counts(tx, original.id, reblogs=1)
        await accounts.count_posts(tx, account.id, 1, boost.id, boost.created_at[:10])
        await state.events.record(tx, ReblogCreated(status_id=boost.id, original_id=original.id))
    return boost


async def unreblog(state: State, account: Account, status_id: int) -> Status:
    original = await visible_status(state, account.id, status_id)
    if original.reblog_of_id is not None:
        original = await visible_status(state, account.id, original.reblog_of_id)
    existing = await statuses.reblog_by(state.db, account.id, original.id)
    if existing is not None:
        async with state.db.transaction() as tx:
            await notification_store.delete_matching(tx, account.id, "reblog", original.id)
        await remove_status(state, existing)
    return original


async def favourite(state: State, account: Account, status_id: int, uri: str | None = None) -> Status:
    """`uri` is the Like activity's id when the favourite arrived from another instance."""
    status = await visible_status(state, account.id, status_id)
    async with state.db.transaction() as tx:
        if await statuses.add_favourite(tx, account.id, status.id, uri):
            await state.events.record(tx, Favourited(account_id=account.id, status_id=status.id))
    return status


async def unfavourite(state: State, account: Account, status_id: int) -> Status:
    status = await statuses.get(state.db, status_id)
    if status is None:
        raise NotFound()
    async with state.db.transaction() as tx:
        if await statuses.remove_favourite(tx, account.id, status.id):
            await notification_store.delete_matching(tx, account.id, "favourite", status.id)
            await state.events.record(tx, Unfavourited(account_id=account.id, status_id=status.id))
    return status


async def bookmark(state: State, account: Account, status_id: int, on: bool) -> Status:
    status = await visible_status(state, account.id, status_id) if on else await statuses.get(state.db, status_id)
    if status is None:
        raise NotFound()
    async with state.db.transaction() as tx:
        await statuses.set_flag(tx, "bookmarks", account.id, status.id, on)
    return status


async def pin(state: State, account: Account, status_id: int, on: bool) -> Status:
    status = await _own_status(state, account, status_id)
    if on:
        if status.visibility not in ("public", "unlisted"):
            raise Unprocessable("Only public and unlisted posts can be pinned")
        if await statuses.count_pins(state.db, account.id) >= MAX_PINS:
            raise Unprocessable(f"You can pin at most {MAX_PINS} posts")
    async with state.db.transaction() as tx:
        await statuses.set_flag(tx, "pins", account.id, status.id, on)
    return status


@dataclass(slots=True)
class _Thread:
    """A status with the rest of its thread as stored: its ancestors (nearest first) and the thread's
    other statuses, and which of all these the viewer may see (decided in one batch)."""
    status: Status
    chain: list[Status]
    members: list[Status]
    visible: set[int]


async def _read_thread(state: State, viewer_id: int | None, status: Status,
                       members: list[Status] | None = None, viewer: viewers.ViewerState | None = None) -> _Thread:
    """`viewer`: the viewer's state as of the members read (or newer), whose blocks then decide what
    they may see; without it, the viewer's relations to the thread's authors are read."""
    if members is None:
        members = await statuses.thread_members(state.db, status.thread_id or status.id)
    by_id = {m.id: m for m in members}
    chain: list[Status] = []
    cursor = status
    seen = {status.id}
    while cursor.in_reply_to_id is not None and len(chain) < 200:
        parent = by_id.get(cursor.in_reply_to_id) or await statuses.get(state.db, cursor.in_reply_to_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        chain.append(parent)
        cursor = parent
    visible = await visible_ids(state, viewer_id, [status, *chain, *members],
                                blocked=viewer.blocked if viewer is not None else None)
    return _Thread(status=status, chain=chain, members=members, visible=visible)


def _arranged(t: _Thread) -> tuple[list[Status], list[Status]]:
    """Ancestors (oldest first) and descendants (depth-first, in reply order) the viewer may see."""
    ancestors = [p for p in reversed(t.chain) if p.id in t.visible]
    seen = {t.status.id, *(p.id for p in t.chain)}
    children: dict[int, list[Status]] = {}
    for m in t.members:
        if m.in_reply_to_id is not None:
            children.setdefault(m.in_reply_to_id, []).append(m)
    descendants: list[Status] = []
    stack = list(reversed(children.get(t.status.id, [])))
    while stack and len(descendants) < 4000:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if node.id in t.visible:
            descendants.append(node)
            stack.extend(reversed(children.get(node.id, [])))
    return ancestors, descendants


# -- reading, with what rendering needs ------------------------------------------------------------

async def shown(state: State, viewer_id: int | None, status: Status, *, reload: bool = False,
                with_source: bool = False) -> StatusPage:
    """One status ready to render for the viewer; `reload` reads it again first (counters an action
    just changed), keeping the given one if it is gone."""
    if reload:
        status = await statuses.get(state.db, status.id) or status
    return await loaders.status_page(state, viewer_id, [status], with_source=with_source)


async def show(state: State, viewer_id: int | None, status_id: int) -> StatusPage:
    return await shown(state, viewer_id, await visible_status(state, viewer_id, status_id))


async def thread(state: State, viewer_id: int | None, status_id: int) -> tuple[StatusPage, StatusPage]:
    """The ancestors and descendants of a status the viewer may see, without those the viewer's `hide`
    filters drop from threads; a remote thread is backfilled first (replies we were never sent).
    The status's own visibility is decided in the same batch as the rest of the thread's, from the
    blocks the viewer's state holds (at the version read with the thread's ids); follows are read only
    for the thread's followers-only posts."""
    from server.services.federation import threads  # it stores what it fetches through this module
    # The records as the rendering cache keeps them, current as of the request; the thread's ids from
    # its index.
    status = (await loaders.statuses(state, [status_id])).get(status_id)
    if status is None:
        raise NotFound()
    ids, version = await statuses.thread_ids(state.db, status.thread_id or status.id, viewer_id)
    found = await loaders.statuses(state, ids)
    members = [m for i in ids if (m := found.get(i)) is not None and m.deleted_at is None and m.reblog_of_id is None]
    # The viewer's kept state if it is at the version read with the members, else read now.
    viewer = await viewers.at_version(state, viewer_id, version) if viewer_id is not None else None
    t = await _read_thread(state, viewer_id, status, members, viewer)
    if status.id not in t.visible:
        raise NotFound()
    root = next((m for m in t.members if m.id == status.thread_id), None)
    if await threads.backfill_thread(state, status, root):
        t = await _read_thread(state, viewer_id, status)
        viewer = None  # read again with the page, after what the backfill stored
    ancestors, descendants = _arranged(t)
    both = await loaders.status_page(state, viewer_id, [*ancestors, *descendants], viewer_state=viewer)
    split = [StatusPage(items=part, bundle=both.bundle, viewer=both.viewer, cursor_ids=[s.id for s in part])
             for part in (ancestors, descendants)]
    return loaders.without_hidden(split[0], "thread"), loaders.without_hidden(split[1], "thread")


@dataclass(frozen=True, slots=True)
class History:
    status: StatusPage  # the status alone, rendered for nobody in particular
    author: Account
    edits: list[StatusEditRecord]


async def history(state: State, viewer_id: int | None, status_id: int) -> History:
    status = await visible_status(state, viewer_id, status_id)
    author = await accounts.get(state.db, status.account_id)
    if author is None:
        raise NotFound()
    return History(status=await shown(state, None, status), author=author, edits=await statuses.edits(state.db, status.id))


async def interacting(state: State, viewer_id: int | None, status_id: int, kind: str,
                      page: Page) -> tuple[list[Account], list[int]]:
    """Who favourited or boosted a status the viewer may see, and the row ids paging follows."""
    status = await visible_status(state, viewer_id, status_id)
    rows = await statuses.interacting_accounts(state.db, kind, status.id, page.max_id, page.since_id or page.min_id,
                                               page.limit)
    found = await accounts.get_many(state.db, [a for _, a in rows])
    return [found[a] for _, a in rows if a in found], [r for r, _ in rows]
