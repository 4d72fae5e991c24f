"""The baseline: a bare aiohttp + uvloop hello-world server, run exactly like Crosstalk (same pinning,
same load generator) so that the benchmark can report ratios instead of noisy absolute numbers.

    python bench/baseline_server.py --port 18081
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, World!")


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/api/v1/timelines/home", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
