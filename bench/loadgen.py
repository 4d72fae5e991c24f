"""HTTP load generator in its own process (the fallback when wrk is absent, and the client for
sequential POST latency). Bounded both ways: it stops at --max-requests or after --duration seconds,
whichever comes first. Prints one JSON line with counts and latency percentiles (ms).

    python -m bench.loadgen --url http://127.0.0.1:18080/api/v1/timelines/home --tokens tokens.txt \
        --connections 16 --duration 10 --max-requests 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections import Counter
from typing import Any

import aiohttp


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def summarise(latencies_ms: list[float], elapsed: float, statuses: Counter[int], errors: int) -> dict[str, Any]:
    lat = sorted(latencies_ms)
    done = len(lat)
    return {
        "requests": done, "duration_s": round(elapsed, 3), "rps": round(done / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50), 3), "p90_ms": round(percentile(lat, 90), 3),
        "p99_ms": round(percentile(lat, 99), 3), "max_ms": round(lat[-1], 3) if lat else 0.0,
        "mean_ms": round(sum(lat) / done, 3) if done else 0.0,
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= code < 400), "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def read_lines(path: str | None) -> list[str]:
    if not path:
        return []
    with open(path) as fh:
        return [line.strip() for line in fh if line.strip()]


async def run(args: argparse.Namespace, tokens: list[str], bodies: list[bytes], paths: list[str]) -> dict[str, Any]:
    rng = random.Random(args.seed)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    ids: list[str] = []
    errors = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    started = time.perf_counter()
    deadline = started + args.duration
    scheme, _, rest = args.url.partition("://")
    origin = f"{scheme}://{rest.split('/', 1)[0]}"  # --paths replace the URL's path

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal issued, errors
        while issued < args.max_requests and time.perf_counter() < deadline:
            n = issued
            issued += 1
            headers = {}
            if tokens:
                token = tokens[n % len(tokens)] if args.sequential_tokens else rng.choice(tokens)
                headers["Authorization"] = f"Bearer {token}"
            data = None
            if bodies:
                data = bodies[n % len(bodies)]
                headers["Content-Type"] = "application/json"
            url = origin + rng.choice(paths) if paths else args.url
            t = time.perf_counter()
            try:
                async with session.request(args.method, url, headers=headers, data=data) as resp:
                    body = await resp.read()
                    latencies.append((time.perf_counter() - t) * 1000)
                    statuses[resp.status] += 1
                    if args.record_ids and resp.status < 300:
                        ids.append(json.loads(body)["id"])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                errors += 1
            if args.pause_ms:
                await asyncio.sleep(args.pause_ms / 1000)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(args.connections)))
    result = summarise(latencies, time.perf_counter() - started, statuses, errors)
    if args.record_ids:
        result["ids"] = ids
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--tokens", help="file with one bearer token per line (a random one per request)")
    parser.add_argument("--sequential-tokens", action="store_true", help="rotate through tokens in order")
    parser.add_argument("--bodies", help="file with one JSON body per line, sent in turn")
    parser.add_argument("--paths", help="file with one path per line (a random one per request, on --url's host)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (upper bound)")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="upper bound on requests")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    parser.add_argument("--pause-ms", type=float, default=0.0, help="pause after each answer (per connection)")
    parser.add_argument("--record-ids", action="store_true", help="collect the JSON 'id' of each answer")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        parser.error("the load generator only talks to loopback addresses")
    tokens = read_lines(args.tokens)
    bodies = [line.encode() for line in read_lines(args.bodies)]
    paths = read_lines(args.paths)
    if args.paths and not all(p.startswith("/") for p in paths):
        parser.error("--paths: every line must be a path starting with /")
    try:
        import uvloop
        result = uvloop.run(run(args, tokens, bodies, paths))
    except ImportError:
        result = asyncio.run(run(args, tokens, bodies, paths))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
