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
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

disable_created_metrics()  # the *_created series only double the output; nothing here reads them
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# Request latencies on a small instance sit between 1 ms and a few hundred; federation fetches longer.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

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


# -- what every request and every query observes -----------------------------------------------------
# prometheus_client takes a lock for each value it changes: a histogram's observation takes two (its
# sum and its bucket) and finds the bucket in a Python loop, 0.6 us; with the request's counter, a
# timeline request spent 3 us on them. These are observed on the event loop's thread alone, so plain
# counts do (0.1-0.2 us each), and the registry reads them through a collector when /metrics is
# scraped.

class Buckets:
    """One histogram series: counts per bucket (the last one unbounded) and the sum observed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bucket whose bound is >= value
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*(repr(b) for b in self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


def _merged(series: list[Buckets]) -> Buckets:
    merged = Buckets(series[0].bounds)
    for one in series:
        merged.counts = [a + b for a, b in zip(merged.counts, one.counts, strict=True)]
        merged.total += one.total
    return merged


_REQUEST_SERIES_KEPT = 4096  # (method, route, status) series; junk methods beyond this count as "other"
_requests: dict[tuple[str, str, int], Buckets] = {}
DB_READ = Buckets(_DB_BUCKETS)
DB_TRANSACTION = Buckets(_DB_BUCKETS)


class _LoopCollector:
    """The request counter and latency histogram, and the database timings, as the registry exposes them."""

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("crosstalk_http_requests", "HTTP requests answered, by route template and "
                                       "status.", labels=["method", "route", "status"])
        latency = HistogramMetricFamily("crosstalk_http_request_duration_seconds", "Time to answer an HTTP request.",
                                        labels=["method", "route"])
        by_route: dict[tuple[str, str], list[Buckets]] = {}
        for (method, route, status), series in list(_requests.items()):
            requests.add_metric([method, route, str(status)], sum(series.counts))
            by_route.setdefault((method, route), []).append(series)
        for (method, route), several in by_route.items():
            merged = _merged(several)
            latency.add_metric([method, route], merged.cumulative(), merged.total)
        database = HistogramMetricFamily("crosstalk_db_query_duration_seconds", "Time spent in database calls: "
                                         "single reads, and whole write transactions including the wait for the "
                                         "writer.", labels=["kind"])
        for kind, series in (("read", DB_READ), ("transaction", DB_TRANSACTION)):
            database.add_metric([kind], series.cumulative(), series.total)
        yield from (requests, latency, database)


REGISTRY.register(_LoopCollector())


def exposition() -> bytes:
    """The text exposition of every instrument (probes, if any, have run: see services/health.py)."""
    return generate_latest(REGISTRY)


def observe_request(method: str, route: str, status: int, started: float) -> float:
    """Count one answered request; returns its duration in seconds."""
    duration = time.perf_counter() - started
    key = (method, route, status)
    series = _requests.get(key)
    if series is None:
        if len(_requests) >= _REQUEST_SERIES_KEPT:
            key = ("other", route, status)
        series = _requests.setdefault(key, Buckets(_LATENCY_BUCKETS))
    series.observe(duration)
    return duration
