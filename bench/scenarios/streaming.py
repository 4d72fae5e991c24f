"""1,000 WebSocket clients on /api/v1/streaming?stream=user, each a local follower of one author, in a
separate client process (bench/wsclients.py, pinned to the load CPU); the author posts N times, spaced;
per-client latency from the POST (sent, and answered) to the `update` event arriving, p50/p99, every
event accounted for; and the server's RSS idle, with the connections open, and after the posts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.context import Context, Result
from bench.dataset import Dataset
from bench.loadgen import percentile
from bench.scenarios._streams import ClientGroup, local_followers, tokens_for

NAME = "streaming"
DESCRIPTION = "1,000 WebSocket user streams of an author's followers: update latency p50/p99 per client; RSS"
CLIENTS = 1000


def follower_tokens(ds: Dataset, db_path: Path, count: int) -> list[str]:
    """Tokens of `count` local followers of the author."""
    followers = local_followers(db_path, ds.author["id"])
    if len(followers) < count:
        raise RuntimeError(f"the author has {len(followers)} local followers, {count} wanted")
    return tokens_for(ds, db_path, followers[:count])


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    posts = 10 if ctx.small else 20
    spacing = 0.5 if ctx.small else 1.0
    data_dir = ctx.working_copy(ds)
    tokens = await asyncio.to_thread(follower_tokens, ds, data_dir / "crosstalk.sqlite3", CLIENTS)
    work = ctx.work_root / "streaming"
    work.mkdir(parents=True, exist_ok=True)
    author = ds.author

    async with ctx.crosstalk(ds) as server:
        await ctx.post_json(server.url + "/api/v1/statuses", {"status": "warm-up before streaming"}, author["token"])
        await asyncio.sleep(1.0)
        rss_idle = server.rss_mb()
        clients = ClientGroup(server.url, tokens, work, max_seconds=posts * spacing + 300)
        try:
            ready = await clients.start(limit_s=180)
            if ready["connected"] < CLIENTS:
                raise RuntimeError(f"only {ready['connected']} of {CLIENTS} streaming clients connected: {ready}")
            await asyncio.sleep(2.0)  # let the connections settle before measuring their memory
            rss_connected = server.rss_mb()
            cpu0 = server.cpu_seconds()
            sent: dict[str, tuple[float, float]] = {}
            for i in range(posts):
                t0 = time.monotonic()
                posted = await ctx.post_json(server.url + "/api/v1/statuses",
                                             {"status": f"Streaming benchmark post {i}: the weekly update is out #TeamNews",
                                              "visibility": "public"}, author["token"])
                sent[posted["id"]] = (t0, time.monotonic())
                await asyncio.sleep(max(0.0, spacing - (time.monotonic() - t0)))
            await asyncio.sleep(3.0)  # stragglers
            cpu_ms = (server.cpu_seconds() - cpu0) * 1000
            rss_after = server.rss_mb()
            result = await clients.finish(limit_s=60)
        finally:
            await clients.kill()

    from_send: list[float] = []
    from_answer: list[float] = []
    firsts: list[float] = []  # per post: POST sent → the first client has it (fan-out, rendering)
    spreads: list[float] = []  # per post: first client → last client (sending to every connection)
    for status_id, times in result["receipts"].items():
        if status_id not in sent or not times:
            continue
        t0, t1 = sent[status_id]
        from_send.extend((t - t0) * 1000 for t in times)
        from_answer.extend((t - t1) * 1000 for t in times)
        firsts.append((min(times) - t0) * 1000)
        spreads.append((max(times) - min(times)) * 1000)
    firsts.sort()
    spreads.sort()
    from_send.sort()
    from_answer.sort()
    expected = ready["connected"] * posts
    got = len(from_send)
    ctx.log(f"streaming: {ready['connected']} clients, {got:,} of {expected:,} updates; from send p50 "
            f"{percentile(from_send, 50):.1f} ms p99 {percentile(from_send, 99):.1f} ms; RSS {rss_idle:.0f} → "
            f"{rss_connected:.0f} MB with the connections")

    res.add("clients", ready["connected"], "", "WebSocket clients connected (user stream)")
    res.add("connect_seconds", ready["connect_seconds"], "s", "time to open them all (50 handshakes at once)")
    res.add("posts", posts, "", f"posts by their author, {spacing:g} s apart")
    res.add("delivered_pct", round(100 * got / expected, 2) if expected else 0.0, "%", "update events received / expected")
    res.add("latency_send_p50_ms", round(percentile(from_send, 50), 1), "ms", "POST sent → update received, p50")
    res.add("latency_send_p99_ms", round(percentile(from_send, 99), 1), "ms", "POST sent → update received, p99")
    res.add("latency_send_max_ms", round(from_send[-1], 1) if from_send else 0.0, "ms", "POST sent → update, max")
    res.add("latency_answer_p50_ms", round(percentile(from_answer, 50), 1), "ms", "POST answered → update, p50")
    res.add("latency_answer_p99_ms", round(percentile(from_answer, 99), 1), "ms", "POST answered → update, p99")
    res.add("first_client_p50_ms", round(percentile(firsts, 50), 1), "ms", "POST sent → first client has it (per post, p50)")
    res.add("spread_p50_ms", round(percentile(spreads, 50), 1), "ms", "first → last client (per post, p50)")
    res.add("post_cpu_ms", round(cpu_ms / posts, 1), "ms", "server CPU per post (fan-out + 1,000 sends)")
    res.add("rss_idle_mb", round(rss_idle, 1), "MB", "server RSS before the clients connect")
    res.add("rss_connected_mb", round(rss_connected, 1), "MB", f"server RSS with {ready['connected']} connections")
    res.add("rss_per_connection_kb", round((rss_connected - rss_idle) * 1024 / max(1, ready["connected"]), 1), "kB",
            "RSS per connection")
    res.add("rss_after_mb", round(rss_after, 1), "MB", "server RSS after the posts")
    res.add("closed_early", result["closed_early"], "", "connections the server closed during the run")
    res.note("clients: one asyncio process pinned to CPU 1, half with the token in Authorization, half in "
             "access_token; receipt times are time.monotonic() (system-wide), compared with the POST's send and "
             "answer times in the harness process; 'answered' can be negative when an event beats the answer")
    minted = sum(1 for t in tokens if t not in {x["token"] for x in ds.tokens})
    res.note(f"{minted} of the {CLIENTS} followers had no token in the dataset; tokens were minted for them in the "
             "working copy")
    res.raw = {"ready": ready, "other_events": result["other_events"],
               "per_connection_min": min(result["per_connection"]) if result["per_connection"] else 0}
    return res.as_dict()
