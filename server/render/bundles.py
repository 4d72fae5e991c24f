"""What rendering consumes: records loaded beforehand, in batches, by the service-side loaders
(server/services/loaders.py). Rendering reads nothing else.

A status renders from the `StatusBundle` (the same for every viewer) plus the `ViewerBits` of the
one looking at it, so a rendering without a viewer can be kept and finished per viewer.

They are frozen msgspec Structs: a page makes several on every request, and a frozen dataclass's
constructor sets each field through object.__setattr__ (1.8 us for a bundle's eleven, against 0.15).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from server.domain.filters import FilterResult
from server.domain.records import (
    Account,
    Announcement,
    App,
    Conversation,
    Notification,
    Poll,
    Report,
    ScheduledStatus,
    Status,
    ViewerFlags,
)
from server.ports import Row


class Site(Protocol):
    """Where the instance lives: all that rendering needs of the running instance."""

    @property
    def base_url(self) -> str: ...


class StatusBundle(msgspec.Struct, frozen=True):
    """A page of statuses and everything about them that is the same for every viewer."""
    statuses: dict[int, Status]  # the page's statuses and the ones they boost
    accounts: dict[int, Account]  # their authors and the accounts they mention
    mentions: dict[int, list[int]]  # status id → mentioned account ids
    tags: dict[int, list[str]]  # status id → hashtag names
    media: dict[int, list[Row]]  # status id → attachment rows, in order
    polls: dict[int, Poll]  # status id → its poll
    apps: dict[int, App]  # app id → the application that posted
    reactions: dict[int, Sequence[tuple[str, int]]] = msgspec.field(default_factory=dict)  # status id → (emoji, count), most used first
    # status id → the rendered parts that change only with the status (application, media_attachments,
    # mentions, tags), kept between requests; mentions/tags/media/apps above hold only the others' records
    parts: dict[int, dict[str, Any]] = msgspec.field(default_factory=dict)
    # status id → its kept `status_fragment`, account id → its kept `account_bytes` (render/mastodon.py);
    # statuses and accounts without one are rendered from the records above
    fragments: dict[int, bytes] = msgspec.field(default_factory=dict)
    account_fragments: dict[int, bytes] = msgspec.field(default_factory=dict)


class ViewerBits(msgspec.Struct, frozen=True):
    """What one viewer adds to a status: their flags, their poll votes and their filters' verdicts."""
    viewer_id: int
    flags: ViewerFlags
    votes: dict[int, list[int]] = msgspec.field(default_factory=dict)  # poll id → the viewer's choices
    filtered: dict[int, list[FilterResult]] = msgspec.field(default_factory=dict)  # status id → FilterResult
    reacted: dict[int, set[str]] = msgspec.field(default_factory=dict)  # status id → the emoji the viewer reacted with


class StatusPage(msgspec.Struct, frozen=True):
    """Statuses to render in order, what they need, and the ids the page's Link header follows."""
    items: list[Status]
    bundle: StatusBundle
    viewer: ViewerBits | None
    cursor_ids: list[int]
    with_source: bool = False


class NotificationPage(msgspec.Struct, frozen=True):
    items: list[Notification]  # only those that can be shown
    statuses: StatusPage  # the statuses they are about
    accounts: dict[int, Account]  # who caused them, and the targets of reports
    reports: dict[int, Report]  # notification id → the report an admin.report is about
    cursor_ids: list[int]


class ConversationPage(msgspec.Struct, frozen=True):
    viewer_id: int
    items: list[Conversation]
    statuses: StatusPage  # their last statuses (deleted ones left out)
    accounts: dict[int, Account]  # the participants


class ScheduledPage(msgspec.Struct, frozen=True):
    items: list[ScheduledStatus]
    media: dict[int, list[Row]]  # scheduled status id → the attachments it will post, in order


class TagView(msgspec.Struct, frozen=True):
    name: str
    tag_id: int | None  # None for a hashtag nobody has used yet
    usage: list[tuple[str, int, int]]  # (UTC day, posts, distinct authors) for the last week's days of use
    following: bool | None  # None for nobody in particular


class AnnouncementPage(msgspec.Struct, frozen=True):
    viewer_id: int | None
    items: list[Announcement]
    read: set[int]  # announcement ids the viewer dismissed
    reactions: dict[int, list[tuple[str, int, bool]]]  # announcement id → (name, count, the viewer's own)
    mentions: dict[int, list[int]]  # announcement id → mentioned account ids
    accounts: dict[int, Account]  # the mentioned accounts
