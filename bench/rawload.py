"""Closed-loop HTTP/1.1 load from pre-built raw requests, in its own process: each request is sent as
given (own headers, own body — e.g. pre-signed inbox POSTs, or searches with their own query and
token), over --connections keep-alive connections. Bounded both ways: stops after --max-requests or
--duration seconds, whichever comes first. Without --cycle every request is sent at most once.

Requests file: records of b"<length> <label>\\n" followed by <length> raw bytes. Prints one JSON line
with counts, latency percentiles (ms) overall and per label, and time.monotonic() stamps of the first
send and of the last 2xx answer (CLOCK_MONOTONIC is system-wide, so other processes can compare).

    python -m bench.rawload --port 18080 --requests reqs.bin --connections 16 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from bench.loadgen import percentile


def read_requests(path: str) -> list[tuple[bytes, str]]:
    out = []
    with open(path, "rb") as fh:
        data = fh.read()
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        length, _, label = data[pos:end].decode().partition(" ")
        start = end + 1
        out.append((data[start:start + int(length)], label))
        pos = start + int(length)
    return out


def write_requests(path: str, requests: list[tuple[bytes, str]]) -> None:
    with open(path, "wb") as fh:
        for raw, label in requests:
            fh.write(f"{len(raw)} {label}\n".encode() + raw)


def _response_end(buf: bytearray) -> tuple[int, int, bool] | None:
    """(status, bytes the response takes, connection closes) once `buf` holds a whole response."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    pos = head_end + 4
    if "content-length" in headers:
        total = pos + int(headers["content-length"])
        if len(buf) < total:
            return None
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2 + size + 2
            if len(buf) < pos:
                return None
            if size == 0:
                break
        total = pos
    else:
        raise ValueError("response without Content-Length or chunked encoding")
    return status, total, headers.get("connection") == "close"


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bool]] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            found = _response_end(self.buf)
        except ValueError as exc:
            self.waiter.set_exception(exc)
            return
        if found is not None:
            status, size, close = found
            del self.buf[:size]
            self.waiter.set_result((status, close))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))


async def run(args: argparse.Namespace, requests: list[tuple[bytes, str]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    limit = args.max_requests if args.cycle else min(args.max_requests, len(requests))
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[int] = Counter()
    label_errors: Counter[str] = Counter()
    errors = 0
    issued = 0
    first_sent: float | None = None
    last_ok: float | None = None
    started = time.perf_counter()
    deadline = started + args.duration

    async def connect() -> _Conn:
        _, conn = await loop.create_connection(_Conn, args.host, args.port)
        return conn

    async def worker() -> None:
        nonlocal issued, errors, first_sent, last_ok
        conn: _Conn | None = None
        while issued < limit and time.perf_counter() < deadline:
            raw, label = requests[issued % len(requests)]
            issued += 1
            try:
                if conn is None or conn.lost:
                    conn = await connect()
                conn.waiter = loop.create_future()
                t = time.perf_counter()
                if first_sent is None:
                    first_sent = time.monotonic()
                assert conn.transport is not None
                conn.transport.write(raw)
                status, close = await asyncio.wait_for(conn.waiter, args.timeout)
            except (OSError, ConnectionError, TimeoutError, ValueError):
                errors += 1
                label_errors[label] += 1
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            latencies[label].append((time.perf_counter() - t) * 1000)
            statuses[status] += 1
            if 200 <= status < 300:
                last_ok = time.monotonic()
            else:
                label_errors[label] += 1
            if close:
                assert conn.transport is not None
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(args.connections)))
    elapsed = time.perf_counter() - started
    every = sorted(x for values in latencies.values() for x in values)

    def summary(lat: list[float]) -> dict[str, Any]:
        lat = sorted(lat)
        return {"requests": len(lat), "p50_ms": round(percentile(lat, 50), 3),
                "p90_ms": round(percentile(lat, 90), 3), "p99_ms": round(percentile(lat, 99), 3),
                "max_ms": round(lat[-1], 3) if lat else 0.0,
                "mean_ms": round(sum(lat) / len(lat), 3) if lat else 0.0}

    result = summary(every)
    result.update({
        "duration_s": round(elapsed, 3), "rps": round(len(every) / elapsed, 1) if elapsed else 0.0,
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= code < 300), "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "first_sent_at": first_sent, "last_ok_at": last_ok,
        "by_label": {label: {**summary(lat), "failed": label_errors[label]} for label, lat in sorted(latencies.items())},
    })
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="file of pre-built raw requests (see above)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (upper bound)")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="upper bound on requests")
    parser.add_argument("--cycle", action="store_true", help="reuse the requests round-robin")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("the load generator only talks to loopback addresses")
    requests = read_requests(args.requests)
    if not requests:
        parser.error("no requests in the file")
    try:
        import uvloop
        result = uvloop.run(run(args, requests))
    except ImportError:
        result = asyncio.run(run(args, requests))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
