"""Full-text status search, GET /api/v2/search?q=...&type=statuses, on the large dataset: p50/p99 one
request at a time (the latency a user sees) and under 16 connections, per kind of query, with the
tokens of many users (so the visibility rules — followed private posts, mentions — apply per viewer).
Compared with the hello-world baseline measured the same way in the same run."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from typing import Any
from urllib.parse import quote, urlencode

from bench import load as loads
from bench.context import LOAD_CPU, Context, Result
from bench.dataset import _WORDS, Dataset
from bench.rawload import write_requests

NAME = "search"
DESCRIPTION = "GET /api/v2/search?type=statuses p50/p99 per kind of query on 1M statuses vs hello-world"
PATH = "/api/v2/search"
REQUESTS = 3000  # pre-built requests, cycled through (each a random kind, user and query)

_COMMON = ["budget", "outage", "report", "meeting", "security", "the", "welcome", "deadline", "roadmap", "coffee"]
_SYNTAX = ["budget*", "NEAR(policy", "data:analysis", "(review OR audit)", '"unbalanced quote', "report^2",
           "lunch -parking", "c++ server", "AND", "#Kudos team"]
_ABSENT = ["xylophone", "quokka", "zeitgeist", "kerfuffle"]


def _queries(ds: Dataset, rng: random.Random) -> dict[str, list[str]]:
    """Realistic queries by kind. Rare words are mentioned usernames (a dozen posts each); phrases
    are two adjacent words taken from real posts, so they do match."""
    conn = sqlite3.connect(f"file:{ds.db_path}?mode=ro", uri=True)
    try:
        high = conn.execute("SELECT max(id) FROM statuses").fetchone()[0]
        low = conn.execute("SELECT min(id) FROM statuses").fetchone()[0]
        phrases: list[str] = []
        for _ in range(200):
            row = conn.execute("SELECT source_text FROM statuses WHERE id >= ? AND reblog_of_id IS NULL"
                               " ORDER BY id LIMIT 1", (rng.randint(low, high),)).fetchone()
            words = [w.strip(".,!?#@").lower() for w in (row[0] if row else "").split()]
            words = [w for w in words if w.isalpha()]
            if len(words) >= 2:
                i = rng.randrange(len(words) - 1)
                phrases.append(f'"{words[i]} {words[i + 1]}"')
            if len(phrases) >= 40:
                break
        mentioned = [r[0] for r in conn.execute(
            "SELECT a.username FROM mentions m JOIN accounts a ON a.id = m.account_id"
            " GROUP BY m.account_id ORDER BY m.account_id LIMIT 400")]
    finally:
        conn.close()
    vocabulary = sorted(set(_WORDS) - {"a", "or", "and", "to", "of", "by", "in", "on", "at", "it", "is"})
    return {
        "common_word": _COMMON,
        "rare_word": rng.sample(mentioned, min(40, len(mentioned))),
        "two_words": [" ".join(rng.sample(vocabulary, 2)) for _ in range(40)],
        "phrase": phrases,
        "fts_syntax": _SYNTAX,
        "no_match": _ABSENT,
    }


def _build(ds: Dataset, queries: dict[str, list[str]], count: int, rng: random.Random) -> list[tuple[bytes, str, str]]:
    kinds = sorted(queries)
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        q = rng.choice(queries[kind])
        token = rng.choice(ds.tokens)["token"]
        path = f"{PATH}?{urlencode({'q': q, 'type': 'statuses', 'limit': 20}, quote_via=quote)}"
        out.append((loads.raw_request("GET", path, ds.spec.domain, {"Authorization": f"Bearer {token}"}), kind, path))
    rng.shuffle(out)
    return out


def _private_ok(db_path: str, viewer_id: int, statuses: list[dict[str, Any]]) -> int:
    """How many non-public results the viewer may not see (must be 0)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    bad = 0
    try:
        for s in statuses:
            if s["visibility"] in ("public", "unlisted"):
                continue
            author = int(s["account"]["id"])
            sid = int(s["id"])
            if author == viewer_id:
                continue
            follows = conn.execute("SELECT 1 FROM follows WHERE account_id = ? AND target_account_id = ?",
                                   (viewer_id, author)).fetchone()
            mentioned = conn.execute("SELECT 1 FROM mentions WHERE status_id = ? AND account_id = ?",
                                     (sid, viewer_id)).fetchone()
            if s["visibility"] == "private" and follows or mentioned:
                continue
            bad += 1
    finally:
        conn.close()
    return bad


async def _check(ctx: Context, url: str, ds: Dataset, queries: dict[str, list[str]], db_path: str) -> dict[str, Any]:
    """Every kind answers 200; common words, phrases and rare words find posts containing them; no
    result is a private post the viewer may not see."""
    found: dict[str, int] = {}
    private_seen = 0
    for kind, qs in queries.items():
        hits = 0
        for i, q in enumerate(qs[:5]):
            viewer = ds.tokens[(i * 37) % len(ds.tokens)]
            page = await ctx.get_json(f"{url}{PATH}?{urlencode({'q': q, 'type': 'statuses'})}", viewer["token"])
            statuses = page["statuses"]
            hits += len(statuses)
            private_seen += sum(1 for s in statuses if s["visibility"] == "private")
            if _private_ok(db_path, int(viewer["account_id"]), statuses):
                raise RuntimeError(f"search {q!r} showed {viewer['username']} a private post they may not see")
            if kind in ("common_word", "rare_word") and statuses:
                word = q.lower()
                if not all(word in (s["content"] + s["spoiler_text"]).lower() for s in statuses):
                    raise RuntimeError(f"search {q!r} returned posts without the word")
        found[kind] = hits
    for kind in ("common_word", "two_words", "phrase", "rare_word"):
        if not found[kind]:
            raise RuntimeError(f"no {kind} query found anything: {queries[kind][:5]}")
    if found["no_match"]:
        raise RuntimeError("a query for a word no post contains found posts")
    return {"results_in_check": found, "private_results_in_check": private_seen}


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    rng = random.Random(7)
    queries = await asyncio.to_thread(_queries, ds, rng)
    built = _build(ds, queries, REQUESTS, rng)
    work = ctx.work_root / "search"
    work.mkdir(parents=True, exist_ok=True)
    requests_file = work / "requests.bin"
    write_requests(requests_file, [(raw, kind) for raw, kind, _ in built])
    hello_file = work / "hello.bin"
    write_requests(hello_file, [(loads.raw_request("GET", "/", ds.spec.domain), "hello")])
    base = await ctx.baseline()
    conns = ctx.connections
    duration = ctx.duration

    # The baseline server under the same raw client, one connection and `conns` connections.
    async with ctx.baseline_server() as hello:
        await loads.raw_load(hello.port, hello_file, connections=1, duration=1.0, max_requests=10**6, cpu=LOAD_CPU,
                             cycle=True)
        hello_one = await loads.raw_load(hello.port, hello_file, connections=1, duration=min(duration, 5.0),
                                         max_requests=10**6, cpu=LOAD_CPU, cycle=True)
        hello_many = await loads.raw_load(hello.port, hello_file, connections=conns, duration=min(duration, 5.0),
                                          max_requests=10**6, cpu=LOAD_CPU, cycle=True)

    db_path = str(ctx.working_copy(ds) / "crosstalk.sqlite3")
    async with ctx.crosstalk(ds) as server:
        checked = await _check(ctx, server.url, ds, queries, db_path)
        # Warm-up (page cache, statement caches), then one connection, then `conns`.
        await loads.raw_load(server.port, requests_file, connections=4, duration=ctx.warmup + 2, max_requests=REQUESTS,
                             cpu=LOAD_CPU, cycle=True)
        cpu0 = server.cpu_seconds()
        one = await loads.raw_load(server.port, requests_file, connections=1, duration=duration, max_requests=10**6,
                                   cpu=LOAD_CPU, cycle=True)
        one_cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / max(1, one["requests"])
        cpu0 = server.cpu_seconds()
        many = await loads.raw_load(server.port, requests_file, connections=conns, duration=duration,
                                    max_requests=10**6, cpu=LOAD_CPU, cycle=True)
        many_cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / max(1, many["requests"])
        rss = server.rss_mb()
    for what, r in (("one connection", one), (f"{conns} connections", many)):
        if r["non_2xx"] or r["errors"]:
            raise RuntimeError(f"search ({what}): {r['non_2xx']} non-2xx answers, {r['errors']} errors: {r['statuses']}")

    ctx.log(f"search: 1 conn p50 {one['p50_ms']:.2f} ms p99 {one['p99_ms']:.2f} ms; {conns} conns "
            f"{many['rps']:,.0f} req/s p50 {many['p50_ms']:.2f} ms")
    res.add("search_p50_ms", one["p50_ms"], "ms", "search p50, 1 connection (all kinds)")
    res.add("search_p99_ms", one["p99_ms"], "ms", "search p99, 1 connection (all kinds)")
    for kind, s in one["by_label"].items():
        res.add(f"{kind}_p50_ms", s["p50_ms"], "ms", f"  {kind} p50 / p99 ({s['requests']} req)")
        res.add(f"{kind}_p99_ms", s["p99_ms"], "ms", f"  {kind} p99")
    res.add("search_cpu_ms", round(one_cpu_ms, 2), "ms", "server CPU per search (1 connection)")
    res.add("hello_one_p50_ms", hello_one["p50_ms"], "ms", "baseline p50, 1 connection (same client)")
    res.add("search_over_hello_one_p50", round(one["p50_ms"] / hello_one["p50_ms"], 1), "x",
            "search p50 / baseline p50, 1 connection")
    res.add("search_rps", round(many["rps"]), "req/s", f"search req/s, {conns} connections")
    res.add("search_many_p50_ms", many["p50_ms"], "ms", f"search p50, {conns} connections")
    res.add("search_many_p99_ms", many["p99_ms"], "ms", f"search p99, {conns} connections")
    res.add("search_many_cpu_ms", round(many_cpu_ms, 2), "ms", f"server CPU per search ({conns} connections)")
    res.add("hello_many_rps", round(hello_many["rps"]), "req/s", f"baseline req/s, {conns} conns (same client)")
    res.add("hello_many_p50_ms", hello_many["p50_ms"], "ms", f"baseline p50, {conns} conns (same client)")
    res.add("baseline_wrk_p50_ms", round(base["load"]["p50_ms"], 2), "ms", f"baseline p50, wrk {conns} conns")
    res.add("search_over_baseline_wrk_p50", round(many["p50_ms"] / base["load"]["p50_ms"], 1), "x",
            f"search p50 / baseline (wrk) p50, {conns} conns")
    res.add("search_vs_baseline_rps_pct", round(100 * many["rps"] / hello_many["rps"], 1), "%",
            "search req/s as % of baseline (same client)")
    res.add("rss_mb", round(rss, 1), "MB", "server RSS after the runs")
    res.note("kinds, in equal shares: common_word (one frequent word), rare_word (a mentioned username, a dozen "
             "posts), two_words, phrase (two adjacent words from a real post, quoted), fts_syntax (*, NEAR(, :, "
             "(, OR, ^, unbalanced quote, -exclusion, #), no_match; each request with a random one of "
             f"{len(ds.tokens):,} users' tokens")
    res.note(f"results seen in the correctness check: {checked['results_in_check']}; "
             f"{checked['private_results_in_check']} followers-only posts, each checked visible to its viewer")
    res.note(f"load: bench/rawload.py (raw HTTP/1.1, pinned to CPU {LOAD_CPU}); the baseline figures with the same "
             "client are the fair comparison, the wrk one is the harness's")
    res.raw = {"queries": queries, "one": one, "many": many, "hello_one": hello_one, "hello_many": hello_many}
    return res.as_dict()
