"""GET /api/v1/timelines/home (20 statuses, fully rendered) under load, against the hello-world
baseline measured in the same run; RSS idle and under load; and p50 on the large dataset against p50
on a dataset with the same users and follows but only 10,000 statuses."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.context import Context, Result
from bench.dataset import Dataset

NAME = "home_timeline"
DESCRIPTION = "home timeline req/s, p50/p99 vs hello-world baseline; RSS; p50 at 1M vs 10k statuses"
PATH = "/api/v1/timelines/home"


async def _check_page(ctx: Context, url: str, ds: Dataset) -> None:
    """The endpoint really answers with 20 fully rendered statuses for a sample of users."""
    short = 0
    for t in ds.tokens[:20]:
        page = await ctx.get_json(url + PATH, t["token"])
        if len(page) < 20:
            short += 1
        for s in page:
            shown = s["reblog"] or s
            if not (shown["account"]["username"] and "content" in shown and "favourited" in s):
                raise RuntimeError(f"home timeline item is not fully rendered: {s}")
    if short > 2:
        raise RuntimeError(f"{short} of 20 sampled home timelines had fewer than 20 statuses")


async def _measure(ctx: Context, ds: Dataset) -> dict[str, Any]:
    tokens = ds.path / "tokens.txt"
    async with ctx.crosstalk(ds) as server:
        await asyncio.sleep(0.5)
        started = server.rss_mb()  # after start-up and one /api/v1/instance request
        await _check_page(ctx, server.url, ds)  # also the "few warm-up requests" before idle RSS
        await asyncio.sleep(1.0)
        idle = server.rss_mb()
        loaded, peak = await ctx.load(server, PATH, tokens_file=tokens)
        ctx.check(loaded, f"home timeline ({ds.spec.statuses:,} statuses)")
        end_rss = server.rss_mb()
        single, _ = await ctx.load(server, PATH, tokens_file=tokens, connections=1, warmup=0,
                                   duration=max(2.0, ctx.duration / 2))
        ctx.check(single, "home timeline, one connection")
    ctx.log(f"home timeline at {ds.spec.statuses:,} statuses: {loaded.rps:,.0f} req/s, p50 {loaded.p50_ms:.2f} ms,"
            f" p99 {loaded.p99_ms:.2f} ms; one connection p50 {single.p50_ms:.2f} ms; RSS idle {idle:.1f} MB,"
            f" peak {peak:.1f} MB")
    return {"load": loaded, "single": single, "rss_started_mb": started, "rss_idle_mb": idle, "rss_peak_mb": peak, "rss_end_mb": end_rss}


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    large = await ctx.dataset()
    compare_statuses = 2_000 if ctx.small else 10_000
    compare = await ctx.dataset(ctx.spec.with_statuses(compare_statuses))
    base = await ctx.baseline()
    big = await _measure(ctx, large)
    cmp = await _measure(ctx, compare)
    b, h, c = base["load"], big["load"], cmp["load"]
    n = f"{large.spec.statuses:,}"
    m = f"{compare_statuses:,}"

    res.add("baseline_rps", round(b["rps"]), "req/s", "baseline hello-world req/s")
    res.add("baseline_p50_ms", round(b["p50_ms"], 2), "ms", "baseline hello-world p50")
    res.add("baseline_p99_ms", round(b["p99_ms"], 2), "ms", "baseline hello-world p99")
    res.add("home_rps", round(h.rps), "req/s", f"home timeline req/s ({n} statuses)")
    res.add("home_p50_ms", round(h.p50_ms, 2), "ms", f"home timeline p50 ({h.connections} conns)")
    res.add("home_p99_ms", round(h.p99_ms, 2), "ms", f"home timeline p99 ({h.connections} conns)")
    ratio = 100 * h.rps / b["rps"]
    res.add("home_vs_baseline_pct", round(ratio, 1), "%", "home timeline req/s as % of baseline")
    if h.cpu_ms_per_request and b["cpu_ms_per_request"]:
        res.add("baseline_cpu_ms", b["cpu_ms_per_request"], "ms", "baseline server CPU per request")
        res.add("home_cpu_ms", h.cpu_ms_per_request, "ms", "home timeline server CPU per request")
        res.add("home_vs_baseline_cpu_pct", round(100 * b["cpu_ms_per_request"] / h.cpu_ms_per_request, 1), "%",
                "same ratio from server CPU per request")
    res.add("home_single_p50_ms", round(big["single"].p50_ms, 2), "ms", "home timeline p50 (1 conn)")
    res.add("home_single_p99_ms", round(big["single"].p99_ms, 2), "ms", "home timeline p99 (1 conn)")
    res.add("rss_started_mb", round(big["rss_started_mb"], 1), "MB", "server RSS just after start")
    res.add("rss_idle_mb", round(big["rss_idle_mb"], 1), "MB", "server RSS idle (after 20 requests)")
    res.add("baseline_rss_mb", base["rss_idle_mb"], "MB", "baseline server RSS idle")
    res.add("rss_load_peak_mb", round(big["rss_peak_mb"], 1), "MB", "server RSS under load (peak)")
    res.add("rss_load_end_mb", round(big["rss_end_mb"], 1), "MB", "server RSS at end of load")
    res.add("compare_rps", round(c.rps), "req/s", f"home timeline req/s ({m} statuses)")
    res.add("compare_p50_ms", round(c.p50_ms, 2), "ms", f"home timeline p50 ({m} statuses)")
    res.add("compare_single_p50_ms", round(cmp["single"].p50_ms, 2), "ms", f"home timeline p50, 1 conn ({m})")
    if c.cpu_ms_per_request:
        res.add("compare_cpu_ms", c.cpu_ms_per_request, "ms", f"home timeline CPU per request ({m})")
    scale = h.p50_ms / c.p50_ms if c.p50_ms else float("inf")
    single_scale = big["single"].p50_ms / cmp["single"].p50_ms if cmp["single"].p50_ms else float("inf")
    res.add("p50_large_over_small", round(scale, 2), "x", f"p50 at {n} / p50 at {m} statuses")
    res.add("single_p50_large_over_small", round(single_scale, 2), "x", f"1-conn p50 at {n} / at {m}")

    res.note("the CPU-per-request lines are the noise-resistant view: req/s and latency move with whatever else "
             "runs on the machine, server CPU time per request much less")
    res.note(f"load: {h.tool}, {h.connections} connections, server pinned to CPU 0, load generator to CPU 1; "
             f"tokens of {len(large.tokens):,} users picked at random per request")
    res.note(large.meta["notes"])
    if ctx.small:
        res.note("--small: the 1.3x comparison uses 2,000 vs 20,000 statuses; the full run uses 10,000 vs 1,000,000")
    res.raw = {"baseline": base,
               "large": {k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in big.items()},
               "compare": {k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in cmp.items()}}
    return res.as_dict()
