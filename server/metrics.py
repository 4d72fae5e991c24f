"""Prometheus metrics: the named instruments other modules update, and the `/metrics` exposition.

Other parts import the objects below and update them directly, for example
`INBOX_ACTIVITIES.labels("Create", "accepted").inc()` or
`DELIVERIES.labels("delivered", "peer").inc()`. Values that live in the database (the delivery queue
depth) are refreshed just before each scrape by async probes registered on the State
(`state.metric_probes.append(async_fn)`), so nothing polls the database between scrapes.

Everything lives in one private registry, so importing this module twice in one process (tests,
several apps) never registers a metric twice.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from server.state import State

log = logging.getLogger("crosstalk.metrics")

disable_created_metrics()  # the *_created series only double the output; nothing here reads them
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# Request latencies on a small instance sit between 1 ms and a few hundred; federation fetches longer.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

HTTP_REQUESTS = Counter("crosstalk_http_requests", "HTTP requests answered, by route template and status.",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram("crosstalk_http_request_duration_seconds", "Time to answer an HTTP request.",
                         ["method", "route"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
HTTP_IN_FLIGHT = Gauge("crosstalk_http_requests_in_flight", "HTTP requests being handled right now.",
                       registry=REGISTRY)
INBOX_ACTIVITIES = Counter("crosstalk_inbox_activities", "Activities received in inboxes, by type and outcome "
                           "(accepted, duplicate, rejected, failed).", ["type", "outcome"], registry=REGISTRY)
DELIVERIES = Counter("crosstalk_deliveries", "Delivery attempts to remote inboxes, by outcome "
                     "(delivered, retry, failed, gave_up) and class of host.", ["outcome", "host_class"],
                     registry=REGISTRY)
DELIVERY_QUEUE_DEPTH = Gauge("crosstalk_delivery_queue_depth", "Deliveries waiting to be attempted.",
                             registry=REGISTRY)
SIGNATURE_FAILURES = Counter("crosstalk_signature_failures", "Incoming HTTP signatures that failed to verify, "
                             "by reason.", ["reason"], registry=REGISTRY)
STREAMING_CONNECTIONS = Gauge("crosstalk_streaming_connections", "Open streaming API connections.",
                              registry=REGISTRY)
WORKERS_RUNNING = Gauge("crosstalk_workers_running", "Background workers (delivery, inbox) that are alive.",
                        registry=REGISTRY)
DB_QUERY_LATENCY = Histogram("crosstalk_db_query_duration_seconds", "Time spent in database calls: single reads, "
                             "and whole write transactions including the wait for the writer.", ["kind"],
                             buckets=_DB_BUCKETS, registry=REGISTRY)
BUILD_INFO = Gauge("crosstalk_build_info", "Always 1; the labels carry the running version.",
                   ["version"], registry=REGISTRY)

# Pre-bound children: the database timing runs on every query, so skip the label lookup there.
DB_READ = DB_QUERY_LATENCY.labels("read")
DB_TRANSACTION = DB_QUERY_LATENCY.labels("transaction")

PROBE_TIMEOUT = 2.0


def bind(state: State) -> None:
    """Point the gauges that read live objects at this instance's state."""
    from server.version import VERSION
    BUILD_INFO.labels(VERSION).set(1)
    STREAMING_CONNECTIONS.set_function(lambda: float(state.bus.connection_count()))
    WORKERS_RUNNING.set_function(lambda: float(sum(1 for t in state.workers.values() if not t.done())))
    from server.storage import federation as federation_store

    async def queue_depth() -> None:
        DELIVERY_QUEUE_DEPTH.set(await federation_store.pending_count(state.db))

    state.metric_probes.append(queue_depth)


async def render(state: State) -> bytes:
    """Run the registered probes (bounded in time), then produce the text exposition."""
    probes = list(state.metric_probes)
    if probes:
        results = await asyncio.wait_for(asyncio.gather(*(p() for p in probes), return_exceptions=True),
                                         PROBE_TIMEOUT)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("metrics probe failed: %s", result)
    return generate_latest(REGISTRY)


def parse_networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def address_allowed(remote: str | None, networks: list[Any]) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


def handler(state: State, networks: list[Any], behind_port: bool) -> Any:
    """The /metrics handler. On the public port, a request that came through a reverse proxy
    (Forwarded / X-Forwarded-For) is refused even from an allowed address: the proxy's own
    address is usually local, and would otherwise expose metrics to the internet."""

    async def metrics(request: web.Request) -> web.StreamResponse:
        proxied = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
        if not address_allowed(request.remote, networks) or (proxied and not behind_port):
            return web.json_response({"error": "Metrics are not available from this address"}, status=403)
        try:
            body = await render(state)
        except TimeoutError:
            return web.json_response({"error": "Metrics probes timed out"}, status=503)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def observe_request(method: str, route: str, status: int, started: float) -> float:
    """Count one answered request; returns its duration in seconds."""
    duration = time.perf_counter() - started
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(duration)
    return duration
