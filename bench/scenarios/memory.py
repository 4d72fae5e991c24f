"""RSS after the full bench: one server, its caches at their default sizes, taken through what the
client API scenarios do, spread over the dataset (every token holder, 500 profiles, 500 threads, 600
older pages anywhere in the history) — a mixed read load (home, public and local timelines and their
older pages, profiles, account statuses, threads, notifications, searches, hashtags), posts with their
fan-out, and 1,000 streams opened and closed — then left idle for a moment: its RSS must stay bounded
however much it has served. Runs last; the federation scenarios' traffic needs their own servers and
is not part of it (the summary also names the largest RSS of every server of the run when it was
stopped)."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from pathlib import Path
from typing import Any

from bench.context import Context, Result
from bench.dataset import _TAGS
from bench.scenarios._reads import accounts_with_statuses, thread_members
from bench.scenarios._streams import ClientGroup, local_followers, tokens_for

NAME = "memory"
DESCRIPTION = "RSS of one server after a mixed read load spread over the dataset, posts and 1,000 streams"
STREAMS = 1000
_SEARCH_WORDS = ("budget", "report", "meeting", "security", "deadline", "roadmap", "coffee", "welcome")


def mixed_paths(db_path: Path, rng: random.Random) -> list[str]:
    """Request paths in the proportions of a client's day (one line per draw, so repeats weigh more)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        low, high = conn.execute("SELECT min(id), max(id) FROM statuses").fetchone()
        people = [r[0] for r in conn.execute("SELECT id FROM accounts WHERE domain = '' ORDER BY id")]
    finally:
        conn.close()
    accounts = accounts_with_statuses(db_path, rng)
    threads = thread_members(db_path, rng)
    older = [rng.randint(low, high) for _ in range(600)]  # an older page starts anywhere in the history
    return (["/api/v1/timelines/home"] * 400
            + [f"/api/v1/timelines/home?max_id={i}" for i in older[:200]]
            + ["/api/v1/timelines/public"] * 100 + ["/api/v1/timelines/public?local=true"] * 100
            + [f"/api/v1/timelines/public?max_id={i}" for i in older[200:]]
            + [f"/api/v1/accounts/{a}/statuses" for a in accounts[:500]]
            + [f"/api/v1/accounts/{a}" for a in rng.sample(people, min(200, len(people)))]
            + [f"/api/v1/statuses/{s}/context" for s in threads[:500]]
            + ["/api/v1/notifications"] * 100 + ["/api/v1/accounts/verify_credentials"] * 50
            + [f"/api/v2/search?q={rng.choice(_SEARCH_WORDS)}&type=statuses" for _ in range(50)]
            + [f"/api/v1/timelines/tag/{rng.choice(_TAGS)}" for _ in range(50)]
            + ["/api/v1/instance"] * 10)


def kind(path: str) -> str:
    """The endpoint a path calls, ids and query values left out: /api/v1/accounts/N/statuses."""
    route, _, query = path.partition("?")
    keys = ",".join(sorted(k.split("=")[0] for k in query.split("&") if k))
    return re.sub(r"/\d+", "/N", route) + (f"?{keys}" if keys else "")


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    rng = random.Random(5)
    paths = await asyncio.to_thread(mixed_paths, ds.db_path, rng)
    work = ctx.work_root / NAME
    work.mkdir(parents=True, exist_ok=True)
    paths_file = work / "paths.txt"
    paths_file.write_text("".join(p + "\n" for p in paths))
    data_dir = ctx.working_copy(ds)
    followers = await asyncio.to_thread(local_followers, data_dir / "crosstalk.sqlite3", ds.author["id"])
    stream_tokens = await asyncio.to_thread(tokens_for, ds, data_dir / "crosstalk.sqlite3", followers[:STREAMS])
    posters = rng.sample(ds.tokens, min(len(ds.tokens), 30 if ctx.small else 100))
    duration = ctx.duration * 3

    async with ctx.crosstalk(ds) as server:
        rss_started = server.rss_mb()
        kinds = {kind(p): p for p in paths}
        for path in kinds.values():  # each kind answers 200 before the load
            await ctx.get_json(server.url + path, rng.choice(ds.tokens)["token"])
        loaded, peak = await ctx.load(server, paths[0], tokens_file=ds.path / "tokens.txt", paths_file=paths_file,
                                      duration=duration)
        if loaded.non_2xx or loaded.errors:
            raise RuntimeError(f"mixed read load: {loaded.non_2xx} answers not 2xx, {loaded.errors} socket errors")
        rss_reads = server.rss_mb()
        for i, poster in enumerate(posters):
            await ctx.post_json(server.url + "/api/v1/statuses",
                                {"status": f"Memory benchmark post {i} #weekly", "visibility": "public"},
                                poster["token"])
        await ctx.post_json(server.url + "/api/v1/statuses", {"status": "And one from the author"},
                            ds.author["token"])
        await asyncio.sleep(2.0)  # fan-out done
        rss_posts = server.rss_mb()
        clients = ClientGroup(server.url, stream_tokens, work, max_seconds=600)
        try:
            await clients.start(limit_s=300)
            await ctx.post_json(server.url + "/api/v1/statuses", {"status": "To every stream"}, ds.author["token"])
            await asyncio.sleep(2.0)
            rss_streams = server.rss_mb()
            await clients.finish(limit_s=120)
        finally:
            await clients.kill()
        await asyncio.sleep(3.0)  # idle: closed connections released
        rss_end = server.rss_mb()
    peak = max(peak, rss_streams)
    ctx.log(f"{NAME}: RSS {rss_started:.0f} MB at start, {rss_reads:.0f} after {loaded.requests:,} mixed reads, "
            f"{rss_streams:.0f} with {STREAMS:,} streams, {rss_end:.0f} at the end")
    res.add("requests", loaded.requests, "", f"mixed reads served ({len(set(paths)):,} distinct paths, "
                                             f"{len(kinds)} kinds)")
    res.add("rps", round(loaded.rps), "req/s", "mixed reads req/s")
    res.add("posts", len(posters) + 2, "", "posts (with their fan-out)")
    res.add("rss_started_mb", round(rss_started, 1), "MB", "server RSS at start")
    res.add("rss_after_reads_mb", round(rss_reads, 1), "MB", "server RSS after the mixed reads")
    res.add("rss_after_posts_mb", round(rss_posts, 1), "MB", "server RSS after the posts")
    res.add("rss_with_streams_mb", round(rss_streams, 1), "MB", f"server RSS with {STREAMS:,} streams open")
    res.add("rss_peak_mb", round(peak, 1), "MB", "server RSS, peak seen")
    res.add("rss_end_mb", round(rss_end, 1), "MB", "server RSS at the end, streams closed, idle")
    res.note(f"reads: {loaded.tool}, {loaded.connections} connections, {duration:g} s, a random path of "
             f"{len(paths):,} (weighted by repetition) and a random one of {len(ds.tokens):,} users' tokens per request")
    res.raw = {"load": loaded.as_dict()}
    return res.as_dict()
