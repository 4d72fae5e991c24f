"""Notifications: created inside the action's transaction, announced on the event bus after commit."""

from __future__ import annotations

from typing import Any

from server.events import Event
from server.records import Notification
from server.state import State
from server.storage import accounts, relations
from server.storage import notifications as store


async def create(state: State, tx: Any, recipient_id: int, from_id: int, type_: str,
                 status_id: int | None = None) -> Notification | None:
    """A notification for a local recipient, unless it is their own action or they silenced the sender."""
    if recipient_id == from_id:
        return None
    recipient = await accounts.get(tx, recipient_id)
    if recipient is None or not recipient.local:
        return None
    if from_id in await relations.notification_muted_ids(tx, recipient_id):
        return None
    return await store.insert(tx, recipient_id, from_id, type_, status_id)


def announce(state: State, notes: list[Notification | None]) -> None:
    for n in notes:
        if n is not None:
            state.bus.publish(Event(topic=f"user:{n.account_id}", name="notification", payload=n.id,
                                    account_id=n.account_id))
