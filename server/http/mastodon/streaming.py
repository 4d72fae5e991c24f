"""/api/v1/streaming: a WebSocket carrying any number of streams (subscribe/unsubscribe messages),
server-sent events for one stream per request, and /api/v1/streaming/health.

Framing only; what each connection receives is decided in server/services/streaming.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from server.http.base import STATE, add_routes, json_response, require_user_id, state_of
from server.metrics import STREAMING_CONNECTIONS
from server.services import oauth as oauth_service
from server.services import streaming as service
from server.services.errors import Unauthorized
from server.services.streaming import Connection, StreamError, StreamHub

log = logging.getLogger("crosstalk.streaming")
HUB = web.AppKey("streaming_hub", StreamHub)
_encoder = msgspec.json.Encoder()
WS_PING_SECONDS = 30.0
MAX_CLIENT_MESSAGE = 64 * 1024
SSE_PATHS = {
    "user": "user", "user/notification": "user:notification", "public": "public", "public/local": "public:local",
    "public/remote": "public:remote", "hashtag": "hashtag", "hashtag/local": "hashtag:local", "list": "list",
    "direct": "direct",
}


class Caller(msgspec.Struct, frozen=True):
    account_id: int  # not the account record: an instance may hold 10,000 streams of as many people
    scopes: frozenset[str]
    bearer: str  # the token, to check again when the account's access changes
    protocol: str | None  # the WebSocket subprotocol that carried the token, echoed in the handshake


async def _caller(request: web.Request) -> Caller:
    """The user behind the token from Authorization, access_token, or Sec-WebSocket-Protocol."""
    protocol = None
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        bearer = authorization[7:].strip()
    elif "access_token" in request.query:
        bearer = request.query["access_token"]
    else:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if not offered:
            raise Unauthorized("Missing access token")
        creds = await oauth_service.credentials_for(state_of(request), offered[0])
        if creds is None:
            raise Unauthorized("Invalid access token")
        request["credentials"] = creds
        bearer = protocol = offered[0]
    account_id = await require_user_id(request)
    return Caller(account_id, request["credentials"].scopes, bearer, protocol)


def _stream_error(exc: StreamError) -> web.Response:
    return json_response({"error": exc.message, "status": exc.status}, status=exc.status)


def _ws_error(exc: StreamError) -> str:
    """Mastodon's error event on a socket: {"error": ..., "status": ...}."""
    return _encoder.encode({"error": exc.message, "status": exc.status}).decode()


async def _safe_messages(conn: Connection, event: Any) -> list[service.Message]:
    try:
        return await conn.messages(event)
    except Exception:  # one bad event must not end the stream
        log.exception("streaming event %s on %s failed", event.name, event.topic)
        return []


# -- WebSocket ------------------------------------------------------------------------------------------

class _Sender:
    """Sends what arrives for one WebSocket connection, in order. It runs only while there is something
    to send, started by the connection's queue when an event arrives: an idle stream holds no task (an
    instance may hold 10,000 of them)."""

    __slots__ = ("conn", "ws", "task")

    def __init__(self, conn: Connection, ws: web.WebSocketResponse) -> None:
        self.conn = conn
        self.ws = ws
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        conn, ws = self.conn, self.ws
        try:
            while not ws.closed and not conn.closing.is_set():
                try:
                    event = conn.sub.queue.get_nowait()
                except asyncio.QueueEmpty:
                    return  # the next event starts a new run
                for stream, name, payload in await _safe_messages(conn, event):
                    try:
                        await ws.send_str(conn.hub.frame(stream, name, payload))
                    except (ConnectionError, RuntimeError):
                        return
            if conn.revoked and not ws.closed:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"access token revoked")
        finally:
            self.task = None

    async def stop(self) -> None:
        self.conn.sub.queue.notify(None)
        task = self.task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _client_message(ws: web.WebSocketResponse, conn: Connection, account_id: int, scopes: frozenset[str],
                          request: web.Request, text: str) -> None:
    """{"type": "subscribe"|"unsubscribe", "stream": name, "tag"|"list": ...}; anything else gets an error event."""
    try:
        message = msgspec.json.decode(text)
    except msgspec.DecodeError:
        await ws.send_str(_ws_error(StreamError("Invalid JSON")))
        return
    if not isinstance(message, dict):
        await ws.send_str(_ws_error(StreamError("Messages must be JSON objects")))
        return
    kind, stream = message.get("type"), message.get("stream")
    if kind not in ("subscribe", "unsubscribe"):
        await ws.send_str(_ws_error(StreamError("Unknown message type, use subscribe or unsubscribe")))
        return
    params = {k: v for k, v in message.items() if k not in ("type", "stream")}
    try:
        channel = await service.resolve(state_of(request), account_id, scopes, stream, params)
    except StreamError as exc:
        await ws.send_str(_ws_error(exc))
        return
    if kind == "subscribe":
        conn.subscribe(channel)
    else:
        conn.unsubscribe(channel.stream)


async def _websocket(request: web.Request, path_stream: str | None) -> web.WebSocketResponse:
    caller = await _caller(request)
    account_id, scopes, protocol = caller.account_id, caller.scopes, caller.protocol
    # No per-message deflate: compressing each status once per connection costs more CPU than the
    # bandwidth it saves (Mastodon's streaming server leaves it off too).
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), heartbeat=WS_PING_SECONDS,
                               max_msg_size=MAX_CLIENT_MESSAGE, compress=False)
    await ws.prepare(request)
    conn = request.app[HUB].connect(account_id, scopes, caller.bearer)
    conn.on_shutdown(lambda: ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down"))
    sender = _Sender(conn, ws)
    try:
        await conn.prepare()
        initial = path_stream or request.query.get("stream")
        if initial:
            try:
                conn.subscribe(await service.resolve(state_of(request), account_id, scopes, initial, dict(request.query)))
            except StreamError as exc:
                await ws.send_str(_ws_error(exc))
        conn.sub.queue.notify(sender.wake)
        if conn.sub.queue.qsize():
            sender.wake()  # what arrived while the stream was being set up
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _client_message(ws, conn, account_id, scopes, request, msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_str(_ws_error(StreamError("Binary messages are not supported")))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        await sender.stop()
        conn.close()
    return ws


# -- server-sent events ---------------------------------------------------------------------------------

async def _sse(request: web.Request, stream_name: str) -> web.StreamResponse:
    st = state_of(request)
    caller = await _caller(request)
    account_id, scopes = caller.account_id, caller.scopes
    if stream_name.startswith("public") and request.query.get("only_media", "").lower() in ("1", "true"):
        stream_name += ":media"
    try:
        channel = await service.resolve(st, account_id, scopes, stream_name, dict(request.query))
    except StreamError as exc:
        return _stream_error(exc)
    conn = request.app[HUB].connect(account_id, scopes, caller.bearer)
    conn.subscribe(channel)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
        "Access-Control-Allow-Origin": "*"})
    loop = asyncio.get_running_loop()
    interval = float(st.settings.streaming.heartbeat_seconds)
    try:
        await conn.prepare()
        await response.prepare(request)
        await response.write(b":)\n")
        next_beat = loop.time() + interval
        while not conn.closing.is_set():
            wait = next_beat - loop.time()
            if wait <= 0:
                await response.write(b":thump\n")
                next_beat = loop.time() + interval
                continue
            try:
                async with asyncio.timeout(wait):
                    event = await conn.next_event()
            except TimeoutError:
                continue
            for _, name, payload in await _safe_messages(conn, event):
                # Mastodon writes the payload as is, "undefined" when there is none (filters_changed).
                await response.write(f"event: {name}\ndata: {'undefined' if payload is None else payload}\n\n".encode())
    except (ConnectionError, RuntimeError):
        pass  # the client went away
    finally:
        conn.close()
    return response


# -- routes -----------------------------------------------------------------------------------------------

async def root(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(request, None)
    stream = request.query.get("stream")
    if not stream:
        await _caller(request)
        return _stream_error(StreamError("Unknown stream type"))
    return await _sse(request, stream)


async def by_path(request: web.Request) -> web.StreamResponse:
    path = request.match_info["path"].strip("/")
    stream = SSE_PATHS.get(path)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(request, stream or path.replace("/", ":"))
    if stream is None:
        await _caller(request)
        return _stream_error(StreamError("Unknown stream type"))
    return await _sse(request, stream)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


def setup(app: web.Application) -> None:
    state = app[STATE]
    hub = StreamHub(state)
    app[HUB] = hub
    STREAMING_CONNECTIONS.set_function(lambda: float(len(hub.connections)))
    watchers: list[asyncio.Task[None]] = []

    async def close_when_stopping(stopping: asyncio.Event) -> None:
        # Streams never finish on their own: end them as soon as shutdown begins, so waiting for
        # in-flight requests does not wait for them.
        await stopping.wait()
        await hub.close_all()

    async def watch(app: web.Application) -> None:
        watchers.append(asyncio.create_task(close_when_stopping(state.stopping), name="streaming shutdown"))

    async def close_streams(app: web.Application) -> None:
        await hub.close_all()
        for task in watchers:
            task.cancel()

    app.on_startup.append(watch)
    app.on_shutdown.append(close_streams)
    add_routes(app, [
        ("GET", "/api/v1/streaming", root),
        ("GET", "/api/v1/streaming/health", health),
        ("GET", "/api/v1/streaming/{path:.+}", by_path),
    ])
