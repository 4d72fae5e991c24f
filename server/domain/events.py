"""Domain events: what happened, written in the same transaction as the change itself.

A service records events with `state.events.record(tx, event)`; after the commit the dispatcher
(server/jobs/outbox.py) hands each one to the subscribers (home feeds, notifications, conversations,
streaming, federation delivery). A crash after the commit loses nothing: undispatched events are
dispatched at the next chance, and subscribers are idempotent (they may see an event twice).

Events carry ids and the few facts that cannot be read back afterwards (the id of a Follow that no
longer exists, the boosts deleted with a post); subscribers read the current state for the rest.
"""

from __future__ import annotations

import msgspec


class DomainEvent(msgspec.Struct, frozen=True, tag_field="kind"):
    pass


class StatusCreated(DomainEvent, frozen=True, tag="status.created"):
    """A new post, local or from another server (not a boost)."""

    status_id: int
    mentioned: list[int]  # local and remote accounts mentioned, the author excluded


class ReblogCreated(DomainEvent, frozen=True, tag="reblog.created"):
    status_id: int  # the boost
    original_id: int


class StatusEdited(DomainEvent, frozen=True, tag="status.edited"):
    status_id: int
    added_mentions: list[int]  # accounts mentioned by this version and not the one before


class StatusDeleted(DomainEvent, frozen=True, tag="status.deleted"):
    """A post or a boost was deleted (the row stays, marked deleted); its boosts went with it."""

    status_id: int
    reblog_ids: list[int]


class Favourited(DomainEvent, frozen=True, tag="favourited"):
    account_id: int
    status_id: int


class Unfavourited(DomainEvent, frozen=True, tag="unfavourited"):
    account_id: int
    status_id: int


class FollowRequested(DomainEvent, frozen=True, tag="follow.requested"):
    """A follow that waits for the target's answer (a locked account, or any remote one)."""

    follower_id: int
    target_id: int
    uri: str | None


class Followed(DomainEvent, frozen=True, tag="followed"):
    """A follow took effect: straight away, or because the target accepted the request."""

    follower_id: int
    target_id: int
    uri: str | None
    repeated: bool = False  # a remote Follow for a follow we already had: only our Accept is re-sent


class FollowRejected(DomainEvent, frozen=True, tag="follow.rejected"):
    """The target refused a follow request or removed a follower."""

    follower_id: int
    target_id: int
    uri: str | None


class Unfollowed(DomainEvent, frozen=True, tag="unfollowed"):
    follower_id: int
    target_id: int
    uri: str | None


class Blocked(DomainEvent, frozen=True, tag="blocked"):
    account_id: int
    target_id: int
    uri: str | None


class Unblocked(DomainEvent, frozen=True, tag="unblocked"):
    account_id: int
    target_id: int
    uri: str | None


class ProfileUpdated(DomainEvent, frozen=True, tag="profile.updated"):
    account_id: int


class PollVoted(DomainEvent, frozen=True, tag="poll.voted"):
    account_id: int
    poll_id: int
    choices: list[int]


class PollEnded(DomainEvent, frozen=True, tag="poll.ended"):
    poll_id: int


class ReportFiled(DomainEvent, frozen=True, tag="report.filed"):
    report_id: int


class AccountSuspended(DomainEvent, frozen=True, tag="account.suspended"):
    """A local account was suspended (admin, SCIM `active: false`, or its provider's groups): peers are
    sent its actor marked suspended."""

    account_id: int


class AccountUnsuspended(DomainEvent, frozen=True, tag="account.unsuspended"):
    account_id: int


class AccountDeleted(DomainEvent, frozen=True, tag="account.deleted"):
    """A local account was deleted. Its follows are gone by now, so the inboxes that must receive the
    `Delete` of the actor travel with the event."""

    account_id: int
    inboxes: list[str]


class GroupPostAccepted(DomainEvent, frozen=True, tag="group.post_accepted"):
    """A group took a post in (a top-level post or a reply in one of its threads). A top-level post
    is shared with the members by the group's boost `share_id`; replies thread without a share."""

    group_id: int
    status_id: int
    share_id: int | None


class GroupPostRemoved(DomainEvent, frozen=True, tag="group.post_removed"):
    """A moderator removed a post from a group: the post is deleted and the group tells its members'
    servers (an Announce of the Delete)."""

    group_id: int
    status_id: int
    moderator_id: int


class Reacted(DomainEvent, frozen=True, tag="reacted"):
    """An emoji reaction on a status (Pleroma/Akkoma's API, `EmojiReact` over federation)."""

    account_id: int
    status_id: int
    name: str


class Unreacted(DomainEvent, frozen=True, tag="unreacted"):
    account_id: int
    status_id: int
    name: str


AnyEvent = (StatusCreated | ReblogCreated | StatusEdited | StatusDeleted | Favourited | Unfavourited
            | FollowRequested | Followed | FollowRejected | Unfollowed | Blocked | Unblocked | ProfileUpdated
            | PollVoted | PollEnded | ReportFiled | AccountSuspended | AccountUnsuspended
            | AccountDeleted | GroupPostAccepted | GroupPostRemoved
            | Reacted | Unreacted)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: DomainEvent) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> DomainEvent:
    event: DomainEvent = _decoder.decode(data)
    return event
