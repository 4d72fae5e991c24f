"""Run the benchmarks: `python -m bench [--small] [--only NAME[,NAME]] [--list] [--profile DIR]`.

Prints each scenario's figures, then the summary table (every figure of the performance issue with
its target and PASS/FAIL, bench/targets.py), and writes it all as JSON to
bench/results/results-<UTC time>.json and bench/results/latest.json. Datasets are cached in
bench/data/. Servers are pinned to CPU 0 and load generators to CPU 1 (taskset); every figure that
matters is a ratio against a baseline measured in the same run, because the machines are shared and
noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load as loads  # noqa: E402
from bench import procs  # noqa: E402
from bench import targets as judged  # noqa: E402
from bench.context import Context  # noqa: E402
from bench.scenarios import discover  # noqa: E402

BENCH = Path(__file__).resolve().parent


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def table(results: dict[str, Any]) -> str:
    """Each scenario's figures and notes."""
    lines = []
    for name, data in results["scenarios"].items():
        lines.append(f"\n== {name} ({data['seconds']} s) ==")
        if "error" in data:
            lines.append(f"  FAILED: {data['error']}")
            continue
        width = max((len(m["label"]) for m in data["metrics"]), default=10)
        for m in data["metrics"]:
            lines.append(f"  {m['label']:<{width}}  {judged.fmt(m['value']):>12} {m['unit']}")
        for note in data["notes"]:
            lines.append(f"  note: {note}")
    return "\n".join(lines)


def summary_notes(results: dict[str, Any]) -> list[str]:
    """What the summary's reader must know to read it: the kind of run, the load, the machine."""
    m = results["machine"]
    notes = []
    if results["mode"] == "small":
        notes.append("--small: a development run on a small dataset; the issue's figures are for the full one")
    if m["load_generator"] != "wrk":
        notes.append("the Python load generator saturates before the hello-world server does, so every ratio to "
                     "the baseline reads too high: install wrk (apt-get install -y wrk) for the real figures")
    if m["connections"] != 16:
        notes.append(f"--connections {m['connections']}: the issue's figures are at 16 connections")
    if m["cpus"] < 2:
        notes.append("one CPU: server and load generator shared it, and the two-core figure cannot be measured")
    notes.append(f"load average {' / '.join(f'{x:.2f}' for x in m['loadavg_at_start'])} at the start, "
                 f"{' / '.join(f'{x:.2f}' for x in m['loadavg_at_end'])} at the end (1/5/15 min): other work on "
                 "the machine lowers req/s and raises latency; the CPU-per-request figures move much less")
    stopped = [s for s in results.get("servers", []) if s["rss_at_stop_mb"]]
    if stopped:
        top = max(stopped, key=lambda s: s["rss_at_stop_mb"])
        notes.append(f"largest RSS of any server when it was stopped: {top['rss_at_stop_mb']} MB ({top['scenario']})")
    return notes


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = discover()
    wanted = [n.strip() for part in (args.only or []) for n in part.split(",") if n.strip()] or list(scenarios)
    unknown = [n for n in wanted if n not in scenarios]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(scenarios)}")
    if procs.cpus() < 2:
        _log("WARNING: fewer than 2 CPUs: server and load generator share a CPU")
    # Servers and clients inherit it: 10,000 streams need 10,000 descriptors on each side.
    fd_limit = procs.raise_open_files_limit(procs.WANTED_OPEN_FILES)
    tool = loads.choose_tool(args.loadgen)
    if tool != "wrk":
        _log("wrk not found: using the aiohttp load generator process (it saturates earlier than wrk; "
             "apt-get install -y wrk for better baseline figures)")
    ctx = Context(small=args.small, duration=args.duration or (5.0 if args.small else 10.0),
                  warmup=args.warmup if args.warmup is not None else (1.0 if args.small else 3.0),
                  connections=args.connections, tool=tool, data_root=BENCH / "data",
                  regenerate=args.regenerate, keep_work=args.keep_work, log=_log, profile_dir=args.profile,
                  profile_native=args.profile_native)
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "small" if args.small else "full",
        "machine": {"cpus": procs.cpus(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "load_generator": tool, "connections": ctx.connections, "duration_s": ctx.duration,
                    "warmup_s": ctx.warmup, "loadavg_at_start": os.getloadavg(), "open_files_limit": fd_limit,
                    "ephemeral_ports": procs.ephemeral_port_count()},
        "scenarios": {},
    }
    started = time.monotonic()
    try:
        for name in wanted:
            _log(f"scenario {name}: {getattr(scenarios[name], 'DESCRIPTION', '')}")
            t = time.monotonic()
            ctx.scenario = name
            try:
                data = await scenarios[name].run(ctx)
            except Exception as exc:  # one failing scenario must not hide the others' figures
                traceback.print_exc()
                data = {"error": f"{type(exc).__name__}: {exc}"}
            data["seconds"] = round(time.monotonic() - t, 1)
            results["scenarios"][name] = data
    finally:
        ctx.cleanup()
    results["datasets"] = ctx.used_datasets
    results["servers"] = ctx.servers
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["seconds"] = round(time.monotonic() - started, 1)
    results["summary"] = [row.as_dict() for row in judged.evaluate(results["scenarios"])]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true",
                        help="quick run: 1,100 users, 50 follows each, 20,000 statuses (default: 10,000 users, "
                             "200 follows, 1,000,000 statuses)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only these scenarios (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--duration", type=float, help="seconds of measured load per run (default 10; 5 with --small)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up load before each run (default 3; 1 small)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if installed (auto), or the aiohttp client process")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the datasets even if cached")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the per-run database copies in bench/data/work/run-PID")
    parser.add_argument("--output", type=Path, help="also write the JSON here (it always goes to "
                        "bench/results/results-<UTC time>.json and bench/results/latest.json)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample every Crosstalk server with py-spy into DIR/SCENARIO-N.txt (figures are then "
                             "a little lower); summarise with python -m bench.profile DIR/FILE")
    parser.add_argument("--profile-native", action="store_true",
                        help="with --profile: C frames too (SQLite, the JSON encoder, the event loop); the server "
                             "runs several times slower while sampled, so read shares, not figures")
    args = parser.parse_args(argv)
    if args.list:
        for name, module in discover().items():
            print(f"{name:<20} {getattr(module, 'DESCRIPTION', '')}")
        return 0
    results = asyncio.run(_main(args))
    print(table(results))
    rows = [judged.Row(**row) for row in results["summary"]]
    print(f"\n== summary ({results['mode']} run, {results['started_at']}) ==")
    print(judged.render(rows, summary_notes(results)))
    stamp = results["started_at"].replace("-", "").replace(":", "")
    written = [BENCH / "results" / f"results-{stamp}.json", BENCH / "results" / "latest.json"]
    for path in written + ([args.output] if args.output else []):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults written to {written[0]} ({results['seconds']} s)")
    if args.profile is not None:
        print(f"server profiles in {args.profile}: python -m bench.profile FILE [--within FUNCTION] summarises one")
    failed = any("error" in s for s in results["scenarios"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
