"""Shared by the read scenarios (public and local timelines, account statuses, thread context): one
GET endpoint under the home timeline's load — 16 connections, a random user's token on every request,
and where the endpoint takes an id, a random one of a sample of ids — read as req/s against the
hello-world baseline of the same run.

The id samples come from the cached dataset file (read-only), not from the running server's database,
so they do not depend on the server's storage backend."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import Context, Result
from bench.dataset import Dataset

SAMPLE = 2_000  # distinct paths per endpoint (accounts, threads), each request picks one at random
CHECKED = 20  # responses validated through the API before the load


@dataclass(frozen=True)
class Endpoint:
    name: str  # the scenario's name
    label: str  # what the figures are called in the tables
    paths: Callable[[Path, random.Random], list[str]]  # request paths, from the dataset file
    check: Callable[[str, Any], int]  # validates one answer to a path; how many statuses it holds


def rendered(status: dict[str, Any]) -> bool:
    """A status as a client needs it: its account, its content, and the viewer's own flags."""
    shown = status.get("reblog") or status
    return bool(shown["account"]["username"]) and "content" in shown and "favourited" in status


def check_page(path: str, body: Any) -> int:
    """A timeline page: a list of fully rendered statuses, newest first."""
    if not isinstance(body, list) or not all(rendered(s) for s in body):
        raise RuntimeError(f"GET {path}: not a list of rendered statuses: {str(body)[:300]}")
    ids = [int(s["id"]) for s in body]
    if ids != sorted(ids, reverse=True):
        raise RuntimeError(f"GET {path}: statuses not newest first")
    return len(body)


def _sample(rows: list[Any], rng: random.Random) -> list[Any]:
    return rng.sample(rows, min(SAMPLE, len(rows)))


def _query(db_path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute(sql)]
    finally:
        conn.close()


def accounts_with_statuses(db_path: Path, rng: random.Random) -> list[int]:
    """Local accounts with at least a page (20) of statuses; the 200 most active if too few have."""
    found = _query(db_path, "SELECT id FROM accounts WHERE domain = '' AND statuses_count >= 20 ORDER BY id")
    if len(found) < 200:
        found = _query(db_path, "SELECT id FROM accounts WHERE domain = '' AND statuses_count > 0"
                                " ORDER BY statuses_count DESC, id LIMIT 200")
    return _sample(found, rng)


def thread_members(db_path: Path, rng: random.Random) -> list[int]:
    """Public and unlisted statuses (anyone may open them) of threads of three statuses or more."""
    found = _query(db_path, "SELECT s.id FROM statuses s JOIN (SELECT thread_id FROM statuses"
                            " WHERE reblog_of_id IS NULL GROUP BY thread_id HAVING count(*) >= 3) t"
                            " ON t.thread_id = s.thread_id WHERE s.reblog_of_id IS NULL"
                            " AND s.visibility IN ('public', 'unlisted') ORDER BY s.id")
    return _sample(found, rng)


async def measure(ctx: Context, endpoint: Endpoint) -> dict[str, Any]:
    res = Result()
    ds: Dataset = await ctx.dataset()
    rng = random.Random(11)
    paths = await asyncio.to_thread(endpoint.paths, ds.db_path, rng)
    if not paths:
        raise RuntimeError(f"{endpoint.name}: the dataset has nothing to request")
    work = ctx.work_root / endpoint.name
    work.mkdir(parents=True, exist_ok=True)
    paths_file = work / "paths.txt"
    paths_file.write_text("".join(p + "\n" for p in paths))
    tokens = ds.path / "tokens.txt"
    base = await ctx.baseline()

    async with ctx.crosstalk(ds) as server:
        held = []
        for i in range(CHECKED):
            path = paths[i % len(paths)]
            body = await ctx.get_json(server.url + path, ds.tokens[(i * 37) % len(ds.tokens)]["token"])
            held.append(endpoint.check(path, body))
        if not any(held):
            raise RuntimeError(f"{endpoint.name}: none of {len(held)} checked answers held a status")
        loaded, peak = await ctx.load(server, paths[0], tokens_file=tokens, paths_file=paths_file)
        rss_end = server.rss_mb()
    if loaded.requests == 0 or loaded.non_2xx or loaded.errors:
        raise RuntimeError(f"{endpoint.name}: {loaded.requests} answers, {loaded.non_2xx} not 2xx, "
                           f"{loaded.errors} socket errors")
    b = base["load"]
    ratio = 100 * loaded.rps / b["rps"]
    ctx.log(f"{endpoint.label}: {loaded.rps:,.0f} req/s = {ratio:.1f} % of hello world, p50 {loaded.p50_ms:.2f} ms, "
            f"{loaded.cpu_ms_per_request:.3f} CPU ms/request")

    res.add("baseline_rps", round(b["rps"]), "req/s", "baseline hello-world req/s")
    res.add("rps", round(loaded.rps), "req/s", f"{endpoint.label} req/s")
    res.add("p50_ms", round(loaded.p50_ms, 2), "ms", f"{endpoint.label} p50 ({loaded.connections} conns)")
    res.add("p99_ms", round(loaded.p99_ms, 2), "ms", f"{endpoint.label} p99 ({loaded.connections} conns)")
    res.add("vs_baseline_pct", round(ratio, 1), "%", f"{endpoint.label} req/s as % of baseline")
    if loaded.cpu_ms_per_request and b["cpu_ms_per_request"]:
        res.add("cpu_ms", loaded.cpu_ms_per_request, "ms", "server CPU per request")
        res.add("vs_baseline_cpu_pct", round(100 * b["cpu_ms_per_request"] / loaded.cpu_ms_per_request, 1), "%",
                "same ratio from server CPU per request")
    res.add("statuses_per_answer", round(sum(held) / len(held), 1), "", f"statuses per answer ({len(held)} checked)")
    res.add("paths", len(paths), "", "distinct paths, one picked at random per request")
    res.add("rss_peak_mb", round(peak, 1), "MB", "server RSS under load (peak)")
    res.add("rss_end_mb", round(rss_end, 1), "MB", "server RSS at the end")
    res.note(f"load: {loaded.tool}, {loaded.connections} connections, server pinned to CPU 0, load generator to CPU 1; "
             f"a random one of {len(ds.tokens):,} users' tokens per request")
    res.raw = {"baseline": base, "load": loaded.as_dict()}
    return res.as_dict()
