"""A lean HTTP/1.1 client for deliveries: one signed POST, its status and the start of its body.

A delivery is the hottest request a server makes (one per follower's inbox), and all it needs of the
answer is the status. aiohttp's general client costs about 0.1 ms of CPU per request (request and
response objects, cookie jar, timers, tracing, a stream reader); this one writes the request with one
`write` and parses the answer with `bytes.find`, on connections kept alive per host. Everything else
(fetches, WebFinger, redirects) stays with aiohttp.

The egress rules are the same as aiohttp's connector in `client.py`: names are resolved with the
guarded resolver (only allowed addresses come back, and those are the ones dialled), IP literals are
checked by the caller before anything is sent. A POST is never retried here (it is not idempotent):
a connection that fails is reported, and the delivery queue decides.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["ConnectionPool", "ResponseError"]

MAX_HEAD = 64 * 1024  # status line and headers
MAX_BODY = 1024 * 1024  # a body read to keep the connection; a longer one ends it
KEEPALIVE_SECONDS = 15.0  # idle connections are dropped after this long (aiohttp's default too)
IDLE_PER_HOST = 16
RESOLVE_SECONDS = 60.0

Resolve = Callable[[str, int], Awaitable[list[str]]]


class ResponseError(OSError):
    """The peer closed the connection or sent something that is not an HTTP/1.x response."""


class _Exchange(asyncio.Protocol):
    """One connection, one request at a time: collects the response to the request in hand."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._status = 0
        self._keep = False
        self._length: int | None = None  # body bytes still expected (Content-Length), None: not known yet
        self._chunked = False
        self._chunk_left = 0
        self._need_crlf = False
        self._until_eof = False
        self._head_done = False
        self._body = bytearray()  # the first 512 bytes of the body
        self._seen = 0

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._close()  # nothing was asked: a peer that talks out of turn loses the connection
            return
        self._buf += data
        try:
            self._parse()
        except ResponseError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        if self._waiter is not None and not self._waiter.done() and self._head_done and self._until_eof:
            self._finish(keep=False)
        else:
            self._fail(ResponseError("the server closed the connection"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ResponseError(f"the connection was lost: {exc}" if exc else "the server closed the connection"))

    # -- the exchange

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        """Write `request`; the future gives (status, first bytes of the body, connection reusable)."""
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._buf.clear()
        self._body.clear()
        self._head_done = self._chunked = self._until_eof = self._need_crlf = False
        self._length = None
        self._chunk_left = 0
        self._seen = 0
        self.transport.write(request)
        return self._waiter

    def reset(self) -> None:
        self._waiter = None

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _finish(self, keep: bool) -> None:
        assert self._waiter is not None
        if not keep:
            self._close()
        if not self._waiter.done():
            self._waiter.set_result((self._status, bytes(self._body), keep and not self.closed))

    def _parse(self) -> None:
        buf = self._buf
        while not self._head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ResponseError("response head too large")
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            status_line, _, rest = head.partition("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
                raise ResponseError(f"not an HTTP/1.x response: {status_line[:80]!r}")
            status = int(parts[1])
            if 100 <= status < 200:
                continue  # 100 Continue, 103 Early Hints: the answer follows
            headers: dict[str, str] = {}
            for line in rest.split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    key = name.strip().lower()
                    headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
            self._status = status
            connection = headers.get("connection", "").lower()
            self._keep = parts[0] == "HTTP/1.1" and "close" not in connection
            self._head_done = True
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._chunked = True
            elif status in (204, 304):
                self._length = 0
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"].split(",")[0])
                except ValueError:
                    raise ResponseError("invalid Content-Length") from None
                if self._length < 0:
                    raise ResponseError("invalid Content-Length")
            else:
                self._until_eof = True
                self._keep = False
        if self._chunked:
            self._parse_chunks()
            return
        if self._until_eof:
            self._take(len(buf))
            if self._seen > MAX_BODY:
                self._finish(keep=False)
            return
        assert self._length is not None
        if self._length > MAX_BODY:
            self._take(len(buf))
            self._finish(keep=False)  # no need to read a large body to the end: the connection goes
            return
        self._take(min(len(buf), self._length - self._seen))
        if self._seen >= self._length:
            self._finish(keep=self._keep and not buf)

    def _take(self, count: int) -> None:
        if len(self._body) < 512:
            self._body += self._buf[:min(count, 512 - len(self._body))]
        del self._buf[:count]
        self._seen += count

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            if self._chunk_left:
                count = min(len(buf), self._chunk_left)
                self._take(count)
                self._chunk_left -= count
                if self._chunk_left:
                    return
                self._need_crlf = True
            if self._need_crlf:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise ResponseError("malformed chunk")
                del buf[:2]
                self._need_crlf = False
                if self._seen > MAX_BODY:
                    self._finish(keep=False)
                    return
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ResponseError("malformed chunk size")
                return
            try:
                size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ResponseError("malformed chunk size") from None
            if size < 0:
                raise ResponseError("malformed chunk size")
            if size > 0:
                del buf[:end + 2]
                self._chunk_left = size
                continue
            # The last chunk, then any trailer fields, then an empty line.
            after = end + 2
            if buf[after:after + 2] == b"\r\n":
                done = after + 2
            else:
                trailers = buf.find(b"\r\n\r\n", after)
                if trailers < 0:
                    if len(buf) > MAX_HEAD:
                        raise ResponseError("trailers too large")
                    return
                done = trailers + 4
            del buf[:done]
            self._finish(keep=self._keep and not buf)
            return


class ConnectionPool:
    """Keep-alive connections per (scheme, host, port) for deliveries, at most `limit` open at once; a
    request (connecting included) may take `seconds`."""

    def __init__(self, resolve: Resolve, ssl: ssl_module.SSLContext | bool = True, limit: int = 256,
                 seconds: float = 10.0) -> None:
        self._resolve = resolve
        self.seconds = seconds  # for one request: connecting, sending, the whole answer
        self._ssl = ssl
        self._idle: dict[tuple[str, str, int], deque[_Exchange]] = {}
        self._addresses: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._slots = asyncio.Semaphore(limit)  # made inside the loop: the pool is made on first use
        self._open = 0
        self._ssl_context: ssl_module.SSLContext | None = None

    def _context(self) -> ssl_module.SSLContext:
        if isinstance(self._ssl, ssl_module.SSLContext):
            return self._ssl
        if self._ssl_context is None:
            context = ssl_module.create_default_context()
            if self._ssl is False:  # as aiohttp's ssl=False: no verification
                context.check_hostname = False
                context.verify_mode = ssl_module.CERT_NONE
            self._ssl_context = context
        return self._ssl_context

    async def _addresses_of(self, host: str, port: int, literal: bool) -> list[str]:
        if literal:
            return [host.strip("[]")]
        now = time.monotonic()
        found = self._addresses.get((host, port))
        if found is None or found[0] < now:
            if len(self._addresses) > 4096:
                self._addresses.clear()
            found = (now + RESOLVE_SECONDS, await self._resolve(host, port))
            self._addresses[(host, port)] = found
        return found[1]

    async def _connect(self, scheme: str, host: str, port: int, literal: bool) -> _Exchange:
        loop = asyncio.get_running_loop()
        last: Exception | None = None
        for address in await self._addresses_of(host, port, literal):
            try:
                if scheme == "https":
                    _, exchange = await loop.create_connection(
                        _Exchange, address, port, ssl=self._context(), server_hostname=host.strip("[]"))
                else:
                    _, exchange = await loop.create_connection(_Exchange, address, port)
                return exchange
            except OSError as exc:
                last = exc
        raise last or OSError(f"could not connect to {host}")

    def _take_idle(self, key: tuple[str, str, int]) -> _Exchange | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            exchange = idle.pop()
            if not exchange.closed and now - exchange.idle_since < KEEPALIVE_SECONDS:
                return exchange
            exchange._close()
            self._open -= 1
            self._slots.release()
        return None

    async def post(self, scheme: str, host: str, port: int, literal: bool, path: str,
                   headers: Mapping[str, str], body: bytes) -> tuple[int, bytes]:
        """POST `body` to `path` on (scheme, host, port): (status, the first 512 bytes of the body).
        `headers` must include Host. Raises OSError (ResponseError for a broken answer) or TimeoutError."""
        key = (scheme, host, port)
        head = [f"POST {path} HTTP/1.1\r\n"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} has a line break")
            head.append(f"{name}: {value}\r\n")
        head.append(f"Content-Length: {len(body)}\r\n\r\n")
        request = "".join(head).encode("latin-1") + body
        async with asyncio.timeout(self.seconds):
            exchange = self._take_idle(key)
            if exchange is None:
                if self._slots.locked():
                    self._evict_idle()
                await self._slots.acquire()
                try:
                    exchange = await self._connect(scheme, host, port, literal)
                except BaseException:
                    self._slots.release()
                    raise
                self._open += 1
            keep = False
            try:
                status, start, keep = await exchange.send(request)
            finally:
                exchange.reset()
                if keep and not exchange.closed:
                    exchange.idle_since = time.monotonic()
                    idle = self._idle.setdefault(key, deque())
                    idle.append(exchange)
                    while len(idle) > IDLE_PER_HOST:
                        self._drop(idle.popleft())
                else:
                    self._drop(exchange)
        return status, start

    def _evict_idle(self) -> None:
        """Every connection is open: close the longest idle one (of any host) to make room."""
        oldest: deque[_Exchange] | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                oldest = idle
        if oldest is not None:
            self._drop(oldest.popleft())

    def _drop(self, exchange: _Exchange) -> None:
        exchange._close()
        self._open -= 1
        self._slots.release()

    def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                self._drop(idle.pop())
        self._idle.clear()


def resolver_for(resolve: Callable[..., Awaitable[list[Any]]]) -> Resolve:
    """Adapt the guarded resolver's `resolve(host, port)` (ResolveResult dicts) to a list of addresses."""
    async def addresses(host: str, port: int) -> list[str]:
        return [str(r["host"]) for r in await resolve(host, port)]
    return addresses
