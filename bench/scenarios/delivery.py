"""One post by an author with 1,000 remote followers, each with an inbox of its own on one of many
loopback hosts (a sink on several ports; the delivery worker allows 4 requests per host and 32 in
all): deliveries per second from the POST until the 1,000th arrived, as a share of the raw RSA-2048
signing rate measured on the same core in the same run (every delivery is one signature). The sink
verifies a sample of the signatures with the author's public key."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from bench import procs
from bench.context import CROSSTALK_PORT, Context, Result
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


async def _one_post(ctx: Context, server: procs.Server, sink: procs.Server, token: str, text: str,
                    limit_s: float) -> dict[str, Any]:
    await sink_reset(sink.url)
    cpu0 = server.cpu_seconds()
    t0 = time.monotonic()
    posted = await ctx.post_json(server.url + "/api/v1/statuses", {"status": text, "visibility": "public"}, token)
    answered = time.monotonic()
    stats, _, complete = await wait_until(functools.partial(sink_stats, sink.url),
                                          lambda s: s["received"] >= FOLLOWERS, limit_s, interval=0.05)
    cpu = server.cpu_seconds() - cpu0
    if not complete:
        raise RuntimeError(f"only {stats['received']} of {FOLLOWERS} deliveries arrived within {limit_s:.0f} s:\n"
                           f"{server.log_tail()}")
    elapsed = stats["last_at"] - t0
    return {"id": posted["id"], "post_ms": (answered - t0) * 1000, "first_ms": (stats["first_at"] - t0) * 1000,
            "all_s": elapsed, "rate": FOLLOWERS / elapsed, "cpu_ms_per_delivery": cpu * 1000 / FOLLOWERS,
            "sink": stats}


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    hosts = 20 if ctx.small else 50
    crypto = await ctx.crypto_rates()
    data_dir = ctx.private_copy(ds, "delivery")
    db_path = data_dir / "crosstalk.sqlite3"
    ports = procs.free_ports(hosts, avoid={CROSSTALK_PORT})
    author = ds.author
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    work = ctx.work_root / "delivery"
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "author.pem"
    key_file.write_text(public_pem)

    # 1,000 remote followers, each its own inbox (no shared inbox, so no de-duplication), spread over
    # the sink's ports; the author's key pair exists already, as on any instance that has federated.
    remote = []
    for k in range(FOLLOWERS):
        host = f"127.0.0.1:{ports[k % hosts]}"
        uri = f"http://{host}/users/r{k:04d}"
        remote.append({"id": new_id(), "username": f"r{k:04d}", "domain": host, "uri": uri, "inbox_url": f"{uri}/inbox"})
    await asyncio.to_thread(
        add_remote_accounts, db_path, remote, [(a["id"], author["id"]) for a in remote],
        [("UPDATE accounts SET private_key_pem = ?, public_key_pem = ? WHERE id = ?",
          (private_pem, public_pem, author["id"]))])

    rounds = []
    async with ctx.sink(ports, verify_key=key_file, verify_every=20) as sink, \
            ctx.crosstalk(ds, data_dir=data_dir, env=FEDERATION_ENV) as server:
        # Warm-up post: connection pools, and each host's signature format is learned and stored.
        warm = await _one_post(ctx, server, sink, author["token"], "Warm-up post for the delivery benchmark", 180)
        await asyncio.sleep(1.0)
        for i in range(ROUNDS):
            rounds.append(await _one_post(ctx, server, sink, author["token"],
                                          f"Delivery benchmark post {i}: the #weekly update is out", 180))
            await asyncio.sleep(1.0)
        pending = await asyncio.to_thread(db_value, db_path,
                                          "SELECT count(*) FROM deliveries WHERE state != 'done'")
        rss = server.rss_mb()

    for r in [warm, *rounds]:
        s = r["sink"]
        if s["distinct_inboxes"] != FOLLOWERS or s["max_per_inbox"] != 1 or s["hosts"] != hosts:
            raise RuntimeError(f"deliveries did not reach each inbox exactly once: {s}")
        if s["verify_failed"] or not s["verified"]:
            raise RuntimeError(f"sampled signatures did not verify: {s}")
    best = max(rounds, key=lambda r: r["rate"])
    median = sorted(rounds, key=lambda r: r["rate"])[len(rounds) // 2]
    sign = crypto["rsa2048_sign_per_s"]
    ctx.log(f"delivery: {median['rate']:,.0f} deliveries/s (median of {ROUNDS}; best {best['rate']:,.0f}); raw sign "
            f"{sign:,.0f}/s → {100 * median['rate'] / sign:.0f} %")

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
    res.add("not_done", pending, "", "delivery rows not 'done' at the end")
    res.add("rss_mb", round(rss, 1), "MB", "server RSS at the end")
    res.target("deliveries/s >= 80 % of the raw sign rate", round(100 * median["rate"] / sign, 1), ">=", 80, "%")
    res.note(f"sink: bench/sink.py on {hosts} ports of 127.0.0.1 (each a host to the instance), pinned to CPU 1, "
             "answering 202; the instance in blocklist mode with 127.0.0.0/8 allowed; worker limits 4 per host, 32 "
             "in all")
    res.raw = {"warm": warm, "rounds": rounds, "crypto": crypto}
    return res.as_dict()
