"""Markers: where a user stopped reading their home timeline and notifications."""

from __future__ import annotations

from typing import Any

from server.domain.records import Account, Marker
from server.ids import parse_id
from server.services.errors import Unprocessable
from server.state import State
from server.storage import markers as store

TIMELINES = ("home", "notifications")


async def get(state: State, account: Account, timelines: list[str]) -> list[Marker]:
    wanted = [t for t in dict.fromkeys(timelines) if t in TIMELINES]
    return await store.get(state.db, account.id, wanted)


async def save(state: State, account: Account, positions: dict[str, Any]) -> list[Marker]:
    """positions: timeline → last read id (a status id for home, a notification id for notifications)."""
    parsed = {}
    for timeline, value in positions.items():
        if timeline not in TIMELINES:
            continue
        last_read_id = None if value is None or isinstance(value, bool) else parse_id(str(value))
        if last_read_id is None:
            raise Unprocessable(f"{timeline}[last_read_id] must be an id")
        parsed[timeline] = last_read_id
    if not parsed:
        raise Unprocessable("Give home[last_read_id] or notifications[last_read_id]")
    async with state.db.transaction() as tx:
        for timeline, last_read_id in parsed.items():
            await store.save(tx, account.id, timeline, last_read_id)
    return await store.get(state.db, account.id, list(parsed))
