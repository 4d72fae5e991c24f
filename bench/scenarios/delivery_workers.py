"""Delivery throughput with two `crosstalk worker` processes against one, in the same run on the same
dataset copy: one post by an author with 2,000 remote followers (own inboxes on many loopback hosts, a
sink as in the delivery scenario) made through a `serve --no-workers` process; deliveries per second
from the POST until the last inbox was reached. One worker is pinned to CPU 0; the two workers to
CPU 0 and CPU 1 (RSA signing is the limit, and it is per core: the issue's target is 1.7x). The web
process, the sink and the bus share the machine, so the ratio is a floor for two dedicated cores.
The sink also counts an activity sent twice to one inbox: two workers must never send one delivery
twice.

The processes share the dataset's SQLite file (the claim on the delivery queue is what keeps two
workers apart) and a Redis bus (CROSSTALK_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0) that
wakes the workers when a post is made."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.context import CROSSTALK_PORT, LOAD_CPU, SERVER_CPU, Context, Result
from bench.dataset import Dataset
from bench.scenarios._federation import (
    FEDERATION_ENV,
    add_remote_accounts,
    sink_reset,
    sink_stats,
    wait_until,
)
from federation.signatures import generate_rsa_keypair
from server.ids import new_id

NAME = "delivery_workers"
DESCRIPTION = "delivery to 2,000 remote followers: two worker processes vs one (ratio, target 1.7x)"
FOLLOWERS = 2000  # about a second of signing per post on one core: long enough to read a rate from
REDIS = os.environ.get("CROSSTALK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.asynccontextmanager
async def _cluster(ctx: Context, ds: Dataset, data_dir: Path, worker_cpus: list[procs.CpuSet],
                   ) -> AsyncIterator[tuple[procs.Server, list[procs.Server]]]:
    """`serve --no-workers` (not pinned) plus one `worker` per entry of `worker_cpus`: (web, workers)."""
    env = {**FEDERATION_ENV, "CROSSTALK_BUS_URL": REDIS}
    started: list[procs.Server] = []
    try:
        port = procs.free_port(CROSSTALK_PORT)
        web = await procs.start("web", [*procs.crosstalk_cmd(), "--no-workers"], port=port,
                                env={**procs.crosstalk_env(data_dir, ds.spec.domain, port), **env}, cpu=None,
                                log_path=ctx.work_root / "delivery_workers-web.log", ready_path="/api/v1/instance")
        started.append(web)
        for n, cpu in enumerate(worker_cpus):
            wport = procs.free_port()
            started.append(await procs.start(
                f"worker-{n}", [*procs.crosstalk_cmd()[:-1], "worker"], port=wport,
                env={**procs.crosstalk_env(data_dir, ds.spec.domain, wport), **env}, cpu=cpu,
                log_path=ctx.work_root / f"delivery_workers-worker{n}.log", ready_path="/livez"))
        yield web, started[1:]
    finally:
        for server in reversed(started):
            procs.stop(server)


async def _delivered(worker: procs.Server) -> float:
    """Deliveries this worker has made (its /metrics counter)."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{worker.url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("crosstalk_deliveries_total{") and 'outcome="delivered"' in line)


async def _one_post(ctx: Context, web: procs.Server, workers: list[procs.Server], sink: procs.Server, token: str,
                    text: str) -> dict[str, Any]:
    await sink_reset(sink.url)
    before = [await _delivered(w) for w in workers]
    sink_cpu0, web_cpu0 = sink.cpu_seconds(), web.cpu_seconds()
    workers_cpu0 = sum(w.cpu_seconds() for w in workers)
    t0 = time.monotonic()
    await ctx.post_json(web.url + "/api/v1/statuses", {"status": text, "visibility": "public"}, token)
    stats, _, complete = await wait_until(functools.partial(sink_stats, sink.url),
                                          lambda s: s["distinct_inboxes"] >= FOLLOWERS, 240, interval=0.05)
    if not complete:
        raise RuntimeError(f"only {stats['distinct_inboxes']} of {FOLLOWERS} inboxes reached:\n{web.log_tail()}")
    elapsed = stats["last_new_at"] - t0
    workers_cpu = sum(w.cpu_seconds() for w in workers) - workers_cpu0
    shares = [await _delivered(w) - b for w, b in zip(workers, before, strict=True)]
    wall = time.monotonic() - t0
    sink_cores = (sink.cpu_seconds() - sink_cpu0) / wall
    return {"all_s": elapsed, "rate": FOLLOWERS / elapsed, "sink": stats, "per_worker": shares,
            "sink_cores": sink_cores, "web_cores": (web.cpu_seconds() - web_cpu0) / wall,
            "workers_cpu_ms_per_delivery": workers_cpu * 1000 / FOLLOWERS,
            "sink_cpu_ms_per_delivery": (sink.cpu_seconds() - sink_cpu0) * 1000 / FOLLOWERS}


async def _measure(ctx: Context, ds: Dataset, data_dir: Path, sink: procs.Server, token: str,
                   worker_cpus: list[procs.CpuSet], rounds: int) -> dict[str, Any]:
    async with _cluster(ctx, ds, data_dir, worker_cpus) as (web, workers):
        warm = await _one_post(ctx, web, workers, sink, token, f"Warm-up post, {len(worker_cpus)} worker(s)")
        measured = []
        for i in range(rounds):
            await asyncio.sleep(1.0)
            measured.append(await _one_post(ctx, web, workers, sink, token,
                                            f"Delivery workers post {i} with {len(worker_cpus)} worker(s)"))
    for r in (warm, *measured):
        s = r["sink"]
        if s["distinct_inboxes"] != FOLLOWERS or s["verify_failed"] or not s["verified"]:
            raise RuntimeError(f"deliveries with {len(worker_cpus)} worker(s) incomplete or badly signed: {s}")
    by_rate = sorted(measured, key=lambda r: r["rate"])
    return {"warm": warm, "rounds": measured, "median": by_rate[len(measured) // 2],
            "duplicates": sum(r["sink"]["duplicates"] for r in (warm, *measured))}


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    hosts = 20 if ctx.small else 50
    rounds = 2 if ctx.small else 3
    data_dir = ctx.private_copy(ds, "delivery_workers")
    ports = procs.free_ports(hosts, avoid={CROSSTALK_PORT})
    author = ds.author
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    work = ctx.work_root / "delivery_workers"
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "author.pem"
    key_file.write_text(public_pem)
    remote = []
    for k in range(FOLLOWERS):
        host = f"127.0.0.1:{ports[k % hosts]}"
        uri = f"http://{host}/users/w{k:04d}"
        remote.append({"id": new_id(), "username": f"w{k:04d}", "domain": host, "uri": uri, "inbox_url": f"{uri}/inbox"})
    await asyncio.to_thread(
        add_remote_accounts, data_dir / "crosstalk.sqlite3", remote, [(a["id"], author["id"]) for a in remote],
        [("UPDATE accounts SET private_key_pem = ?, public_key_pem = ? WHERE id = ?",
          (private_pem, public_pem, author["id"]))])

    async with ctx.sink(ports, verify_key=key_file, verify_every=20, cpu=None) as sink:
        one = await _measure(ctx, ds, data_dir, sink, author["token"], [SERVER_CPU], rounds)
        two = (await _measure(ctx, ds, data_dir, sink, author["token"], [SERVER_CPU, LOAD_CPU], rounds)
               if procs.cpus() >= 2 else None)
    sign = (await ctx.crypto_rates())["rsa2048_sign_per_s"]
    one_rate = one["median"]["rate"]
    res.add("followers", FOLLOWERS, "", f"remote followers, own inboxes, on {hosts} hosts")
    res.add("sign_rate", round(sign), "/s", "raw RSA-2048 sign, cryptography, one core")
    res.add("one_worker_rate", round(one_rate), "/s", f"deliveries per second, one worker on CPU 0 (median of {rounds})")
    if two is not None:
        two_rate = two["median"]["rate"]
        res.add("two_workers_rate", round(two_rate), "/s",
                f"deliveries per second, two workers on CPUs 0 and 1 (median of {rounds})")
        split = two["median"]["per_worker"]
        res.add("two_workers_split_pct", round(100 * min(split) / max(1.0, sum(split))), "%",
                "share of the deliveries made by the less busy of the two workers (median post)")
        res.add("two_over_one_workers", round(two_rate / one_rate, 2), "x", "two worker processes / one (target 1.7)")
        ctx.log(f"delivery_workers: one worker {one_rate:,.0f}/s, two {two_rate:,.0f}/s "
                f"→ {two_rate / one_rate:.2f}x")
    else:
        res.note("one CPU only: two workers against one was not measured")
    res.add("sink_cores_two_workers", round((two or one)["median"]["sink_cores"], 2), "cores",
            "CPU the sink (the 2,000 remote inboxes) took while the workers delivered (median post)")
    # What limits the ratio: the workers' own CPU per delivery (the same with two workers as with one
    # when they do not get in each other's way), and what the sink and the web process take of the
    # same two cores while two workers run (while one worker runs they have the other core to themselves).
    res.add("one_worker_cpu_ms_per_delivery", round(one["median"]["workers_cpu_ms_per_delivery"], 3), "ms",
            "worker CPU per delivery, one worker (median post)")
    if two is not None:
        res.add("two_workers_cpu_ms_per_delivery", round(two["median"]["workers_cpu_ms_per_delivery"], 3), "ms",
                "worker CPU per delivery, two workers together (median post)")
        med = two["median"]
        share = med["sink_cpu_ms_per_delivery"] / (med["sink_cpu_ms_per_delivery"] + med["workers_cpu_ms_per_delivery"])
        res.add("sink_share_of_cpu_two_workers", round(100 * share, 1), "%",
                "the sink's share of the CPU spent per delivery with two workers (the two cores are shared)")
        res.add("web_cores_two_workers", round(med["web_cores"], 2), "cores",
                "CPU the web process took while two workers delivered (median post)")
    res.add("duplicates", one["duplicates"] + (two["duplicates"] if two else 0), "",
            "activities sent twice to one inbox (all posts, both runs)")
    res.note("web process (serve --no-workers), sink and Redis unpinned, sharing the two cores with the workers; "
             "the workers' signing pools inherit their worker's CPU")
    res.raw = {"one": one, "two": two}
    return res.as_dict()
