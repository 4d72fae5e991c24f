"""Health of the running instance: the readiness checks behind /readyz, and the metrics whose values
live elsewhere (the database's queues, the job runtime), refreshed just before each scrape."""

from __future__ import annotations

import asyncio
import logging

from server import metrics
from server.state import State
from server.storage import deliveries as delivery_store
from server.storage import events as event_store
from server.version import VERSION

log = logging.getLogger("crosstalk.metrics")

READY_TIMEOUT = 2.0
PROBE_TIMEOUT = 2.0


async def readiness(state: State) -> dict[str, str]:
    """Each check → "ok" or what is wrong."""
    checks: dict[str, str] = {}
    try:
        version = await asyncio.wait_for(state.db.schema_version(), READY_TIMEOUT)
        checks["database"] = "ok"
        latest = state.db.latest_version()
        checks["migrations"] = "ok" if version >= latest else f"schema at version {version}, expected {latest}"
    except Exception as exc:  # any failure to read means "not ready", never a 500
        checks["database"] = f"unreachable: {exc.__class__.__name__}: {exc}".strip()
        checks["migrations"] = "unknown"
    dead = state.jobs.dead()
    checks["workers"] = "ok" if not dead else "stopped: " + ", ".join(dead)
    problem = state.bus.problem()
    checks["bus"] = "ok" if problem is None else f"unavailable: {problem}"
    if state.draining or state.stopping.is_set():
        checks["shutdown"] = "in progress"
    return checks


def bind_metrics(state: State) -> None:
    """Point the gauges that read live objects at this instance's state, and register the probe that
    reads the queue depths before each scrape (so nothing polls the database between scrapes)."""
    metrics.BUILD_INFO.labels(VERSION).set(1)
    metrics.WORKERS_RUNNING.set_function(lambda: float(state.jobs.alive_count()))
    metrics.HTTP_IN_FLIGHT.set_function(lambda: float(state.in_flight))

    async def queue_depth() -> None:
        metrics.DELIVERY_QUEUE_DEPTH.set(await delivery_store.pending_count(state.db))
        metrics.EVENTS_PENDING.set(await event_store.pending_count(state.db))

    state.metric_probes.append(queue_depth)


async def metrics_text(state: State) -> bytes:
    """Run the registered probes (bounded in time), then produce the text exposition."""
    probes = list(state.metric_probes)
    if probes:
        results = await asyncio.wait_for(asyncio.gather(*(p() for p in probes), return_exceptions=True),
                                         PROBE_TIMEOUT)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("metrics probe failed: %s", result)
    return metrics.exposition()
