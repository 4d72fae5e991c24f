"""Wires federation into a running instance: the outgoing client, the instance actor, the
outbound hooks and the inbox and delivery workers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from aiohttp import web

from server.ids import iso
from server.services.boundary import Boundary
from server.services.outbox import ActivityPubOutbound
from server.services.remote import Federation
from server.state import State
from server.storage import boundary as boundary_store
from server.storage import federation as fed_store
from server.workers.delivery import DeliveryWorker
from server.workers.inbox import InboxWorker


def install(app: web.Application, state: State) -> None:
    state.boundary = Boundary(state)
    state.federation = Federation(state)
    state.delivery_worker = DeliveryWorker(state)
    state.inbox_worker = InboxWorker(state)
    state.outbound = ActivityPubOutbound(state, wake=state.delivery_worker.wake)
    state.resolve_account = state.federation.resolve_account
    state.resolve_url = state.federation.resolve_url

    async def on_startup(app: web.Application) -> None:
        await state.federation.start()
        state.add_worker("delivery", state.delivery_worker.run())
        state.add_worker("inbox", state.inbox_worker.run())
        state.add_worker("federation maintenance", maintenance(state))

    async def on_shutdown(app: web.Application) -> None:
        # Workers finish the attempt in hand; undelivered rows stay pending and resume at the next start.
        state.delivery_worker.request_stop()
        state.inbox_worker.request_stop()

    async def on_cleanup(app: web.Application) -> None:
        await state.delivery_worker.wait_idle(5.0)
        await state.federation.close()
        await state.boundary.flush()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)


async def maintenance(state: State, every: float = 3600.0) -> None:
    """Hourly: drop boundary-log entries past their retention, and finished deliveries older than a week."""
    while not state.stopping.is_set():
        retention = state.config["boundary_log.retention_days"]
        async with state.db.transaction() as tx:
            await boundary_store.prune_log(tx, iso(datetime.now(UTC) - timedelta(days=retention)))
            await fed_store.prune_deliveries(tx, time.time() - 7 * 24 * 3600)
        try:
            await asyncio.wait_for(state.stopping.wait(), every)
        except TimeoutError:
            pass
