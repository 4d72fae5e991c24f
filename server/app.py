"""Builds the aiohttp Application: middlewares, routes, start-up and shutdown."""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from aiohttp import web

from server.config import Config
from server.http import oauth
from server.http import web as web_pages
from server.http.base import STATE, Handler, error_response, json_response
from server.http.mastodon import accounts, instance, notifications, statuses, timelines
from server.services.errors import ServiceError, TooMany
from server.state import State
from server.storage.db import Database

log = logging.getLogger("crosstalk.http")

CORS_PREFIXES = ("/api/", "/oauth/token", "/oauth/revoke", "/.well-known/", "/nodeinfo/")
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PUT, DELETE, GET, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, Accept",
    "Access-Control-Expose-Headers": "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id",
    "Access-Control-Max-Age": "86400",
}


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/oauth/token", "/oauth/revoke", "/.well-known/", "/nodeinfo/"))


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a clean answer: {"error": ...} for the API, never a traceback."""
    try:
        return await handler(request)
    except ServiceError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status >= 400 and _wants_json(request) and exc.content_type != "application/json":
            reason = {404: "Record not found", 405: "Method not allowed", 413: "Request entity too large"}
            return json_response({"error": reason.get(exc.status, exc.reason)}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"})
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"error": "Internal server error"}, status=500)


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    applies = request.path.startswith(CORS_PREFIXES) or request.path.startswith("/users/")
    if applies and request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    response = await handler(request)
    if applies and not response.prepared:
        response.headers.update(CORS_HEADERS)
    return response


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    request["request_id"] = request_id
    response = await handler(request)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


class RateLimiter:
    """Fixed-window counter per token (or per address for anonymous calls)."""

    def __init__(self, limit: int, window: int) -> None:
        self.limit, self.window = limit, window
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, now: float) -> tuple[int, int]:
        bucket = int(now // self.window)
        start, count = self._counts.get(key, (bucket, 0))
        if start != bucket:
            count = 0
            if len(self._counts) > 50000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == bucket}
        count += 1
        self._counts[key] = (bucket, count)
        return count, (bucket + 1) * self.window


def rate_limit_middleware(limiter: RateLimiter) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path.startswith("/api/v1/streaming"):
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        key = auth[-24:] if auth else (request.remote or "?")
        count, reset_at = limiter.hit(key, time.time())
        reset = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(reset_at))
        headers = {"X-RateLimit-Limit": str(limiter.limit),
                   "X-RateLimit-Remaining": str(max(0, limiter.limit - count)),
                   "X-RateLimit-Reset": reset}
        if count > limiter.limit:
            response = error_response(TooMany("Too many requests"))
            response.headers.update(headers)
            response.headers["Retry-After"] = str(max(1, math.ceil(reset_at - time.time())))
            return response
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response
    return middleware


def create_app(config: Config, database: Database | None = None) -> web.Application:
    db = database or Database(config.db_path)
    state = State(config, db)
    limiter = RateLimiter(config["rate_limit.requests"], config["rate_limit.window"])
    app = web.Application(
        middlewares=[request_id_middleware, cors_middleware, errors_middleware, rate_limit_middleware(limiter)],
        client_max_size=20 * 1024 * 1024)
    app[STATE] = state

    for module in (oauth, instance, accounts, statuses, timelines, notifications, web_pages):
        module.setup(app)

    async def on_startup(app: web.Application) -> None:
        await db.open()

    async def on_cleanup(app: web.Application) -> None:
        await state.drain()
        await db.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
