"""One post by an author with 1,000 remote followers, each with an inbox of its own on one of many
loopback hosts (a sink on several ports; the delivery worker allows 4 requests per host and 32 in
all): deliveries per second from the POST until the 1,000th arrived, as a share of the raw RSA-2048
signing rate measured on the same core in the same run (every delivery is one signature); then the
same with the server allowed both cores, against the same one-core signing rate. The sink verifies a
sample of the signatures with the author's public key."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.context import BOTH_CPUS, CROSSTALK_PORT, LOAD_CPU, SERVER_CPU, Context, Result
from bench.dataset import Dataset
from bench.scenarios._federation import (
    FEDERATION_ENV,
    add_remote_accounts,
    db_value,
    sink_reset,
    sink_stats,
    wait_until,
)
from federation.signatures import generate_rsa_keypair
from server.ids import new_id

NAME = "delivery"
DESCRIPTION = "one post to 1,000 remote followers on many loopback hosts: deliveries/s vs raw RSA-2048 sign rate"
FOLLOWERS = 1000
ROUNDS = 3  # measured posts, after one warm-up post


def _descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and theirs (the signing processes of the server)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _server_cpu(server: procs.Server) -> float:
    """CPU seconds of the server and of the processes it started (signing happens in those when the
    server may use both cores)."""
    return server.cpu_seconds() + sum(procs.cpu_seconds(pid) for pid in _descendants(server.pid))


async def _one_post(ctx: Context, server: procs.Server, sink: procs.Server, token: str, text: str,
                    limit_s: float) -> dict[str, Any]:
    await sink_reset(sink.url)
    cpu0 = _server_cpu(server)
    t0 = time.monotonic()
    posted = await ctx.post_json(server.url + "/api/v1/statuses", {"status": text, "visibility": "public"}, token)
    answered = time.monotonic()
    stats, _, complete = await wait_until(functools.partial(sink_stats, sink.url),
                                          lambda s: s["distinct_inboxes"] >= FOLLOWERS, limit_s, interval=0.05)
    cpu = _server_cpu(server) - cpu0
    if not complete:
        raise RuntimeError(f"only {stats['distinct_inboxes']} of {FOLLOWERS} inboxes reached within {limit_s:.0f} s:\n"
                           f"{server.log_tail()}")
    elapsed = stats["last_new_at"] - t0  # the 1,000th inbox reached (a duplicate sent later does not count)
    return {"id": posted["id"], "post_ms": (answered - t0) * 1000, "first_ms": (stats["first_at"] - t0) * 1000,
            "all_s": elapsed, "rate": FOLLOWERS / elapsed, "cpu_ms_per_delivery": cpu * 1000 / FOLLOWERS,
            "sink": stats}


async def _measure(ctx: Context, ds: Dataset, data_dir: Path, ports: list[int], key_file: Path,
                   server_cpu: procs.CpuSet, sink_cpu: procs.CpuSet) -> dict[str, Any]:
    """A warm-up post, then ROUNDS measured posts, on a server with these CPUs; every round checked."""
    author = ds.author
    rounds = []
    async with ctx.sink(ports, verify_key=key_file, verify_every=20, cpu=sink_cpu) as sink, \
            ctx.crosstalk(ds, data_dir=data_dir, env=FEDERATION_ENV, cpu=server_cpu) as server:
        # Warm-up post: connection pools, and each host's signature format is learned and stored.
        warm = await _one_post(ctx, server, sink, author["token"], "Warm-up post for the delivery benchmark", 180)
        await asyncio.sleep(1.0)
        for i in range(ROUNDS):
            rounds.append(await _one_post(ctx, server, sink, author["token"],
                                          f"Delivery benchmark post {i}: the #weekly update is out", 180))
            await asyncio.sleep(1.0)
        pending = await asyncio.to_thread(db_value, data_dir / "crosstalk.sqlite3",
                                          "SELECT count(*) FROM deliveries WHERE state != 'done'")
        rss = server.rss_mb()
    for n, r in enumerate([warm, *rounds]):
        s = r["sink"]
        if s["distinct_inboxes"] != FOLLOWERS or s["hosts"] != len(ports) or len(s["activities"]) != 1:
            raise RuntimeError(f"deliveries of post {n} (0: warm-up), server on CPUs {server_cpu}, did not reach "
                               f"every inbox: {s}")
        if s["verify_failed"] or not s["verified"]:
            raise RuntimeError(f"sampled signatures did not verify: {s}")
    by_rate = sorted(rounds, key=lambda r: r["rate"])
    return {"warm": warm, "rounds": rounds, "median": by_rate[len(rounds) // 2], "best": by_rate[-1],
            "pending": pending, "rss": rss}


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    hosts = 20 if ctx.small else 50
    crypto = await ctx.crypto_rates()
    data_dir = ctx.private_copy(ds, "delivery")
    ports = procs.free_ports(hosts, avoid={CROSSTALK_PORT})
    author = ds.author
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    work = ctx.work_root / "delivery"
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "author.pem"
    key_file.write_text(public_pem)

    # 1,000 remote followers, each its own inbox (no shared inbox, so no de-duplication), spread over
    # the sink's ports; the author's key pair exists already, as on any instance that has federated.
    remote: list[dict[str, Any]] = []
    for k in range(FOLLOWERS):
        host = f"127.0.0.1:{ports[k % hosts]}"
        uri = f"http://{host}/users/r{k:04d}"
        remote.append({"id": new_id(), "username": f"r{k:04d}", "domain": host, "uri": uri, "inbox_url": f"{uri}/inbox"})
    await asyncio.to_thread(
        add_remote_accounts, data_dir / "crosstalk.sqlite3", remote, [(a["id"], author["id"]) for a in remote],
        [("UPDATE accounts SET private_key_pem = ?, public_key_pem = ? WHERE id = ?",
          (private_pem, public_pem, author["id"]))])

    one = await _measure(ctx, ds, data_dir, ports, key_file, SERVER_CPU, LOAD_CPU)
    # The same with the server allowed both cores (so signing may use the second one), the sink left
    # to the scheduler: the figure a signer on several cores is read by.
    two = await _measure(ctx, ds, data_dir, ports, key_file, BOTH_CPUS, None) if procs.cpus() >= 2 else None
    sign = crypto["rsa2048_sign_per_s"]
    rounds, warm, median, best = one["rounds"], one["warm"], one["median"], one["best"]
    two_rate = two["median"]["rate"] if two else None
    ctx.log(f"delivery: {median['rate']:,.0f} deliveries/s on one core (median of {ROUNDS}; best {best['rate']:,.0f}); "
            f"raw sign {sign:,.0f}/s → {100 * median['rate'] / sign:.0f} %"
            + (f"; allowed both cores {two_rate:,.0f}/s → {100 * two_rate / sign:.0f} %" if two_rate else ""))

    res.add("followers", FOLLOWERS, "", f"remote followers, own inboxes, on {hosts} hosts")
    res.add("rate_median", round(median["rate"]), "/s", f"deliveries per second (median of {ROUNDS} posts)")
    res.add("rate_best", round(best["rate"]), "/s", "deliveries per second (best post)")
    res.add("rate_cold", round(warm["rate"]), "/s", "deliveries per second (first post, cold)")
    res.add("all_delivered_s", round(median["all_s"], 2), "s", "POST sent → 1,000th delivery arrived (median)")
    res.add("first_delivery_ms", round(median["first_ms"], 1), "ms", "POST sent → first delivery arrived")
    res.add("post_ms", round(median["post_ms"], 1), "ms", "POST answered in")
    res.add("cpu_ms_per_delivery", round(median["cpu_ms_per_delivery"], 3), "ms", "server CPU per delivery")
    res.add("sign_rate", round(sign), "/s", "raw RSA-2048 sign, cryptography, one core")
    res.add("sign_ms", round(1000 / sign, 3), "ms", "raw RSA-2048 sign, per signature")
    res.add("rate_vs_sign_pct", round(100 * median["rate"] / sign, 1), "%", "deliveries/s as % of raw sign rate")
    res.add("verified_sample", sum(r["sink"]["verified"] for r in [warm, *rounds]), "",
            "signatures verified by the sink (1 in 20), all valid")
    posts = [p for phase in (one, two) if phase for p in (phase["warm"], *phase["rounds"])]
    duplicates = sum(p["sink"]["duplicates"] for p in posts)
    res.add("duplicates", duplicates, "", f"activities sent twice to one inbox (all {len(posts)} posts)")
    if duplicates:
        res.note("sent twice: " + "; ".join(d for p in posts for d in p["sink"]["duplicated"])[:600])
    res.add("not_done", one["pending"], "", "delivery rows not 'done' at the end")
    res.add("rss_mb", round(one["rss"], 1), "MB", "server RSS at the end")
    if two is not None:
        res.add("two_cores_rate_median", round(two["median"]["rate"]), "/s",
                f"deliveries per second, server allowed both cores (median of {ROUNDS})")
        res.add("two_cores_cpu_ms_per_delivery", round(two["median"]["cpu_ms_per_delivery"], 3), "ms",
                "server CPU per delivery (its signing processes included), allowed both cores")
        res.add("two_cores_vs_sign_pct", round(100 * two["median"]["rate"] / sign, 1), "%",
                "deliveries/s, both cores, as % of one core's raw sign rate")
        res.add("two_cores_not_done", two["pending"], "", "delivery rows not 'done' at the end (both cores)")
    else:
        res.note("one CPU only: the figure with the server allowed both cores was not measured")
    res.note(f"sink: bench/sink.py on {hosts} ports of 127.0.0.1 (each a host to the instance), answering 202, "
             "pinned to CPU 1 for the one-core figures and left to the scheduler for the two-core ones; the instance "
             "in blocklist mode with 127.0.0.0/8 allowed; worker limits 4 per host, 32 in all")
    res.raw = {"one_core": one, "two_cores": two, "crypto": crypto}
    return res.as_dict()
