"""Scheduled statuses: kept in the database until their time comes, then posted like any other."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import msgspec

from server.domain.paging import Page
from server.domain.records import Account, ScheduledStatus, Status
from server.ids import iso, new_id, now_iso
from server.render.bundles import ScheduledPage
from server.services import loaders, polls
from server.services import statuses as status_service
from server.services.errors import NotFound, ServiceError, Unprocessable
from server.services.visibility import can_see
from server.state import State
from server.storage import accounts, statuses
from server.storage import scheduled as store

log = logging.getLogger("crosstalk.scheduled")

MAX_TOTAL = 300  # Mastodon's limits: scheduled statuses per account, and per day
MAX_PER_DAY = 25


def params_of(item: ScheduledStatus) -> status_service.NewStatus:
    return msgspec.json.decode(item.params, type=status_service.NewStatus)


async def _check(state: State, author: Account, new: status_service.NewStatus) -> None:
    """What post_status would refuse, refused now rather than silently at publication time."""
    body = new.text.strip()
    if not body and not new.media_ids:
        raise Unprocessable("Text can't be blank")
    limit = state.settings.statuses.max_characters
    if status_service.text_length(body) + len(new.spoiler_text) > limit:
        raise Unprocessable(f"Text character limit of {limit} exceeded")
    if new.visibility is not None:
        status_service.parse_visibility(new.visibility)
    if new.poll is not None:
        if new.media_ids:
            raise Unprocessable("A status can't have both a poll and media attachments")
        polls.validate(state, new.poll)
    if len(new.media_ids) > 4:
        raise Unprocessable("Too many media attachments (maximum is 4)")
    found = {r["id"] for r in await store.unattached_media(state.db, author.id, new.media_ids)}
    for media_id in new.media_ids:
        if media_id not in found:
            raise Unprocessable(f"Media attachment {media_id} was not found or is already attached")
    if new.in_reply_to_id is not None:
        parent = await statuses.get(state.db, new.in_reply_to_id)
        if parent is None or parent.reblog_of_id is not None or not await can_see(state, author.id, parent):
            raise NotFound("Record not found", "The status you are replying to does not exist")


def _check_time(state: State, when: datetime) -> None:
    earliest = state.settings.statuses.min_schedule_seconds
    if when < datetime.now(UTC) + timedelta(seconds=earliest):
        raise Unprocessable(f"The scheduled date must be at least {earliest} seconds in the future")


async def _check_limits(state: State, author: Account, when: datetime, moving: int | None = None) -> None:
    if moving is None and await store.count_for(state.db, author.id) >= MAX_TOTAL:
        raise Unprocessable(f"You cannot schedule more than {MAX_TOTAL} statuses")
    on_day = await store.count_on_day(state.db, author.id, iso(when)[:10])
    if moving is not None:
        current = await store.get(state.db, author.id, moving)
        if current is not None and current.scheduled_at[:10] == iso(when)[:10]:
            on_day -= 1
    if on_day >= MAX_PER_DAY:
        raise Unprocessable(f"You cannot schedule more than {MAX_PER_DAY} statuses on the same day")


async def schedule(state: State, author: Account, new: status_service.NewStatus,
                   when: datetime) -> ScheduledStatus | Status:
    """Keep the status for later; a time already past posts it at once (as Mastodon does)."""
    if when <= datetime.now(UTC):
        return await status_service.post_status(state, author, new)
    _check_time(state, when)
    await _check(state, author, new)
    await _check_limits(state, author, when)
    stored = msgspec.structs.replace(new, idempotency_key=None)
    async with state.db.transaction() as tx:
        return await store.insert(tx, new_id(), author.id, iso(when), msgspec.json.encode(stored).decode())


async def shown(state: State, items: list[ScheduledStatus]) -> ScheduledPage:
    """Scheduled statuses ready to render."""
    return await loaders.scheduled_page(state, items)


async def page_for(state: State, author: Account, page: Page) -> ScheduledPage:
    return await shown(state, await store.page_for(state.db, author.id, page))


async def get(state: State, author: Account, scheduled_id: int) -> ScheduledStatus:
    item = await store.get(state.db, author.id, scheduled_id)
    if item is None:
        raise NotFound()
    return item


async def reschedule(state: State, author: Account, scheduled_id: int, when: datetime) -> ScheduledStatus:
    await get(state, author, scheduled_id)
    _check_time(state, when)
    await _check_limits(state, author, when, moving=scheduled_id)
    async with state.db.transaction() as tx:
        if not await store.reschedule(tx, author.id, scheduled_id, iso(when)):
            raise NotFound()
    return await get(state, author, scheduled_id)


async def cancel(state: State, author: Account, scheduled_id: int) -> None:
    async with state.db.transaction() as tx:
        if not await store.delete(tx, scheduled_id, author.id):
            raise NotFound()


async def publish_due(state: State) -> int:
    """Post every scheduled status whose time has come; returns how many were handled.

    The row goes only after posting, and posting uses an idempotency key derived from the row, so a
    crash in between cannot post the same status twice.
    """
    handled = 0
    for item in await store.due(state.db, now_iso()):
        author = await accounts.get(state.db, item.account_id)
        try:
            if author is None or author.suspended or author.deleted_at is not None:
                raise NotFound("the author is gone")
            new = msgspec.structs.replace(params_of(item), idempotency_key=f"scheduled:{item.id}")
            await status_service.post_status(state, author, new)
        except (ServiceError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            # Same as Mastodon: a status that can no longer be posted (its reply target or media went
            # away) is dropped rather than retried for ever.
            log.warning("scheduled status %d of account %d could not be posted: %s", item.id, item.account_id,
                        getattr(exc, "message", exc))
        async with state.db.transaction() as tx:
            await store.delete(tx, item.id)
        handled += 1
    return handled
