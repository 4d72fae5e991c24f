"""The scheduler: every `scheduler.interval` seconds it posts the scheduled statuses whose time has
come and tells voters and authors about polls that have ended. All of its work is in the database,
so nothing is lost across a restart: what fell due while the server was down happens on the first tick.
"""

from __future__ import annotations

import asyncio
import logging

from server.services import polls, scheduled
from server.state import State

log = logging.getLogger("crosstalk.scheduler")


async def tick(state: State) -> None:
    await scheduled.publish_due(state)
    await polls.notify_ended(state)


async def run(state: State) -> None:
    """Loop until shutdown (state.stopping); a failing tick is logged and retried on the next one."""
    interval = state.config["scheduler.interval"]
    while not state.stopping.is_set():
        try:
            await tick(state)
        except Exception:
            log.exception("scheduler tick failed")
        try:
            await asyncio.wait_for(state.stopping.wait(), interval)
        except TimeoutError:
            pass


def start(state: State) -> None:
    state.add_worker("scheduler", run(state))
