"""The summary table: every row of the performance issue's table is judged, each against the right
scenario's metric, with PASS/FAIL and the reasons a row can have no value."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from bench import targets
from bench.run import summary_notes
from bench.scenarios import discover
from bench.targets import BENCH, ISSUE, STRETCH, Row, Target, evaluate, render

# Issue 12's table, row by row: (scenario, metric) → (op, limit).
ISSUE_TABLE = {
    ("home_timeline", "home_vs_baseline_pct"): (">=", 20),
    ("home_timeline", "home_p50_ms"): ("<=", 5),
    ("public_timeline", "vs_baseline_pct"): (">=", 15),
    ("local_timeline", "vs_baseline_pct"): (">=", 15),
    ("account_statuses", "vs_baseline_pct"): (">=", 15),
    ("thread_context", "vs_baseline_pct"): (">=", 15),
    ("post_status", "post_p50_ms"): ("<=", 8),
    ("post_status", "post_p99_ms"): ("<=", 30),
    ("inbox", "accept_rate"): (">=", 3000),
    ("inbox", "process_rate"): (">=", 1500),
    ("delivery", "rate_vs_sign_pct"): (">=", 80),
    ("delivery", "two_cores_vs_sign_pct"): (">=", 150),
    ("home_timeline", "rss_idle_mb"): ("<=", 60),
    ("memory", "rss_end_mb"): ("<=", 150),
    ("streaming", "latency_send_p99_ms"): ("<=", 150),
    ("streaming_idle", "streams_held"): (">=", 10_000),
    ("streaming_idle", "rss_held_mb"): ("<=", 300),
}


def metrics(**values: object) -> dict[str, object]:
    return {"metrics": [{"key": k, "label": k, "value": v, "unit": ""} for k, v in values.items()], "notes": []}


def test_every_row_of_the_issue_table_is_judged_once() -> None:
    issue_rows = {(t.scenario, t.metric): (t.op, t.limit) for t in targets.TARGETS if t.source == ISSUE}
    assert issue_rows == ISSUE_TABLE
    assert len([t for t in targets.TARGETS if t.source == ISSUE]) == len(ISSUE_TABLE)
    stretch = [t for t in targets.TARGETS if t.source == STRETCH]
    assert [(t.metric, t.op, t.limit) for t in stretch] == [("home_vs_baseline_pct", ">=", 35)]


def test_every_target_reads_a_metric_its_scenario_reports() -> None:
    """A renamed metric key would leave its row without a value forever: the key must be one the
    scenario (or a shared helper it uses) passes to Result.add."""
    scenarios = discover()
    helpers = "".join(p.read_text() for p in Path(inspect.getfile(discover)).parent.glob("_*.py"))
    for t in targets.TARGETS:
        assert t.scenario in scenarios, t
        source = inspect.getsource(scenarios[t.scenario]) + helpers
        assert f'res.add("{t.metric}"' in source, t


@pytest.mark.parametrize(("op", "value", "expected"), [
    (">=", 20.0, "PASS"), (">=", 19.99, "FAIL"), (">=", 35, "PASS"),
    ("<=", 5.0, "PASS"), ("<=", 5.01, "FAIL"), ("<=", 0, "PASS"),
])
def test_pass_and_fail_at_the_limit(op: targets.Op, value: float, expected: str) -> None:
    limit = 20 if op == ">=" else 5
    t = Target("figure", "s", "m", op, limit, "%")
    [row] = evaluate({"s": metrics(m=value)}, (t,))
    assert row.status == expected and row.value == value and row.target == f"{op} {limit} %"


def test_rows_without_a_value_say_why() -> None:
    ts = (Target("not selected", "absent", "m", ">=", 1, ""),
          Target("raised", "broken", "m", ">=", 1, ""),
          Target("not measured", "partial", "missing", ">=", 1, ""),
          Target("not a number", "partial", "text", ">=", 1, ""),
          Target("measured", "partial", "there", ">=", 1, ""))
    rows = evaluate({"broken": {"error": "RuntimeError: boom"},
                     "partial": metrics(text="n/a", there=2, other=0)}, ts)
    assert [r.status for r in rows] == [targets.NOT_RUN, targets.ERROR, targets.MISSING, targets.MISSING, "PASS"]
    assert [r.value for r in rows] == [None, None, None, None, 2.0]


def test_summary_table_lists_every_figure_issue_rows_first() -> None:
    scenarios = {"home_timeline": metrics(home_vs_baseline_pct=3.7, home_p50_ms=17.61, rss_idle_mb=71.6,
                                          p50_large_over_small=0.87),
                 "inbox": {"error": "RuntimeError: x"}}
    rows = evaluate(scenarios)
    text = render(rows, ["a note for the reader"])
    lines = text.splitlines()
    for t in targets.TARGETS:
        assert sum(1 for line in lines if line.startswith(t.figure + " ")) >= 1, t.figure
    home = next(line for line in lines if line.startswith(targets.TARGETS[0].figure))
    assert "3.70 %" in home and ">= 20 %" in home and "FAIL" in home
    assert "PASS" in next(line for line in lines if line.startswith("home p50 at the large dataset"))
    sources = [line.rsplit(None, 1)[-1] for line in lines[2:2 + len(rows)]]
    assert sources == sorted(sources, key=lambda s: s == BENCH) and sources[0] == ISSUE and sources[-1] == BENCH
    assert "#12 rows: 0 PASS, 3 FAIL, 14 without a value" in text
    assert text.endswith("note: a note for the reader")


def test_rows_survive_the_json_file() -> None:
    rows = evaluate({"post_status": metrics(post_p50_ms=7.5, post_p99_ms=31)})
    again = [Row(**r) for r in json.loads(json.dumps([r.as_dict() for r in rows]))]
    assert again == rows
    p50 = next(r for r in again if r.metric == "post_p50_ms")
    p99 = next(r for r in again if r.metric == "post_p99_ms")
    assert (p50.status, p99.status) == ("PASS", "FAIL")


def test_summary_notes_warn_about_what_skews_the_figures() -> None:
    results = {"mode": "small", "servers": [{"scenario": "memory", "cpus": 0, "rss_at_stop_mb": 112.0},
                                            {"scenario": "inbox", "cpus": 0, "rss_at_stop_mb": 80.5}],
               "machine": {"load_generator": "python", "connections": 8, "cpus": 2,
                           "loadavg_at_start": (1.0, 0.5, 0.25), "loadavg_at_end": (2.0, 1.0, 0.5)}}
    text = "\n".join(summary_notes(results))
    assert "--small" in text and "wrk" in text and "--connections 8" in text
    assert "1.00 / 0.50 / 0.25" in text and "112.0 MB (memory)" in text
    results["mode"], results["machine"]["load_generator"], results["machine"]["connections"] = "full", "wrk", 16
    text = "\n".join(summary_notes(results))
    assert "--small" not in text and "wrk" not in text and "--connections" not in text
