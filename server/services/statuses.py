"""Posting, editing, deleting, boosting, favouriting, bookmarking and pinning statuses."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from server.events import Event
from server.ids import new_id, now_iso
from server.records import Account, Status
from server.services import accounts as account_service
from server.services import conversations, feeds, notify, polls, text
from server.services.errors import Forbidden, NotFound, Unprocessable
from server.services.media import attach as attach_media
from server.services.visibility import can_see, visible_ids
from server.state import State
from server.storage import accounts, relations, statuses, timelines
from server.storage import conversations as conversation_store
from server.storage import media as media_store
from server.storage import notifications as notification_store

VISIBILITIES = ("public", "unlisted", "private", "direct")
URL_WEIGHT = 23  # Mastodon counts every URL as 23 characters
MAX_PINS = 5
FAN_OUT_CHUNK = 250
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
    resolved = await account_service.resolve_mentions(state, handles)
    rendered = text.render(body, state.base_url, state.domain, resolved)
    mentioned = []
    for username, domain in rendered.mentions:
        acct = await accounts.by_username(state.db, username, domain or "")
        if acct is not None and acct.id != author.id:
            mentioned.append(acct.id)
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
    limit = state.config["statuses.max_characters"]
    if text_length(body) + len(new.spoiler_text) > limit:
        raise Unprocessable(f"Text character limit of {limit} exceeded")
    if new.poll is not None:
        if new.media_ids:
            raise Unprocessable("A status can't have both a poll and media attachments")
        polls.validate(state, new.poll)
    user = await accounts.user(state.db, author.id)
    visibility = new.visibility or (user.default_visibility if user else "public")
    if visibility not in VISIBILITIES:
        raise Unprocessable(f"Visibility must be one of {', '.join(VISIBILITIES)}")
    parent = None
    if new.in_reply_to_id is not None:
        parent = await statuses.get(state.db, new.in_reply_to_id)
        if parent is None or parent.reblog_of_id is not None or not await can_see(state, author.id, parent):
            raise NotFound("Record not found", "The status you are replying to does not exist")
        if await relations.blocked_either_way(state.db, author.id, parent.account_id):
            raise Forbidden("This action is not allowed")
    rendered, mentioned = await _prepare_text(state, author, body)
    sensitive = new.sensitive if new.sensitive is not None else bool(user and user.default_sensitive)
    local_only = new.local_only
    if local_only is None:  # replies to local-only posts stay inside too
        local_only = parent.local_only if parent is not None else state.config["statuses.local_only_default"]
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

    async def extra(tx: object) -> None:
        if new.media_ids:
            await attach_media(tx, author.id, status_id, new.media_ids)
        if new.poll is not None:
            await polls.create_in_tx(tx, new.poll, status_id, author.id)
        if new.idempotency_key:
            await statuses.remember_idempotency(tx, author.id, new.idempotency_key, status_id, time.time())

    await store_status(state, status, mentioned, rendered.tags, extra)
    return status


async def store_status(state: State, status: Status, mentioned: list[int], tags: list[str],
                       extra: Callable[[Any], Awaitable[None]] | None = None) -> None:
    """Save a new status, local or arrived from elsewhere, then fan it out off the request path.

    `extra` runs inside the same transaction (media, idempotency keys, remote attachments, polls).
    """
    notes = []
    async with state.db.transaction() as tx:
        await statuses.insert(tx, status)
        await statuses.insert_mentions(tx, status.id, mentioned)
        await statuses.replace_tags(tx, status.id, tags)
        if extra is not None:
            await extra(tx)
        await accounts.adjust_counts(tx, status.account_id, statuses=1)
        await accounts.touch_last_status(tx, status.account_id, status.created_at[:10])
        if status.in_reply_to_id is not None:
            await statuses.adjust_counts(tx, status.in_reply_to_id, replies=1)
        for account_id in mentioned:
            notes.append(await notify.create(state, tx, account_id, status.account_id, "mention", status.id))
    notify.announce(state, notes)
    state.spawn(fan_out(state, status, mentioned), name=f"fan-out {status.id}")


async def fan_out(state: State, status: Status, mentioned: list[int]) -> None:
    """Put a new status into the home feeds of the local readers it is meant for, then announce it."""
    author_id = status.account_id
    readers = {author_id} if status.local else set()
    followers = await relations.follower_ids(state.db, author_id, local_only=True)
    if status.reblog_of_id is not None:
        wants_boosts = await relations.reblog_follower_ids(state.db, author_id)
        followers = [f for f in followers if f in wants_boosts]
    if status.visibility in ("public", "unlisted", "private"):
        readers.update(followers)
    elif status.visibility == "direct":
        readers.update(set(followers) & set(mentioned))
    delivery = await feeds.plan(state, status, readers)  # lists, exclusive lists, followed hashtags
    readers = delivery.home
    # Feed rows go in short transactions, so posts and other writes are not held up by a big fan-out.
    ordered = sorted(readers)
    for start in range(0, len(ordered), FAN_OUT_CHUNK):
        async with state.db.transaction() as tx:
            await timelines.add_to_feeds(tx, status.id, ordered[start:start + FAN_OUT_CHUNK])
    async with state.db.transaction() as tx:
        await feeds.store(tx, status, delivery)
        notes = []
        if status.reblog_of_id is None and status.in_reply_to_id is None and status.visibility != "direct":
            for follower_id in await relations.notify_follower_ids(tx, author_id):
                notes.append(await notify.create(state, tx, follower_id, author_id, "status", status.id))
    notify.announce(state, notes)
    for reader in readers:
        state.bus.publish(Event(topic=f"user:{reader}", name="update", payload=None, status_id=status.id))
    if status.visibility == "public" and status.reblog_of_id is None:
        state.bus.publish(Event(topic="public", name="update", payload=None, status_id=status.id))
        state.bus.publish(Event(topic="public:local" if status.local else "public:remote", name="update",
                                payload=None, status_id=status.id))
    feeds.publish(state, status, delivery)
    if status.visibility == "direct" and status.reblog_of_id is None:
        await conversations.status_posted(state, status, mentioned)
    if status.local:
        if status.reblog_of_id is None:
            await state.outbound.status_created(status)
        else:
            original = await statuses.get(state.db, status.reblog_of_id)
            if original is not None:
                await state.outbound.reblogged(status, original)


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
    for sid in [status.id, *reblogs]:
        for topic in ("public", "public:local", "public:remote"):
            state.bus.publish(Event(topic=topic, name="delete", payload=str(sid), status_id=sid))
        state.bus.publish(Event(topic="delete", name="delete", payload=str(sid), status_id=sid))
    if status.local:
        if status.reblog_of_id is not None:
            original = await statuses.get(state.db, status.reblog_of_id)
            if original is not None:
                await state.outbound.unreblogged(status, original)
        else:
            await state.outbound.status_deleted(status)


class StatusEdit(msgspec.Struct, kw_only=True):
    text: str | None = None
    spoiler_text: str | None = None
    sensitive: bool | None = None
    language: str | None = None
    media_ids: list[int] | None = None


async def edit_status(state: State, author: Account, status_id: int, edit: StatusEdit) -> Status:
    status = await _own_status(state, author, status_id)
    body = status.source_text if edit.text is None else edit.text.strip()
    spoiler = status.spoiler_text if edit.spoiler_text is None else edit.spoiler_text.strip()
    if not body and not edit.media_ids and not await _has_media(state, status.id):
        raise Unprocessable("Text can't be blank")
    limit = state.config["statuses.max_characters"]
    if text_length(body) + len(spoiler) > limit:
        raise Unprocessable(f"Text character limit of {limit} exceeded")
    rendered, mentioned = await _prepare_text(state, author, body)
    sensitive = status.sensitive if edit.sensitive is None else edit.sensitive

    async def media(tx: Any) -> None:
        if edit.media_ids is not None:
            await statuses.detach_media(tx, status.id)
            await attach_media(tx, author.id, status.id, edit.media_ids)

    return await apply_edit(state, status, content=rendered.html, source_text=body, spoiler_text=spoiler,
                            sensitive=bool(sensitive or spoiler), language=edit.language or status.language,
                            mentioned=mentioned, tags=rendered.tags, edited_at=now_iso(), extra=media)


async def apply_edit(state: State, status: Status, *, content: str, source_text: str, spoiler_text: str,
                     sensitive: bool, language: str | None, mentioned: list[int], tags: list[str], edited_at: str,
                     extra: Callable[[Any], Awaitable[None]] | None = None) -> Status:
    """Record a new version of a status (local edit or remote Update) and tell who needs to know."""
    async with state.db.transaction() as tx:
        if not await statuses.edits(tx, status.id):
            await statuses.insert_edit(tx, status.id, status.content, status.spoiler_text, status.sensitive,
                                       status.created_at)
        await statuses.update_content(tx, status.id, content=content, source_text=source_text,
                                      spoiler_text=spoiler_text, sensitive=sensitive, language=language,
                                      edited_at=edited_at)
        await statuses.insert_edit(tx, status.id, content, spoiler_text, sensitive, edited_at)
        old_mentions = set(await statuses.mentioned_ids(tx, status.id))
        await statuses.replace_mentions(tx, status.id, mentioned)
        await statuses.replace_tags(tx, status.id, tags)
        if extra is not None:
            await extra(tx)
        notes = []
        for account_id in set(mentioned) - old_mentions:
            notes.append(await notify.create(state, tx, account_id, status.account_id, "mention", status.id))
        for booster in await statuses.booster_ids(tx, status.id):
            notes.append(await notify.create(state, tx, booster, status.account_id, "update", status.id))
    notify.announce(state, notes)
    updated = await statuses.get(state.db, status.id)
    assert updated is not None
    for reader in await timelines.readers_of(state.db, status.id):
        state.bus.publish(Event(topic=f"user:{reader}", name="status.update", payload=None, status_id=status.id))
    if status.visibility == "public":
        for topic in ("public", "public:local" if status.local else "public:remote"):
            state.bus.publish(Event(topic=topic, name="status.update", payload=None, status_id=status.id))
    await feeds.publish_edit(state, updated)
    if status.local:
        await state.outbound.status_updated(updated)
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
    if visibility not in VISIBILITIES:
        visibility = "public"
    if original.visibility == "private":
        visibility = "private"
    rid = new_id()
    return await store_reblog(state, account, original, uri=f"{account.uri}/statuses/{rid}/activity",
                              url=f"{account.url}/{rid}", visibility=visibility, status_id=rid)


async def store_reblog(state: State, account: Account, original: Status, *, uri: str, url: str, visibility: str,
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
        await statuses.adjust_counts(tx, original.id, reblogs=1)
        await accounts.adjust_counts(tx, account.id, statuses=1)
        note = await notify.create(state, tx, original.account_id, account.id, "reblog", original.id)
    notify.announce(state, [note])
    state.spawn(fan_out(state, boost, []), name=f"fan-out {rid}")
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
        added = await statuses.add_favourite(tx, account.id, status.id, uri)
        note = await notify.create(state, tx, status.account_id, account.id, "favourite", status.id) if added else None
    notify.announce(state, [note])
    if added:
        await state.outbound.favourited(account, status)
    return status


async def unfavourite(state: State, account: Account, status_id: int) -> Status:
    status = await statuses.get(state.db, status_id)
    if status is None:
        raise NotFound()
    async with state.db.transaction() as tx:
        removed = await statuses.remove_favourite(tx, account.id, status.id)
        if removed:
            await notification_store.delete_matching(tx, account.id, "favourite", status.id)
    if removed:
        await state.outbound.unfavourited(account, status)
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


async def context(state: State, viewer_id: int | None, status: Status) -> tuple[list[Status], list[Status]]:
    """Ancestors (oldest first) and descendants (depth-first, in reply order) the viewer may see."""
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
    visible = await visible_ids(state, viewer_id, [*chain, *members])
    ancestors = [p for p in reversed(chain) if p.id in visible]
    children: dict[int, list[Status]] = {}
    for m in members:
        if m.in_reply_to_id is not None:
            children.setdefault(m.in_reply_to_id, []).append(m)
    descendants: list[Status] = []
    stack = list(reversed(children.get(status.id, [])))
    while stack and len(descendants) < 4000:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if node.id in visible:
            descendants.append(node)
            stack.extend(reversed(children.get(node.id, [])))
    return ancestors, descendants
