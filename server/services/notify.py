"""Notifications: made from domain events inside the transaction that records them (so the very next
request sees them), then announced on each recipient's stream after the commit.

`create_for_events` runs in the recording transaction (an in-transaction subscriber of the outbox);
each notification carries the event's id, so running it twice for one event adds nothing.
`on_events` runs after the commit and announces the notifications of a batch of events.
"""

from __future__ import annotations

from server.bus.memory import StreamEvent
from server.domain.enums import Visibility
from server.domain.events import (
    DomainEvent,
    Favourited,
    Followed,
    FollowRequested,
    PollEnded,
    ReblogCreated,
    ReportFiled,
    StatusCreated,
    StatusEdited,
)
from server.domain.records import Notification
from server.ports import Tx
from server.state import State
from server.storage import accounts, identity, relations, reports
from server.storage import notifications as store
from server.storage import polls as poll_store
from server.storage import statuses as status_store


async def on_events(state: State, events: list[tuple[int, DomainEvent]]) -> None:
    """Announce the notifications a batch of events made (one query for the batch)."""
    for n in await store.by_events(state.db, [event_id for event_id, _ in events]):
        state.bus.publish(StreamEvent(topic=f"user:{n.account_id}", name="notification", payload=n.id,
                                      account_id=n.account_id))


async def create_for_events(tx: Tx, events: list[tuple[int, DomainEvent]]) -> list[Notification | None]:
    """The notifications of events recorded together: the statuses new posts name are read in one
    query, and each author's notified followers once."""
    created = [e.status_id for _, e in events if isinstance(e, StatusCreated)]
    statuses = await status_store.get_many(tx, created) if created else {}
    notified: dict[int, list[int]] = {}  # author → followers who asked to hear of their posts
    notes: list[Notification | None] = []
    for event_id, event in events:
        if not isinstance(event, StatusCreated):
            notes += await _for_event(tx, event_id, event)
            continue
        status = statuses.get(event.status_id)
        if status is None or status.deleted_at is not None:
            continue
        notes += [await create(tx, event_id, account_id, status.account_id, "mention", status.id)
                  for account_id in event.mentioned]
        if status.in_reply_to_id is None and status.visibility != Visibility.DIRECT:
            followers = notified.get(status.account_id)
            if followers is None:
                followers = notified[status.account_id] = await relations.notify_follower_ids(tx, status.account_id)
            for follower_id in followers:
                notes.append(await create(tx, event_id, follower_id, status.account_id, "status", status.id))
    return notes


async def _for_event(tx: Tx, event_id: int, event: DomainEvent) -> list[Notification | None]:
    match event:
        case ReblogCreated(status_id=status_id, original_id=original_id):
            boost = await status_store.get(tx, status_id)
            original = await status_store.get(tx, original_id)
            if boost is None or boost.deleted_at is not None or original is None:
                return []
            return [await create(tx, event_id, original.account_id, boost.account_id, "reblog", original.id)]
        case StatusEdited(status_id=status_id, added_mentions=added):
            status = await status_store.get(tx, status_id)
            if status is None or status.deleted_at is not None:
                return []
            notes = [await create(tx, event_id, account_id, status.account_id, "mention", status.id)
                     for account_id in added]
            for booster in await status_store.booster_ids(tx, status.id):
                notes.append(await create(tx, event_id, booster, status.account_id, "update", status.id))
            return notes
        case Favourited(account_id=account_id, status_id=status_id):
            status = await status_store.get(tx, status_id)
            if status is None or not await status_store.has_favourite(tx, account_id, status_id):
                return []
            return [await create(tx, event_id, status.account_id, account_id, "favourite", status.id)]
        case FollowRequested(follower_id=follower_id, target_id=target_id):
            if await relations.follow_request(tx, follower_id, target_id) is None:
                return []
            return [await create(tx, event_id, target_id, follower_id, "follow_request")]
        case Followed(follower_id=follower_id, target_id=target_id, repeated=False):
            if await relations.follow(tx, follower_id, target_id) is None:
                return []
            return [await create(tx, event_id, target_id, follower_id, "follow")]
        case PollEnded(poll_id=poll_id):
            return await _poll_ended(tx, event_id, poll_id)
        case ReportFiled(report_id=report_id):
            return await _report_filed(tx, event_id, report_id)
    return []


async def create(tx: Tx, event_id: int, recipient_id: int, from_id: int, type_: str,
                 status_id: int | None = None) -> Notification | None:
    """A notification for a local recipient, unless it is their own action, they muted the sender's
    notifications, or moderators silenced the sender and the recipient does not follow them (as in Mastodon)."""
    if recipient_id == from_id:
        return None
    recipient = await accounts.get(tx, recipient_id)
    if recipient is None or not recipient.local:
        return None
    if from_id in await relations.notification_muted_ids(tx, recipient_id):
        return None
    if await identity.silenced_for(tx, from_id, recipient_id):
        return None
    return await store.insert(tx, event_id, recipient_id, from_id, type_, status_id)


async def _poll_ended(tx: Tx, event_id: int, poll_id: int) -> list[Notification | None]:
    poll = await poll_store.get(tx, poll_id)
    if poll is None:
        return []
    notes = [await create(tx, event_id, voter_id, poll.account_id, "poll", poll.status_id)
             for voter_id in await poll_store.local_voter_ids(tx, poll.id)]
    author = await accounts.get(tx, poll.account_id)
    if author is not None and author.local:
        # `create` skips notes to oneself; the author of a poll wants this one.
        notes.append(await store.insert(tx, event_id, author.id, author.id, "poll", poll.status_id))
    return notes


async def _report_filed(tx: Tx, event_id: int, report_id: int) -> list[Notification | None]:
    report = await reports.get(tx, report_id)
    if report is None:
        return []
    notes: list[Notification | None] = []
    for moderator_id in await reports.moderator_ids(tx):
        if moderator_id in (report.account_id, report.target_account_id):
            continue
        # Straight to storage: a moderator's mutes must not hide reports from them.
        note = await store.insert(tx, event_id, moderator_id, report.account_id, "admin.report", None)
        if note is not None:
            await reports.link_notification(tx, note.id, report.id)
        notes.append(note)
    return notes
