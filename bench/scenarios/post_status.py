"""POST /api/v1/statuses by an author with 1,000 local followers, one request at a time (latency of
single requests, measured by a separate client process), then proof that the fan-out to every
follower's home feed happened, and how long after the answer it completed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

from bench import load as loads
from bench.context import LOAD_CPU, Context, Result

NAME = "post_status"
DESCRIPTION = "POST /api/v1/statuses p50/p99 by an author with 1,000 local followers; fan-out verified"
PATH = "/api/v1/statuses"
PACE_MS = 300.0


def _bodies(count: int, mentionable: list[str]) -> list[str]:
    """Realistic statuses: some hashtags, links and mentions (which also notify)."""
    out = []
    for i in range(count):
        parts = [f"Benchmark post number {i}: the quarterly report draft is ready for review by the team."]
        if i % 3 == 0:
            parts.append("#announcement #TeamNews")
        if i % 4 == 1:
            parts.append(f"https://example.org/reports/{i}")
        if i % 5 == 2:
            parts.insert(0, f"@{mentionable[i % len(mentionable)]}")
        out.append(json.dumps({"status": " ".join(parts), "visibility": "public"}))
    return out


def _feed_rows(db_path: str, ids: list[int]) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        return conn.execute(f"SELECT count(*) FROM home_feed WHERE status_id IN ({marks})", ids).fetchone()[0]
    finally:
        conn.close()


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    author = ds.author
    count = 100 if ctx.small else 300
    fans = [t for t in ds.tokens if t["follows_author"]]
    if not fans:
        raise RuntimeError("no token holder follows the author")
    work = ctx.work_root / "post_status"
    work.mkdir(parents=True, exist_ok=True)
    tokens_file = work / "author-token.txt"
    tokens_file.write_text(author["token"] + "\n")
    bodies_file = work / "bodies.jsonl"
    bodies_file.write_text("\n".join(_bodies(count, [f["username"] for f in fans[:20]])) + "\n")
    db_path = str(ctx.working_copy(ds) / "crosstalk.sqlite3")
    expected_each = author["followers"] + 1  # the followers and the author's own feed

    async with ctx.crosstalk(ds) as server:
        url = server.url + PATH
        for i in range(3):  # warm-up, unmeasured
            await ctx.post_json(url, {"status": f"warm-up post {i}"}, author["token"])
        await asyncio.sleep(1.0)
        idle = server.rss_mb()
        cpu_before = server.cpu_seconds()
        result = await loads.sequential(url, tokens_file=tokens_file, bodies_file=bodies_file, count=count,
                                        max_seconds=120, cpu=LOAD_CPU)
        answered = time.monotonic()
        ctx.check(result, "POST /api/v1/statuses")
        ids = [int(i) for i in result.extra.get("ids", [])]
        if len(ids) != result.requests:
            raise RuntimeError(f"only {len(ids)} of {result.requests} posts were created")

        # Fan-out: every follower's feed gets every post, off the request path (poll for 60 s at most).
        rows = 0
        deadline = answered + 60
        while time.monotonic() < deadline:
            rows = await asyncio.to_thread(_feed_rows, db_path, ids)
            if rows >= len(ids) * expected_each:
                break
            await asyncio.sleep(0.05)
        drained_ms = (time.monotonic() - answered) * 1000
        cpu_per_post = (server.cpu_seconds() - cpu_before) * 1000 / max(1, len(ids))
        after_rss = server.rss_mb()
        if rows < len(ids) * expected_each:
            raise RuntimeError(f"fan-out incomplete: {rows} of {len(ids) * expected_each} feed rows after 60 s")
        for fan in fans[:3]:  # and the followers see the newest post through the API
            page = await ctx.get_json(server.url + "/api/v1/timelines/home", fan["token"])
            if not page or int(page[0]["id"]) != ids[-1]:
                raise RuntimeError(f"{fan['username']} does not see the newest post on top of their home timeline")

        # One isolated post: how long until a follower's home timeline shows it.
        fan = fans[0]
        started = time.monotonic()
        posted = await ctx.post_json(url, {"status": "One more benchmark post #weekly"}, author["token"])
        post_ms = (time.monotonic() - started) * 1000
        visible_ms = None
        while time.monotonic() - started < 30:
            page = await ctx.get_json(server.url + "/api/v1/timelines/home?limit=1", fan["token"])
            if page and page[0]["id"] == posted["id"]:
                visible_ms = (time.monotonic() - started) * 1000
                break
            await asyncio.sleep(0.005)
        if visible_ms is None:
            raise RuntimeError("an isolated post never reached a follower's home timeline")

        # The same posts spaced out, so each one's fan-out is over before the next: the request
        # path alone, without queueing behind earlier fan-outs.
        paced = await loads.sequential(url, tokens_file=tokens_file, bodies_file=bodies_file,
                                       count=20 if ctx.small else 40, max_seconds=60, cpu=LOAD_CPU,
                                       pause_ms=PACE_MS)
        ctx.check(paced, "POST /api/v1/statuses, paced")

    ctx.log(f"POST /api/v1/statuses: p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms over {len(ids)} posts;"
            f" all {rows:,} feed rows {drained_ms:.0f} ms after the last answer")
    res.add("post_count", len(ids), "", "sequential POSTs measured")
    res.add("post_rps", round(result.rps, 1), "req/s", "POST req/s (one at a time)")
    res.add("post_p50_ms", round(result.p50_ms, 2), "ms", "POST p50")
    res.add("post_p99_ms", round(result.p99_ms, 2), "ms", "POST p99")
    res.add("paced_p50_ms", round(paced.p50_ms, 2), "ms", f"POST p50, {PACE_MS:.0f} ms apart ({paced.requests})")
    res.add("paced_p99_ms", round(paced.p99_ms, 2), "ms", f"POST p99, {PACE_MS:.0f} ms apart")
    res.add("post_cpu_ms", round(cpu_per_post, 2), "ms", "server CPU per POST, fan-out included")
    res.add("author_followers", author["followers"], "", "author's local followers")
    res.add("fanout_rows", rows, "", "home_feed rows written for the POSTs")
    res.add("fanout_complete_pct", round(100 * rows / (len(ids) * expected_each), 2), "%",
            "of the expected home_feed rows")
    res.add("fanout_drained_ms", round(drained_ms), "ms", "all feeds complete, after last answer")
    res.add("isolated_post_ms", round(post_ms, 2), "ms", "isolated POST answered in")
    res.add("isolated_visible_ms", round(visible_ms, 1), "ms", "isolated POST on a follower's timeline")
    res.add("rss_idle_mb", round(idle, 1), "MB", "server RSS idle")
    res.add("rss_after_mb", round(after_rss, 1), "MB", "server RSS after the POSTs")
    res.note("posts are sent back to back by one client process pinned to CPU 1, so each POST competes with the"
             " fan-out of the previous ones; 1 in 5 mentions a follower, 1 in 3 has hashtags, 1 in 4 a link")
    res.raw = {"load": {k: v for k, v in result.as_dict().items() if k != "extra"},
               "paced": {k: v for k, v in paced.as_dict().items() if k != "extra"}}
    return res.as_dict()
