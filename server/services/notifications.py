"""Reading and dismissing an account's notifications (creating them is services/notify.py)."""

from __future__ import annotations

from server.domain.paging import Page
from server.domain.records import Account
from server.render.bundles import NotificationPage
from server.services import loaders
from server.services.errors import NotFound
from server.state import State
from server.storage import notifications as store
from server.storage import relations


async def page_for(state: State, viewer: Account, page: Page, *, types: list[str] | None,
                   exclude: list[str] | None, from_id: int | None) -> NotificationPage:
    """A page of notifications, without those from accounts muted with their notifications and those
    about statuses the viewer's `hide` filters remove from notifications."""
    hidden = await relations.notification_muted_ids(state.db, viewer.id)
    notes = await store.list_for(state.db, viewer.id, page, types, exclude, from_id, hidden)
    return await loaders.notification_page(state, viewer.id, notes)


async def one(state: State, viewer: Account, notification_id: int) -> NotificationPage:
    """A notification of the viewer's, ready to render; 404 when it is not theirs or cannot be shown."""
    note = await store.get(state.db, viewer.id, notification_id)
    if note is None:
        raise NotFound()
    return await loaders.notification_page(state, viewer.id, [note], drop_hidden=False)


async def clear(state: State, viewer: Account) -> None:
    async with state.db.transaction() as tx:
        await store.clear(tx, viewer.id)


async def dismiss(state: State, viewer: Account, notification_id: int | None) -> None:
    found = False
    if notification_id is not None:
        async with state.db.transaction() as tx:
            found = await store.dismiss(tx, viewer.id, notification_id)
    if not found:
        raise NotFound()
