"""1,000 WebSocket clients on /api/v1/streaming?stream=user, each a local follower of one author, in a
separate client process (bench/wsclients.py, pinned to the load CPU); the author posts N times, spaced;
per-client latency from the POST (sent, and answered) to the `update` event arriving, p50/p99, every
event accounted for; and the server's RSS idle, with the connections open, and after the posts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.context import LOAD_CPU, Context, Result
from bench.dataset import Dataset
from bench.loadgen import percentile
from server.ids import now_iso
from server.services import secrets

NAME = "streaming"
DESCRIPTION = "1,000 WebSocket user streams of an author's followers: update latency p50/p99 per client; RSS"
CLIENTS = 1000


def follower_tokens(ds: Dataset, db_path: Path, count: int) -> list[str]:
    """Tokens of `count` local followers of the author: the dataset's own where it has one, minted
    (inserted into the working copy, the way the generator does) for the others."""
    known = {t["account_id"]: t["token"] for t in ds.tokens}
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        followers = [r[0] for r in conn.execute(
            "SELECT f.account_id FROM follows f JOIN accounts a ON a.id = f.account_id"
            " WHERE f.target_account_id = ? AND a.domain = '' ORDER BY f.account_id", (ds.author["id"],))]
        if len(followers) < count:
            raise RuntimeError(f"the author has {len(followers)} local followers, {count} wanted")
        followers = followers[:count]
        app_id = conn.execute("SELECT id FROM apps WHERE client_id = 'crosstalk-bench'").fetchone()[0]
        next_id = conn.execute("SELECT max(id) FROM tokens").fetchone()[0] + 1
        now = now_iso()
        tokens = []
        conn.execute("BEGIN")
        for account_id in followers:
            token = known.get(account_id)
            if token is None:
                token = base64.urlsafe_b64encode(hashlib.sha256(b"bench-stream-%d" % account_id).digest()
                                                 ).decode().rstrip("=")
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO tokens (id, token_hash, app_id, account_id, scopes, created_at)"
                    " VALUES (?, ?, ?, ?, 'read write follow', ?)",
                    (next_id, secrets.token_hash(token), app_id, account_id, now)).rowcount
                next_id += inserted
            tokens.append(token)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return tokens


class Clients:
    """The client process: started, READY awaited, STOP sent, results read; always stopped."""

    def __init__(self, url: str, tokens_file: Path, max_seconds: float) -> None:
        self.cmd = procs.pinned([sys.executable, "-m", "bench.wsclients", "--url", url, "--tokens",
                                 str(tokens_file), "--max-seconds", str(max_seconds)], LOAD_CPU)
        self.proc: asyncio.subprocess.Process | None = None
        self.pid = 0

    async def start(self, limit_s: float) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd, cwd=procs.ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=64 * 1024 * 1024)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), limit_s)
        if not line.startswith(b"READY "):
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise RuntimeError(f"streaming clients failed to start: {line!r} {err.decode(errors='replace')[-2000:]}")
        return json.loads(line[6:])

    async def finish(self, limit_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"STOP\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), limit_s)
        await asyncio.wait_for(self.proc.wait(), limit_s)
        return json.loads(line)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    posts = 10 if ctx.small else 20
    spacing = 0.5 if ctx.small else 1.0
    data_dir = ctx.working_copy(ds)
    tokens = await asyncio.to_thread(follower_tokens, ds, data_dir / "crosstalk.sqlite3", CLIENTS)
    work = ctx.work_root / "streaming"
    work.mkdir(parents=True, exist_ok=True)
    tokens_file = work / "tokens.txt"
    tokens_file.write_text("".join(t + "\n" for t in tokens))
    author = ds.author

    async with ctx.crosstalk(ds) as server:
        await ctx.post_json(server.url + "/api/v1/statuses", {"status": "warm-up before streaming"}, author["token"])
        await asyncio.sleep(1.0)
        rss_idle = server.rss_mb()
        clients = Clients(server.url, tokens_file, max_seconds=posts * spacing + 300)
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
    res.target("update p99 <= 250 ms (from the POST being sent)", round(percentile(from_send, 99), 1), "<=", 250, "ms")
    res.target("every client got every update", round(100 * got / expected, 2) if expected else 0.0, ">=", 100, "%")
    res.note("clients: one asyncio process pinned to CPU 1, half with the token in Authorization, half in "
             "access_token; receipt times are time.monotonic() (system-wide), compared with the POST's send and "
             "answer times in the harness process; 'answered' can be negative when an event beats the answer")
    minted = sum(1 for t in tokens if t not in {x["token"] for x in ds.tokens})
    res.note(f"{minted} of the {CLIENTS} followers had no token in the dataset; tokens were minted for them in the "
             "working copy")
    res.raw = {"ready": ready, "other_events": result["other_events"],
               "per_connection_min": min(result["per_connection"]) if result["per_connection"] else 0}
    return res.as_dict()
