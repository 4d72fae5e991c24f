"""Prometheus metrics: the named instruments other modules update, and the `/metrics` exposition.

Other parts import the objects below and update them directly, for example
`INBOX_ACTIVITIES.labels("Create", "accepted").inc()` or
`DELIVERIES.labels("delivered", "peer").inc()`. Instruments only: values that live in the database (the
delivery queue depth) are refreshed just before each scrape by probes that services/health.py registers
on the State, and the `/metrics` endpoint is in http/ops.py.

Everything lives in one private registry, so importing this module twice in one process (tests,
several apps) never registers a metric twice.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

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
WORKERS_RUNNING = Gauge("crosstalk_workers_running", "Background jobs (queue workers and periodic jobs) alive in this process.",
                        registry=REGISTRY)
DB_QUERY_LATENCY = Histogram("crosstalk_db_query_duration_seconds", "Time spent in database calls: single reads, "
                             "and whole write transactions including the wait for the writer.", ["kind"],
                             buckets=_DB_BUCKETS, registry=REGISTRY)
JOB_RUNS = Counter("crosstalk_job_runs", "Runs of periodic background jobs, by job and outcome (ok, failed).",
                   ["job", "outcome"], registry=REGISTRY)
JOB_LAST_SUCCESS = Gauge("crosstalk_job_last_success_timestamp_seconds", "When each periodic job last ran "
                         "successfully in this process (Unix time).", ["job"], registry=REGISTRY)
EVENTS_DISPATCHED = Counter("crosstalk_events_dispatched", "Domain events handed to every subscriber, by outcome "
                            "(ok, failed).", ["outcome"], registry=REGISTRY)
EVENTS_PENDING = Gauge("crosstalk_events_pending", "Domain events recorded and not yet dispatched.",
                       registry=REGISTRY)
BUILD_INFO = Gauge("crosstalk_build_info", "Always 1; the labels carry the running version.",
                   ["version"], registry=REGISTRY)

# Pre-bound children: the database timing runs on every query, so skip the label lookup there.
DB_READ = DB_QUERY_LATENCY.labels("read")
DB_TRANSACTION = DB_QUERY_LATENCY.labels("transaction")

def exposition() -> bytes:
    """The text exposition of every instrument (probes, if any, have run: see services/health.py)."""
    return generate_latest(REGISTRY)


_REQUEST_CHILDREN_KEPT = 4096
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, started: float) -> float:
    """Count one answered request; returns its duration in seconds. The labelled children are kept per
    (method, route, status): looking them up by labels costs more than the counting itself."""
    duration = time.perf_counter() - started
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        if len(_request_children) >= _REQUEST_CHILDREN_KEPT:  # junk methods or statuses: start again
            _request_children.clear()
        children = _request_children[key] = (HTTP_REQUESTS.labels(method, route, str(status)),
                                              HTTP_LATENCY.labels(method, route))
    children[0].inc()
    children[1].observe(duration)
    return duration
