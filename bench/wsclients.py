"""Many streaming clients in one asyncio process (run it pinned to the load CPU): one WebSocket per
token to /api/v1/streaming?stream=user, half authenticated with the Authorization header and half with
access_token, each recording when every `update` event arrives (time.monotonic(), which is
system-wide on Linux, so the parent process can compare it with its own clock).

Protocol: prints `READY {"connected": n, "failed": m, ...}` on stdout once every connection is open
(or failed), then waits for a line `STOP` on stdin (or --max-seconds), closes everything, writes
{"receipts": {status_id: [t, ...]}, "per_connection": [...], ...} to the --result file (a file, not
the pipe: it runs to megabytes with many connections) and prints `DONE`.

    python -m bench.wsclients --url http://127.0.0.1:18080 --tokens tokens.txt --result out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import defaultdict
from typing import Any

import aiohttp


async def run(args: argparse.Namespace, tokens: list[str]) -> dict[str, Any]:
    receipts: dict[str, list[float]] = defaultdict(list)
    counts = [0] * len(tokens)
    closed_early = 0
    failed: list[str] = []
    other_events: dict[str, int] = defaultdict(int)
    sockets: list[aiohttp.ClientWebSocketResponse | None] = [None] * len(tokens)
    gate = asyncio.Semaphore(args.connect_concurrency)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30)
    stop = asyncio.Event()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def listen(i: int, token: str) -> None:
            nonlocal closed_early
            url = f"{args.url}/api/v1/streaming?stream=user"
            headers = {}
            if i % 2:
                url += f"&access_token={token}"
            else:
                headers["Authorization"] = f"Bearer {token}"
            try:
                async with gate:
                    ws = await session.ws_connect(url, headers=headers, autoping=True, heartbeat=None,
                                                  max_msg_size=4 * 1024 * 1024)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failed.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            sockets[i] = ws
            async for msg in ws:
                now = time.monotonic()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                event = frame.get("event")
                if event == "update":
                    receipts[json.loads(frame["payload"])["id"]].append(now)
                    counts[i] += 1
                else:
                    other_events[str(event or frame.get("error"))] += 1
            if not stop.is_set():
                closed_early += 1

        tasks = [asyncio.create_task(listen(i, t)) for i, t in enumerate(tokens)]
        started = time.monotonic()
        while sum(1 for s in sockets if s is not None) + len(failed) < len(tokens):
            if time.monotonic() - started > args.connect_seconds:
                break
            await asyncio.sleep(0.05)
        connected = sum(1 for s in sockets if s is not None)
        sys.stdout.write("READY " + json.dumps({"connected": connected, "failed": len(failed),
                                                "errors": failed[:5],
                                                "connect_seconds": round(time.monotonic() - started, 2)}) + "\n")
        sys.stdout.flush()

        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.max_seconds):
                while True:
                    line = await reader.readline()
                    if not line or line.strip() == b"STOP":
                        break
        stop.set()
        for ws in sockets:
            if ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"connected": connected, "failed": len(failed), "closed_early": closed_early,
            "receipts": receipts, "per_connection": counts, "other_events": dict(other_events)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's base URL (loopback only)")
    parser.add_argument("--tokens", required=True, help="file with one bearer token per line: one connection each")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="handshakes in flight at once")
    parser.add_argument("--connect-seconds", type=float, default=120.0, help="give up connecting after this")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="hard upper bound on the whole run")
    parser.add_argument("--result", required=True, help="file to write the receipts to (JSON)")
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127."):
        parser.error("the streaming clients only talk to loopback addresses")
    with open(args.tokens) as fh:
        tokens = [line.strip() for line in fh if line.strip()]
    try:
        import uvloop
        result = uvloop.run(run(args, tokens))
    except ImportError:
        result = asyncio.run(run(args, tokens))
    partial = f"{args.result}.partial"
    with open(partial, "w") as fh:
        json.dump(result, fh)
    os.replace(partial, args.result)
    sys.stdout.write("DONE\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
