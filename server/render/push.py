"""Web Push entities: the subscription as the API shows it, and the payload each push carries (the
fields Mastodon's pushes have, which apps decode: access_token, preferred_locale, notification_id,
notification_type, icon, title, body)."""

from __future__ import annotations

from typing import Any

import msgspec

from federation.html import html_to_text
from server.domain.records import Account, Notification, Status

ALERTS = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
          "admin.sign_up", "admin.report")
POLICIES = ("all", "followed", "follower", "none")
BODY_LENGTH = 140  # Mastodon's: longer texts end in "..." within the 140 characters
TITLES = {
    "mention": "{name} mentioned you",
    "status": "New post from {name}",
    "reblog": "{name} boosted your post",
    "follow": "{name} followed you",
    "follow_request": "{name} asked to follow you",
    "favourite": "{name} favourited your post",
    "poll": "A poll by {name} has ended",
    "update": "{name} edited a post",
    "admin.sign_up": "{name} signed up",
    "admin.report": "{name} filed a report",
}


def subscription_json(subscription_id: int, endpoint: str, standard: bool, alerts: dict[str, bool],
                      policy: str, server_key: str) -> dict[str, Any]:
    return {
        "id": str(subscription_id),
        "endpoint": endpoint,
        "standard": standard,
        "alerts": {name: bool(alerts.get(name, False)) for name in ALERTS},
        "policy": policy,
        "server_key": server_key,
    }


def truncate(text: str, length: int = BODY_LENGTH) -> str:
    return text if len(text) <= length else text[:length - 3] + "..."


def _status_text(status: Status) -> str:
    if status.spoiler_text:
        return status.spoiler_text
    if status.local and status.source_text:
        return status.source_text
    return html_to_text(status.content)


def body_text(status: Status | None, sender: Account) -> str:
    """What the notification is about: the post (its content warning if it has one) or, without a
    post, the sender's bio; plain text, at most 140 characters."""
    text = _status_text(status) if status is not None else html_to_text(sender.note)
    return truncate(" ".join(text.split()))


def payload(notification: Notification, sender: Account, status: Status | None, access_token: str,
            locale: str, icon: str) -> dict[str, Any]:
    name = sender.display_name.strip() or sender.username
    return {
        "access_token": access_token,
        "preferred_locale": locale or "en",
        "notification_id": notification.id,
        "notification_type": notification.type,
        "icon": icon,
        "title": TITLES.get(notification.type, "{name}").format(name=name),
        "body": body_text(status, sender),
    }


def encode_within(document: dict[str, Any], limit: int) -> bytes:
    """The payload as JSON, made to fit one push record: a long icon URL goes first, then the title
    is shortened (the body is already short)."""
    encoded = msgspec.json.encode(document)
    if len(encoded) <= limit:
        return encoded
    document = {**document, "icon": ""}
    encoded = msgspec.json.encode(document)
    while len(encoded) > limit and len(document["title"]) > 10:
        document["title"] = truncate(document["title"], max(10, len(document["title"]) // 2))
        encoded = msgspec.json.encode(document)
    return encoded
