"""Operations endpoints: liveness, readiness and (unless it has its own port) Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from server.domain.addresses import Network, in_networks, parse_networks
from server.http.base import STATE, Handler, json_response, state_of
from server.services import health
from server.state import State

# Routes whose access lines are logged at debug level: probes and scrapes would drown the log.
QUIET_ROUTES = frozenset({"/livez", "/readyz", "/metrics"})


async def livez(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


def metrics_handler(state: State, networks: list[Network], behind_port: bool) -> Handler:
    """The /metrics handler. On the public port, a request that came through a reverse proxy
    (Forwarded / X-Forwarded-For) is refused even from an allowed address: the proxy's own
    address is usually local, and would otherwise expose metrics to the internet."""

    async def handler(request: web.Request) -> web.StreamResponse:
        proxied = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
        if not in_networks(request.remote, networks) or (proxied and not behind_port):
            return web.json_response({"error": "Metrics are not available from this address"}, status=403)
        try:
            body = await health.metrics_text(state)
        except TimeoutError:
            return web.json_response({"error": "Metrics probes timed out"}, status=503)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: the database answers, migrations are applied, every delivery worker runs,
    and we are not shutting down."""
    checks = await health.readiness(state_of(request))
    ok = all(v == "ok" for v in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                         status=200 if ok else 503, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    state = app[STATE]
    settings = state.settings
    if settings.metrics.enabled and settings.metrics.port == 0:
        networks = parse_networks(settings.metrics.allowed_addresses)
        app.router.add_get("/metrics", metrics_handler(state, networks, behind_port=False))


def metrics_app(state: State) -> web.Application:
    """The app for a separate metrics port (metrics.port): only /metrics, /livez and /readyz."""
    app = web.Application()
    app[STATE] = state
    networks = parse_networks(state.settings.metrics.allowed_addresses)
    app.router.add_get("/metrics", metrics_handler(state, networks, behind_port=True))
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app
