"""Every GET a Mastodon app (or a peer) makes, timed one request at a time on the dataset: the slowest
median. Timelines under load have scenarios of their own; this one catches an endpoint that reads a
whole table (a count of the statuses, a filter that few rows match walked over all of them), which a
small instance never shows and a large one pays on every call. On the full dataset such reads took
0.3 to 0.7 s a call (the instance's figures, the public timeline with only_media) before they were
read from indexes."""

from __future__ import annotations

import sqlite3
import statistics
import time
from typing import Any

import aiohttp

from bench.context import Context, Result
from bench.dataset import Dataset

NAME = "endpoints"
DESCRIPTION = "every GET an app makes, one request at a time: the slowest median (no endpoint may read a whole table)"
ROUNDS = 5


def _paths(ds: Dataset, me: int, status_id: int) -> list[str]:
    conn = sqlite3.connect(f"file:{ds.db_path}?mode=ro", uri=True)
    try:
        busiest = conn.execute("SELECT account_id FROM statuses WHERE local = 1 GROUP BY account_id"
                               " ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        tag = conn.execute("SELECT t.name FROM tags t JOIN status_tags st ON st.tag_id = t.id"
                           " GROUP BY t.id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    author = ds.author
    name, domain = author["username"], ds.spec.domain
    return [
        "/api/v1/instance", "/api/v2/instance", "/api/v1/instance/peers", "/api/v1/instance/activity",
        "/nodeinfo/2.0", "/nodeinfo/2.1", f"/.well-known/webfinger?resource=acct:{name}@{domain}",
        "/api/v1/accounts/verify_credentials", "/api/v1/preferences", "/api/v1/custom_emojis",
        "/api/v1/announcements", "/api/v1/filters", "/api/v2/filters", "/api/v1/lists", "/api/v1/followed_tags",
        "/api/v1/markers?timeline[]=home&timeline[]=notifications", "/api/v1/notifications",
        "/api/v1/conversations", "/api/v1/follow_requests", "/api/v1/favourites", "/api/v1/bookmarks",
        "/api/v1/mutes", "/api/v1/blocks", "/api/v1/domain_blocks", "/api/v1/scheduled_statuses",
        "/api/v1/trends/tags", "/api/v1/trends/statuses", "/api/v1/trends/links", "/api/v2/suggestions",
        "/api/v1/directory?local=true", "/api/v1/directory?order=new",
        "/api/v1/timelines/home", "/api/v1/timelines/public", "/api/v1/timelines/public?local=true",
        "/api/v1/timelines/public?remote=true", "/api/v1/timelines/public?only_media=true",
        f"/api/v1/timelines/tag/{tag}", f"/api/v1/timelines/tag/{tag}?local=true",
        f"/api/v1/accounts/{busiest}", f"/api/v1/accounts/{busiest}/statuses",
        f"/api/v1/accounts/{busiest}/statuses?pinned=true", f"/api/v1/accounts/{busiest}/statuses?only_media=true",
        f"/api/v1/accounts/{busiest}/statuses?exclude_replies=true", f"/api/v1/accounts/{busiest}/followers",
        f"/api/v1/accounts/{busiest}/following", f"/api/v1/accounts/relationships?id[]={busiest}",
        f"/api/v1/accounts/familiar_followers?id[]={busiest}", f"/api/v1/accounts/lookup?acct={name}",
        f"/api/v1/accounts/{me}/followers", f"/api/v1/statuses/{status_id}",
        f"/api/v1/statuses/{status_id}/context", f"/api/v1/statuses/{status_id}/favourited_by",
        f"/api/v1/statuses/{status_id}/reblogged_by", f"/api/v1/tags/{tag}",
        "/api/v2/search?q=roadmap&type=statuses", f"/api/v2/search?q={name}&type=accounts",
        f"/api/v2/search?q={tag}&type=hashtags", "/api/v1/accounts/search?q=a&limit=4",
        f"/users/{name}", f"/@{name}",
    ]


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    token = ds.tokens[0]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, dict[str, float]] = {}
    async with ctx.crosstalk(ds) as server, aiohttp.ClientSession(headers=headers) as session:
        async def get(path: str) -> tuple[int, Any]:
            async with session.get(server.url + path, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                body = await resp.read()
                return resp.status, body
        async with session.get(server.url + "/api/v1/accounts/verify_credentials") as resp:
            me = int((await resp.json())["id"])
        async with session.get(server.url + "/api/v1/timelines/home") as resp:
            home = await resp.json()
        if not home:
            raise RuntimeError("the first token's home timeline is empty: nothing to read a status from")
        for path in _paths(ds, me, int(home[0]["id"])):
            status, _ = await get(path)  # the first call fills caches; the rounds after it are timed
            if status >= 500 or status == 404:
                raise RuntimeError(f"GET {path} answered {status}:\n{server.log_tail()}")
            walls, cpu_before = [], server.cpu_seconds()
            for _ in range(ROUNDS):
                started = time.perf_counter()
                await get(path)
                walls.append((time.perf_counter() - started) * 1000)
            timings[path] = {"p50_ms": round(statistics.median(walls), 2),
                             "cpu_ms": round((server.cpu_seconds() - cpu_before) * 1000 / ROUNDS, 2)}
    slowest = sorted(timings.items(), key=lambda item: item[1]["p50_ms"], reverse=True)
    res.add("endpoints", len(timings), "", "GET endpoints timed (each once to warm, then five times)")
    res.add("slowest_p50_ms", slowest[0][1]["p50_ms"], "ms", f"slowest median: GET {slowest[0][0]}")
    for path, figures in slowest[:5]:
        ctx.log(f"endpoints: GET {path}: p50 {figures['p50_ms']} ms, server CPU {figures['cpu_ms']} ms a call")
    res.note("one request at a time from one client, the first token's user; server CPU per call is read from "
             "/proc in 10 ms ticks, so small figures are coarse")
    res.raw = {"timings": timings}
    return res.as_dict()
