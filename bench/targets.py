"""The figures the benchmark is judged by, in one place: every row of the performance issue's table
(issue 12, on the full dataset) and the harness's own checks, each read from one metric of one
scenario and compared with its target. `evaluate` turns a run's results into summary rows with
PASS/FAIL; `render` prints them as the table that ends every run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Op = Literal[">=", "<="]
ISSUE = "#12"  # the performance issue's table
STRETCH = "#12 stretch"  # a further goal the issue names, reported but not required
SCALE = "#11"  # the scale-out issue's benchmark targets
BENCH = "bench"  # the harness's own checks: correctness of what was measured, earlier targets


@dataclass(frozen=True)
class Target:
    figure: str
    scenario: str
    metric: str  # the key of the scenario's metric (bench.context.Result.add)
    op: Op
    limit: float
    unit: str
    source: str = ISSUE


CONNS = "16 connections, random users' tokens"
TARGETS: tuple[Target, ...] = (
    Target(f"home timeline req/s / hello world ({CONNS}, 20 statuses)", "home_timeline",
           "home_vs_baseline_pct", ">=", 20, "%"),
    Target("home timeline req/s / hello world, the path to 35 %", "home_timeline",
           "home_vs_baseline_pct", ">=", 35, "%", STRETCH),
    Target("home timeline p50 at 16 connections", "home_timeline", "home_p50_ms", "<=", 5, "ms"),
    Target(f"public timeline req/s / hello world ({CONNS})", "public_timeline", "vs_baseline_pct", ">=", 15, "%"),
    Target(f"local timeline req/s / hello world ({CONNS})", "local_timeline", "vs_baseline_pct", ">=", 15, "%"),
    Target(f"account statuses req/s / hello world ({CONNS})", "account_statuses", "vs_baseline_pct", ">=", 15,
           "%"),
    Target(f"thread context req/s / hello world ({CONNS})", "thread_context", "vs_baseline_pct", ">=", 15, "%"),
    Target("POST /api/v1/statuses p50, back to back, author with 1,000 local followers", "post_status",
           "post_p50_ms", "<=", 8, "ms"),
    Target("POST /api/v1/statuses p99, back to back, author with 1,000 local followers", "post_status",
           "post_p99_ms", "<=", 30, "ms"),
    Target("inbox: signed Create(Note) accepted", "inbox", "accept_rate", ">=", 3000, "/s"),
    Target("inbox: notes stored (applied)", "inbox", "process_rate", ">=", 1500, "/s"),
    Target("delivery / raw RSA-2048 sign rate of one core (server on one core)", "delivery", "rate_vs_sign_pct",
           ">=", 80, "%"),
    Target("delivery / raw RSA-2048 sign rate of one core (server allowed both cores)", "delivery",
           "two_cores_vs_sign_pct", ">=", 150, "%"),
    Target("idle RSS after start", "home_timeline", "rss_idle_mb", "<=", 60, "MB"),
    Target("RSS after the full bench (caches at their default sizes)", "memory", "rss_end_mb", "<=", 150, "MB"),
    Target("1,000 WebSocket streams: POST -> update p99", "streaming", "latency_send_p99_ms", "<=", 150, "ms"),
    Target("idle WebSocket streams held", "streaming_idle", "streams_held", ">=", 10_000, ""),
    Target("RSS with 10,000 idle streams held", "streaming_idle", "rss_held_mb", "<=", 300, "MB"),
    # The scale-out issue: processes add throughput on the two cores of these machines.
    Target("home timeline, two web processes / one (PostgreSQL on the same cores)", "scale_out",
           "two_over_one_processes", ">=", 1.7, "x", SCALE),
    Target("home timeline, two web processes / one (shared SQLite file)", "scale_out",
           "sqlite_two_over_one_processes", ">=", 1.7, "x", SCALE),
    Target("delivery, two worker processes / one", "delivery_workers", "two_over_one_workers", ">=", 1.7, "x", SCALE),
    # The harness's own checks: what was measured was real work, done completely.
    Target("home p50 at the large dataset / at the small one", "home_timeline", "p50_large_over_small", "<=", 1.3,
           "x", BENCH),
    Target("POST fan-out reached every follower's home feed", "post_status", "fanout_complete_pct", ">=", 100, "%",
           BENCH),
    Target("search p50, one request at a time", "search", "search_p50_ms", "<=", 20, "ms", BENCH),
    Target("slowest GET an app makes, p50 one at a time (no whole-table reads)", "endpoints", "slowest_p50_ms",
           "<=", 50, "ms", BENCH),
    Target("1,000 streams: every client got every update", "streaming", "delivered_pct", ">=", 100, "%", BENCH),
    Target("10,000 idle streams: every follower's stream got the post after the hold", "streaming_idle",
           "post_delivered_pct", ">=", 100, "%", BENCH),
    Target("inbox: every accepted note stored", "inbox", "stored_pct", ">=", 100, "%", BENCH),
    Target("delivery: activities sent twice to the same inbox", "delivery", "duplicates", "<=", 0, "", BENCH),
    Target("inbox: activities that failed to apply", "inbox", "errors", "<=", 0, "", BENCH),
)

PASS, FAIL = "PASS", "FAIL"
NOT_RUN = "not run"  # the scenario was not selected (--only)
ERROR = "ERROR"  # the scenario raised: see its section
MISSING = "n/a"  # the scenario ran but could not measure this figure (its notes say why)


def passes(value: float, op: Op, limit: float) -> bool:
    return value >= limit if op == ">=" else value <= limit


@dataclass(frozen=True)
class Row:
    figure: str
    value: float | None
    unit: str
    target: str  # e.g. ">= 20 %"
    status: str  # PASS, FAIL, or why there is no value
    source: str
    scenario: str
    metric: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: object) -> str:
    """A figure as the tables print it: thousands separated, two decimals below 100."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def target_text(t: Target) -> str:
    return f"{t.op} {fmt(t.limit)} {t.unit}".rstrip()


def _metric(scenario: dict[str, Any], key: str) -> float | None:
    for m in scenario.get("metrics", []):
        if m["key"] == key:
            value = m["value"]
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return None


def evaluate(scenarios: dict[str, dict[str, Any]], targets: tuple[Target, ...] = TARGETS) -> list[Row]:
    """One row per target, from the scenarios' results (name → Result.as_dict(), or {"error": ...})."""
    rows = []
    for t in targets:
        data = scenarios.get(t.scenario)
        value = None
        if data is None:
            status = NOT_RUN
        elif "error" in data:
            status = ERROR
        elif (value := _metric(data, t.metric)) is None:
            status = MISSING
        else:
            status = PASS if passes(value, t.op, t.limit) else FAIL
        rows.append(Row(t.figure, value, t.unit, target_text(t), status, t.source, t.scenario, t.metric))
    return rows


def render(rows: list[Row], notes: Sequence[str] = ()) -> str:
    """The summary table: figure, value, target, PASS/FAIL; issue rows first, then the harness's."""
    def value_text(r: Row) -> str:
        return "-" if r.value is None else f"{fmt(r.value)} {r.unit}".rstrip()

    fw = max(len(r.figure) for r in rows)
    vw = max(12, *(len(value_text(r)) for r in rows))
    tw = max(8, *(len(r.target) for r in rows))
    lines = [f"{'figure':<{fw}}  {'value':>{vw}}  {'target':<{tw}}  result   source",
             f"{'-' * fw}  {'-' * vw}  {'-' * tw}  -------  ------"]
    for r in sorted(rows, key=lambda r: r.source == BENCH):
        lines.append(f"{r.figure:<{fw}}  {value_text(r):>{vw}}  {r.target:<{tw}}  {r.status:<7}  {r.source}")
    counts = {s: sum(1 for r in rows if r.source == ISSUE and r.status == s) for s in (PASS, FAIL)}
    others = sum(1 for r in rows if r.source == ISSUE) - counts[PASS] - counts[FAIL]
    lines.append(f"\n{ISSUE} rows: {counts[PASS]} PASS, {counts[FAIL]} FAIL, {others} without a value")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
