"""10,000 idle WebSocket user streams held open at once (clients in several processes of 2,500, pinned
to the load CPU), one per local account and round robin when there are fewer accounts: the server's
RSS and CPU while it holds them for longer than its WebSocket ping interval, whether it kept every one
open, and, at the end, that they are alive: one post by the author reaches the stream of every
follower.

Needs an open-files limit of about 10,200 for the server and 2,700 for each client process, and
10,000 free ephemeral ports: the harness raises its soft limit to the hard one (and the hard one too
when run as root); the scenario stops with what to change when they fall short."""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

from bench import procs
from bench.context import Context, Result
from bench.scenarios._streams import (
    ClientGroup,
    descriptors_needed,
    local_accounts,
    local_followers,
    tokens_for,
)

NAME = "streaming_idle"
DESCRIPTION = "10,000 idle WebSocket user streams held past a ping interval: RSS, CPU, none dropped, all alive"
STREAMS = 10_000
HOLD_SECONDS = 40.0  # longer than the server's 30 s WebSocket ping, so every socket answers one
SMALL_HOLD_SECONDS = 10.0


def check_limits(streams: int) -> None:
    """Refuse early, saying what to change, when the machine cannot hold `streams` connections."""
    server_needs, client_needs = descriptors_needed(streams)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < server_needs:
        raise RuntimeError(f"{streams:,} streams need an open-files limit of {server_needs:,} (server) and "
                           f"{client_needs:,} (each client process); it is {soft:,}: raise the hard limit "
                           f"(ulimit -Hn 65536 as root, LimitNOFILE= in a systemd unit) and run again")
    ports = procs.ephemeral_port_count()
    if ports and ports < streams + 1000:
        raise RuntimeError(f"{streams:,} client connections need as many ephemeral ports; the kernel offers {ports:,}"
                           " (widen net.ipv4.ip_local_port_range)")


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    check_limits(STREAMS)
    ds = await ctx.dataset()
    hold = SMALL_HOLD_SECONDS if ctx.small else HOLD_SECONDS
    data_dir = ctx.working_copy(ds)
    db_path = data_dir / "crosstalk.sqlite3"
    accounts = await asyncio.to_thread(local_accounts, db_path)
    owners = [accounts[i % len(accounts)] for i in range(STREAMS)]
    tokens = await asyncio.to_thread(tokens_for, ds, db_path, sorted(set(owners)))
    token_of = dict(zip(sorted(set(owners)), tokens, strict=True))
    readers = set(await asyncio.to_thread(local_followers, db_path, ds.author["id"])) | {ds.author["id"]}
    expected = sum(1 for a in owners if a in readers)
    work = ctx.work_root / NAME
    work.mkdir(parents=True, exist_ok=True)

    async with ctx.crosstalk(ds) as server:
        await ctx.post_json(server.url + "/api/v1/statuses", {"status": "warm-up before the idle streams"},
                            ds.author["token"])
        await asyncio.sleep(1.0)
        rss_before = server.rss_mb()
        clients = ClientGroup(server.url, [token_of[a] for a in owners], work, max_seconds=hold + 900,
                              connect_seconds=540)
        try:
            started = time.monotonic()
            ready = await clients.start(limit_s=600)
            if ready["connected"] < STREAMS:
                raise RuntimeError(f"only {ready['connected']:,} of {STREAMS:,} streams connected: {ready}")
            ctx.log(f"{NAME}: {ready['connected']:,} streams open in {time.monotonic() - started:.1f} s "
                    f"({ready['processes']} client processes); holding them {hold:g} s")
            cpu0, t0 = server.cpu_seconds(), time.monotonic()
            peak = 0.0
            while time.monotonic() - t0 < hold:
                peak = max(peak, server.rss_mb())
                await asyncio.sleep(0.5)
            idle_cpu_pct = 100 * (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
            rss_held = server.rss_mb()
            posted = await ctx.post_json(server.url + "/api/v1/statuses",
                                         {"status": "Are you all still there? #weekly", "visibility": "public"},
                                         ds.author["token"])
            await asyncio.sleep(5.0 if ctx.small else 10.0)
            result = await clients.finish(limit_s=120)
        finally:
            await clients.kill()
        rss_after = server.rss_mb()

    got = len(result["receipts"].get(posted["id"], []))
    held = ready["connected"] - result["closed_early"]
    ctx.log(f"{NAME}: {held:,} streams held, RSS {rss_before:.0f} → {rss_held:.0f} MB; the post reached {got:,} of "
            f"{expected:,} followers' streams")
    res.add("streams_opened", ready["connected"], "", f"streams opened ({ready['processes']} client processes)")
    res.add("connect_seconds", ready["connect_seconds"], "s", "time to open them (50 handshakes at once per process)")
    res.add("streams_held", held, "", f"streams still open after {hold:g} s idle and one post")
    res.add("rss_before_mb", round(rss_before, 1), "MB", "server RSS before the streams")
    res.add("rss_held_mb", round(rss_held, 1), "MB", f"server RSS holding them, after {hold:g} s")
    res.add("rss_peak_mb", round(peak, 1), "MB", "server RSS while holding them (peak)")
    res.add("rss_per_stream_kb", round((rss_held - rss_before) * 1024 / max(1, ready["connected"]), 1), "kB",
            "RSS per stream")
    res.add("rss_after_mb", round(rss_after, 1), "MB", "server RSS after the clients left")
    res.add("idle_cpu_pct", round(idle_cpu_pct, 1), "%", "server CPU while holding them idle (of one core)")
    res.add("post_expected", expected, "", "streams of the author's followers (and the author)")
    res.add("post_delivered_pct", round(100 * got / expected, 2) if expected else 0.0, "%",
            "of those that got the post after the hold")
    res.note(f"{len(set(owners)):,} local accounts' user streams, round robin; Authorization header on half, "
             "access_token on the other half; the server sends a WebSocket ping every 30 s, which the clients answer")
    res.raw = {"ready": ready, "other_events": result["other_events"], "failed": result["failed"]}
    return res.as_dict()
