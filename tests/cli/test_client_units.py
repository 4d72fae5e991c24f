"""Pieces of xtalk that need no instance: error classes, Link and rate-limit headers, streaming payloads
(WebSocket and SSE against a stub server), the loopback callback and the config file's permissions."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from clients.cli import config as cfg
from clients.cli.api import (
    AuthError,
    Client,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ValidationError,
    error_for,
    normalise_base_url,
    parse_links,
    retry_after_seconds,
    stream_payload,
)
from clients.cli.login import Callback, LoginError


def test_error_classes_and_exit_codes():
    cases = [(401, AuthError, 4), (403, AuthError, 4), (404, NotFoundError, 5), (410, NotFoundError, 5),
             (422, ValidationError, 6), (400, ValidationError, 6), (429, RateLimitedError, 7),
             (500, ServerError, 8), (503, ServerError, 8)]
    for status, cls, code in cases:
        error = error_for(status, b'{"error": "why"}', {})
        assert type(error) is cls and error.exit_code == code and error.message == "why"
    oauth = error_for(400, b'{"error": "invalid_grant", "error_description": "Wrong password"}', {})
    assert oauth.message == "Wrong password" and oauth.code == "invalid_grant"
    assert error_for(502, b"<html>Bad gateway</html>", {}).message == "HTTP 502"


def test_retry_after_and_links():
    assert retry_after_seconds(CIMultiDict({"Retry-After": "12"})) == 12
    assert retry_after_seconds(CIMultiDict({"Retry-After": "Wed, 01 May 2024 12:00:30 GMT"}), now=1714564800) == 30
    assert retry_after_seconds(CIMultiDict({"X-RateLimit-Reset": "2024-05-01T12:01:00.000Z"}), now=1714564800) == 60
    assert retry_after_seconds(CIMultiDict()) is None
    links = parse_links('<https://a.example/api/v1/timelines/home?max_id=5>; rel="next", '
                        '<https://a.example/api/v1/timelines/home?min_id=9>; rel="prev"')
    assert links == {"next": "https://a.example/api/v1/timelines/home?max_id=5",
                     "prev": "https://a.example/api/v1/timelines/home?min_id=9"}
    assert normalise_base_url("social.example/") == "https://social.example"
    with pytest.raises(ValueError):
        normalise_base_url("ftp://social.example")


def test_stream_payloads_decode_once_or_twice():
    status = {"id": "7", "content": "<p>x</p>"}
    assert stream_payload(json.dumps(status)) == status
    assert stream_payload(status) == status
    assert stream_payload("12345") == "12345"


async def test_streaming_websocket_then_sse_fallback(aiohttp_server):
    status = {"id": "42", "content": "<p>hi</p>"}
    seen_auth = []

    async def websocket(request: web.Request) -> web.StreamResponse:
        seen_auth.append((request.headers.get("Authorization"), request.query.get("stream"),
                          request.query.get("tag")))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        # Mastodon's framing: the payload is itself a JSON string.
        await ws.send_str(json.dumps({"stream": ["hashtag", "cats"], "event": "update", "payload": json.dumps(status)}))
        await ws.send_str(json.dumps({"stream": ["hashtag"], "event": "delete", "payload": "41"}))
        await ws.close()
        return ws

    async def sse(request: web.Request) -> web.StreamResponse:
        seen_auth.append((request.headers.get("Authorization"), request.path, request.query.get("list")))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b":)\n\nevent: update\ndata: " + json.dumps(status).encode() + b"\n\n"
                         b"event: delete\ndata: 41\n\n")
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/streaming", websocket)
    app.router.add_get("/api/v1/streaming/list", sse)
    server = await aiohttp_server(app, host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")

    async with Client(base, "tok") as api:
        events = [e async for e in api.stream("hashtag", {"tag": "cats"})]
        assert events == [("update", status), ("delete", "41")]
        assert seen_auth[0] == ("Bearer tok", "hashtag", "cats")

    # A server without the WebSocket endpoint answers the upgrade with 404: fall back to SSE.
    app2 = web.Application()
    app2.router.add_get("/api/v1/streaming/list", sse)
    server2 = await aiohttp_server(app2, host="127.0.0.1")
    async with Client(str(server2.make_url("")).rstrip("/"), "tok") as api:
        events = [e async for e in api.stream("list", {"list": "3"})]
    assert events == [("update", status), ("delete", "41")]
    assert seen_auth[-1] == ("Bearer tok", "/api/v1/streaming/list", "3")


async def test_loopback_callback_checks_state():
    callback = Callback("expected-state")
    await callback.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{callback.redirect_uri}?code=abc&state=forged") as resp:
                assert resp.status == 400
            assert not callback.result.done()
            async with session.get(f"{callback.redirect_uri}?code=abc&state=expected-state") as resp:
                assert resp.status == 200 and "authorized" in await resp.text()
        assert await callback.wait(1) == "abc"
    finally:
        await callback.stop()

    denied = Callback("s")
    await denied.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{denied.redirect_uri}?error=access_denied&state=s") as resp:
                assert resp.status == 200
        with pytest.raises(LoginError, match="access_denied"):
            await denied.wait(1)
    finally:
        await denied.stop()

    slow = Callback("s")
    await slow.start()
    try:
        with pytest.raises(LoginError, match="no answer"):
            await slow.wait(0.05)
    finally:
        await slow.stop()
    await asyncio.sleep(0)


def test_config_file_is_private_even_with_a_loose_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "xtalk").mkdir(mode=0o777)
    (tmp_path / "xtalk" / "config.json").write_text("{}")
    os.chmod(tmp_path / "xtalk" / "config.json", 0o644)
    old = os.umask(0)
    try:
        config = cfg.Config(default="a", profiles={"a": cfg.Profile(base_url="https://x", token="secret")})
        path = cfg.save(config)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cfg.load().profiles["a"].token == "secret"
    assert "secret" not in json.dumps(cfg.describe(cfg.load()))
    path.write_text("{not json")
    with pytest.raises(cfg.ConfigError, match="damaged"):
        cfg.load()
