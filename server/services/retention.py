"""How long records of finished work are kept: the boundary log (a setting), finished deliveries (a
week) and dispatched domain events (a day)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from server.ids import id_for_time, iso
from server.state import State
from server.storage import boundary as boundary_store
from server.storage import deliveries as delivery_store
from server.storage import events as event_store

DELIVERIES_KEPT_SECONDS = 7 * 24 * 3600
EVENTS_KEPT_SECONDS = 24 * 3600


async def prune_boundary_log(state: State) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=state.settings.boundary_log.retention_days)
    async with state.db.transaction() as tx:
        await boundary_store.prune_log(tx, iso(cutoff))


async def prune_deliveries(state: State) -> None:
    async with state.db.transaction() as tx:
        await delivery_store.prune_deliveries(tx, time.time() - DELIVERIES_KEPT_SECONDS)


async def prune_events(state: State) -> None:
    before = time.time() - EVENTS_KEPT_SECONDS
    async with state.db.transaction() as tx:
        await event_store.prune_dispatched(tx, before, id_for_time(before))
