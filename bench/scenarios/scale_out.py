"""Scale-out figures, all in one run on the same dataset: the dataset's SQLite database is moved into
a fresh PostgreSQL database with `migrate-to-postgres` (its time is a figure too), then

- home timeline req/s and POST /api/v1/statuses latency on PostgreSQL against SQLite (ratios);
- home timeline req/s with two `serve` processes on PostgreSQL (sharing a Redis bus) against one,
  under the same two load generators (ratio; the issue's target is 1.7x on two cores).

Needs PostgreSQL (CROSSTALK_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres,
a server it may create and drop a database on) and Redis (CROSSTALK_BENCH_REDIS_URL, default
redis://127.0.0.1:6379/0)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import load as loads
from bench import procs
from bench.context import CROSSTALK_PORT, LOAD_CPU, SERVER_CPU, Context, Result
from bench.dataset import Dataset

NAME = "scale_out"
DESCRIPTION = "PostgreSQL vs SQLite (home timeline, POST), two web processes vs one, migrate-to-postgres time"
HOME = "/api/v1/timelines/home"
POSTGRES = os.environ.get("CROSSTALK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("CROSSTALK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin(sql: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(POSTGRES, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _posts(ctx: Context, server: procs.Server, ds: Dataset, count: int) -> loads.LoadResult:
    work = ctx.work_root / "scale_out"
    tokens = work / "author-token.txt"
    tokens.write_text(ds.author["token"] + "\n")
    bodies = work / "bodies.jsonl"
    bodies.write_text("".join(f'{{"status": "Scale-out benchmark post {i} #weekly", "visibility": "public"}}\n'
                              for i in range(count)))
    for i in range(3):
        await ctx.post_json(server.url + "/api/v1/statuses", {"status": f"warm-up {i}"}, ds.author["token"])
    result = await loads.sequential(server.url + "/api/v1/statuses", tokens_file=tokens, bodies_file=bodies,
                                    count=count, max_seconds=120, cpu=LOAD_CPU, pause_ms=100.0)
    ctx.check(result, "POST /api/v1/statuses")
    return result


@dataclass
class SplitRun:
    rps: float
    failed: int
    servers_cpu_ms: float  # the web processes' CPU per request
    loadgen_cpu_ms: float  # the load generators' (wrk's) CPU per request
    postgres_cpu_ms: float  # PostgreSQL's processes' CPU per request (0 on SQLite)


async def _split_load(ctx: Context, urls: list[str], tokens: Any, servers: list[procs.Server]) -> SplitRun:
    """Two closed-loop generators at once (half the connections each), one per URL of `urls` (the
    same URL twice for one process): total req/s, failed requests, and where the two cores went."""
    half = max(1, ctx.connections // 2)
    await asyncio.gather(*(loads.http_load(ctx.tool, u + HOME, tokens_file=tokens, connections=half,
                                           duration=ctx.warmup or 1.0, max_requests=5_000_000, cpu=LOAD_CPU)
                           for u in urls))
    servers_cpu, loadgen_cpu = sum(s.cpu_seconds() for s in servers), procs.children_cpu_seconds()
    postgres_cpu = procs.named_cpu_seconds("postgres")
    results = await asyncio.gather(*(loads.http_load(ctx.tool, u + HOME, tokens_file=tokens, connections=half,
                                                     duration=ctx.duration, max_requests=5_000_000, cpu=LOAD_CPU)
                                     for u in urls))
    requests = max(1, sum(r.requests for r in results))

    def per_request(seconds: float) -> float:
        return round(seconds * 1000 / requests, 3)
    return SplitRun(rps=sum(r.rps for r in results), failed=sum(r.non_2xx + r.errors for r in results),
                    servers_cpu_ms=per_request(sum(s.cpu_seconds() for s in servers) - servers_cpu),
                    loadgen_cpu_ms=per_request(procs.children_cpu_seconds() - loadgen_cpu),
                    postgres_cpu_ms=per_request(procs.named_cpu_seconds("postgres") - postgres_cpu))


async def _one_and_two(ctx: Context, ds: Dataset, data_dir: Any, env: dict[str, str], tokens: Any
                       ) -> tuple[SplitRun, SplitRun]:
    """Home timeline req/s of one `serve` process on CPU 0, then of two (the second on CPU 1), under
    the same two load generators, then of the first alone again: the one-process figure is the better
    of the runs before and after, so that a slow first run (a checkpoint after the POSTs, a cold
    cache) cannot make the ratio look better than it is."""
    async with ctx.crosstalk(ds, data_dir=data_dir, env=env, cpu=SERVER_CPU) as first:
        before = await _split_load(ctx, [first.url, first.url], tokens, [first])
        port = procs.free_port()
        second = await procs.start(
            "crosstalk-2", procs.crosstalk_cmd(), port=port,
            env={**procs.crosstalk_env(data_dir, ds.spec.domain, port), **env}, cpu=LOAD_CPU,
            log_path=ctx.work_root / "crosstalk-2.log", ready_path="/api/v1/instance")
        try:
            two = await _split_load(ctx, [first.url, second.url], tokens, [first, second])
        finally:
            procs.stop(second)
        after = await _split_load(ctx, [first.url, first.url], tokens, [first])
    ctx.log(f"scale_out: one process {before.rps:,.0f} req/s before the two-process run, {after.rps:,.0f} after")
    return max(before, after, key=lambda run: run.rps), two


async def run(ctx: Context) -> dict[str, Any]:
    from server.storage.db import Database
    from server.storage.transfer import migrate_to_postgres
    res = Result()
    ds = await ctx.dataset()
    tokens = ds.path / "tokens.txt"
    data_dir = ctx.private_copy(ds, "scale_out")
    name = f"crosstalk_bench_{os.getpid()}"
    url = urlunsplit(urlsplit(POSTGRES)._replace(path="/" + name))
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        source = Database(data_dir / "crosstalk.sqlite3")  # the dataset's schema brought up to date first
        await source.open()
        await source.close()
        started = time.monotonic()
        report = await migrate_to_postgres(data_dir / "crosstalk.sqlite3", url, lambda *_: None, allow_running=True)
        moved_s = time.monotonic() - started
        ctx.log(f"scale_out: migrate-to-postgres copied {report.rows:,} rows in {moved_s:.1f} s")
        count = 30 if ctx.small else 100
        figures: dict[str, dict[str, Any]] = {}
        for engine, env in (("sqlite", {}), ("postgres", {"CROSSTALK_DATABASE_URL": url})):
            async with ctx.crosstalk(ds, data_dir=data_dir, env=env) as server:
                home, _ = await ctx.load(server, HOME, tokens_file=tokens)
                ctx.check(home, f"home timeline on {engine}")
                posts = await _posts(ctx, server, ds, count)
            figures[engine] = {"home": home, "posts": posts}
            ctx.log(f"scale_out {engine}: home {home.rps:,.0f} req/s ({home.cpu_ms_per_request:.2f} ms CPU/request), "
                    f"POST p50 {posts.p50_ms:.1f} ms")

        # One process against two, under the same two load generators, with a Redis bus: on PostgreSQL,
        # then on the SQLite file shared by both processes (no database server on the two cores).
        processes: dict[str, tuple[SplitRun, SplitRun]] = {}
        for engine, env in (("postgres", {"CROSSTALK_DATABASE_URL": url, "CROSSTALK_BUS_URL": REDIS}),
                            ("sqlite", {"CROSSTALK_BUS_URL": REDIS})):
            processes[engine] = one, two = await _one_and_two(ctx, ds, data_dir, env, tokens)
            ctx.log(f"scale_out: home on {engine}, one process {one.rps:,.0f} req/s, two {two.rps:,.0f} req/s; "
                    f"CPU per request with two: web {two.servers_cpu_ms} ms, load {two.loadgen_cpu_ms} ms, "
                    f"PostgreSQL {two.postgres_cpu_ms} ms")
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    s, p = figures["sqlite"], figures["postgres"]
    res.add("migrate_rows", report.rows, "", "rows copied by migrate-to-postgres")
    res.add("migrate_s", round(moved_s, 1), "s", "migrate-to-postgres, whole dataset")
    res.add("sqlite_home_rps", round(s["home"].rps), "req/s", "home timeline, SQLite")
    res.add("postgres_home_rps", round(p["home"].rps), "req/s", "home timeline, PostgreSQL")
    res.add("postgres_over_sqlite_home", round(p["home"].rps / s["home"].rps, 2), "x", "home req/s PostgreSQL / SQLite")
    if s["home"].cpu_ms_per_request and p["home"].cpu_ms_per_request:
        res.add("postgres_over_sqlite_home_cpu", round(p["home"].cpu_ms_per_request / s["home"].cpu_ms_per_request, 2),
                "x", "server CPU per home request, PostgreSQL / SQLite (PostgreSQL's own CPU not counted)")
    res.add("sqlite_post_p50_ms", round(s["posts"].p50_ms, 2), "ms", "POST /api/v1/statuses p50, SQLite")
    res.add("postgres_post_p50_ms", round(p["posts"].p50_ms, 2), "ms", "POST /api/v1/statuses p50, PostgreSQL")
    res.add("postgres_over_sqlite_post_p50", round(p["posts"].p50_ms / s["posts"].p50_ms, 2), "x",
            "POST p50 PostgreSQL / SQLite (lower is better)")
    (pg_one, pg_two), (lite_one, lite_two) = processes["postgres"], processes["sqlite"]
    res.add("one_process_home_rps", round(pg_one.rps), "req/s", "home timeline, PostgreSQL, one serve process")
    res.add("two_processes_home_rps", round(pg_two.rps), "req/s", "home timeline, PostgreSQL, two serve processes")
    res.add("two_over_one_processes", round(pg_two.rps / pg_one.rps, 2), "x", "two processes / one, PostgreSQL")
    res.add("sqlite_one_process_home_rps", round(lite_one.rps), "req/s", "home timeline, shared SQLite file, one process")
    res.add("sqlite_two_processes_home_rps", round(lite_two.rps), "req/s", "home timeline, shared SQLite file, two processes")
    res.add("sqlite_two_over_one_processes", round(lite_two.rps / lite_one.rps, 2), "x", "two processes / one, shared SQLite file")
    # Where the two cores go with two web processes: what the web processes need per request against
    # what the load generators and PostgreSQL take of the same cores.
    for engine, run in (("postgres", pg_two), ("sqlite", lite_two)):
        res.add(f"{engine}_two_web_cpu_ms", run.servers_cpu_ms, "ms", f"{engine}, two processes: web processes' CPU per request")
        res.add(f"{engine}_two_loadgen_cpu_ms", run.loadgen_cpu_ms, "ms", f"{engine}, two processes: load generators' CPU per request")
    res.add("postgres_two_db_cpu_ms", pg_two.postgres_cpu_ms, "ms", "PostgreSQL, two processes: PostgreSQL's own CPU per request")
    pg_failed, lite_failed = pg_one.failed + pg_two.failed, lite_one.failed + lite_two.failed
    res.add("failed_requests", pg_failed + lite_failed, "", "non-2xx or failed requests in the process runs")
    res.note("In the process comparison the second server is pinned to CPU 1, which the load generators also use, "
             "so two processes share their second core with the load: the ratio is a floor for two dedicated cores. "
             "On PostgreSQL the database server also runs on the same two cores (unpinned), taking its share of "
             "them from the web processes; the shared-SQLite run has no database server. Delivery with two "
             "workers against one: the delivery_workers scenario.")
    res.raw = {"sqlite": {k: v.as_dict() for k, v in s.items()}, "postgres": {k: v.as_dict() for k, v in p.items()},
               "processes": {engine: {"one": asdict(one), "two": asdict(two)} for engine, (one, two) in processes.items()},
               "port": CROSSTALK_PORT}
    return res.as_dict()
