"""Operations endpoints: liveness, readiness and (unless it has its own port) Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server import metrics
from server.http.base import STATE, json_response, state_of
from server.state import State

READY_TIMEOUT = 2.0
# Routes whose access lines are logged at debug level: probes and scrapes would drown the log.
QUIET_ROUTES = frozenset({"/livez", "/readyz", "/metrics"})


async def livez(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


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
    dead = state.dead_workers()
    checks["workers"] = "ok" if not dead else "stopped: " + ", ".join(dead)
    if state.stopping.is_set():
        checks["shutdown"] = "in progress"
    return checks


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: the database answers, migrations are applied, every delivery worker runs,
    and we are not shutting down."""
    checks = await readiness(state_of(request))
    ok = all(v == "ok" for v in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                         status=200 if ok else 503, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    state = app[STATE]
    config = state.config
    if config["metrics.enabled"] and config["metrics.port"] == 0:
        networks = metrics.parse_networks(config["metrics.allowed_addresses"])
        app.router.add_get("/metrics", metrics.handler(state, networks, behind_port=False))


def metrics_app(state: State) -> web.Application:
    """The app for a separate metrics port (metrics.port): only /metrics, /livez and /readyz."""
    app = web.Application()
    app[STATE] = state
    networks = metrics.parse_networks(state.config["metrics.allowed_addresses"])
    app.router.add_get("/metrics", metrics.handler(state, networks, behind_port=True))
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app
