"""Media clean-up: removes uploads no post took up within `media.unattached_ttl` seconds (a day by
default), and the files of posts deleted that long ago. Runs at start and then every ttl/4 (at most
hourly), so an upload outlives its ttl by at most that much.
"""

from __future__ import annotations

import asyncio
import logging

from server.services import media
from server.state import State

log = logging.getLogger("crosstalk.media")


def interval(state: State) -> float:
    return max(1.0, min(3600.0, state.config["media.unattached_ttl"] / 4))


async def run(state: State) -> None:
    """Loop until shutdown (state.stopping); a failing round is logged and retried on the next one."""
    while not state.stopping.is_set():
        try:
            await media.purge_expired(state)
        except Exception:
            log.exception("media clean-up failed")
        try:
            await asyncio.wait_for(state.stopping.wait(), interval(state))
        except TimeoutError:
            pass


def start(state: State) -> None:
    state.add_worker("media-cleanup", run(state))
