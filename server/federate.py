"""Wires federation into a running instance: the outgoing client, the instance actor, the
outbound hooks and the inbox and delivery workers."""

from __future__ import annotations

from aiohttp import web

from server.services.outbox import ActivityPubOutbound
from server.services.remote import Federation
from server.state import State
from server.workers.delivery import DeliveryWorker
from server.workers.inbox import InboxWorker


def install(app: web.Application, state: State) -> None:
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

    async def on_shutdown(app: web.Application) -> None:
        # Workers finish the attempt in hand; undelivered rows stay pending and resume at the next start.
        state.delivery_worker.request_stop()
        state.inbox_worker.request_stop()

    async def on_cleanup(app: web.Application) -> None:
        await state.delivery_worker.wait_idle(5.0)
        await state.federation.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
