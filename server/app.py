"""Builds the aiohttp Application: middlewares, routes, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from typing import Any

from aiohttp import web

from server import federate, metrics
from server.config import Config
from server.http import activitypub, oauth, ops, wellknown
from server.http import web as web_pages
from server.http.base import STATE, Handler, error_response, json_response
from server.http.mastodon import (
    accounts,
    admin_domains,
    announcements,
    conversations,
    discovery,
    domain_blocks,
    filters,
    instance,
    lists,
    markers,
    media,
    notifications,
    polls,
    reports,
    scheduled,
    search,
    statuses,
    streaming,
    tags,
    timelines,
)
from server.logs import request_id_var
from server.services.errors import ServiceError, TooMany
from server.state import State
from server.storage.db import Database
from server.workers import media_cleanup, scheduler

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


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("crosstalk.access")


def route_template(request: web.Request) -> str:
    """The matched route's pattern (ids stay out of metric labels); both slash variants count as one."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical.rstrip("/") or "/"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id (taken from a sane incoming X-Request-Id, else new), then one access log line and
    the HTTP metrics for every request."""
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request["request_id"] = request_id
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    state = request.app[STATE]
    state.in_flight += 1
    metrics.HTTP_IN_FLIGHT.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer
        raise
    finally:
        state.in_flight -= 1
        metrics.HTTP_IN_FLIGHT.dec()
        route = route_template(request)
        duration = metrics.observe_request(request.method, route, status, started)
        access_log.log(
            logging.DEBUG if route in ops.QUIET_ROUTES else logging.INFO, "request",
            extra={"method": request.method, "path": request.path, "route": route, "status": status,
                   "duration_ms": round(duration * 1000, 2), "remote_addr": request.remote,
                   "remote_domain": request.get("remote_domain")})
        request_id_var.reset(token)


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # Also covers streamed responses and aiohttp's own error pages, which bypass the middleware.
    if "request_id" in request:
        response.headers["X-Request-Id"] = request["request_id"]
    if request.app[STATE].stopping.is_set():
        # Keep-alive clients should reconnect (to another replica); headers are computed already.
        response.force_close()
        response.headers["Connection"] = "close"


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
        # Avatars and headers arrive through request.post(), which this bounds; media uploads stream.
        client_max_size=max(20 * 1024 * 1024, config["media.max_image_size"] + 1024 * 1024))
    app[STATE] = state
    app.on_response_prepare.append(_add_request_id)
    metrics.bind(state)

    # discovery before accounts: its /accounts/familiar_followers must win over /accounts/{id}.
    for module in (ops, oauth, instance, discovery, accounts, statuses, polls, scheduled, conversations,
                   announcements, domain_blocks, reports, timelines, notifications, lists, filters, markers, tags,
                   streaming, admin_domains, wellknown, activitypub, media, search,
                   web_pages):
        module.setup(app)

    async def on_startup(app: web.Application) -> None:
        await db.open()
        db.start_background_checkpoints()
        scheduler.start(state)  # scheduled statuses and poll endings
        media_cleanup.start(state)  # uploads no post uses

    app.on_startup.append(on_startup)
    federate.install(app, state)  # after the database opens: federation start-up reads it

    async def on_shutdown(app: web.Application) -> None:
        # The listening socket is closed by now; /readyz turns 503 and streams can end themselves.
        state.stopping.set()

    async def on_cleanup(app: web.Application) -> None:
        # In-flight requests are finished (or cancelled at the grace deadline); what is left of the
        # grace period goes to workers finishing their current attempt and to spawned tasks.
        deadline = state.shutdown_deadline or time.monotonic() + config["shutdown_grace_seconds"]
        await state.stop_workers(deadline - time.monotonic())
        await state.drain(max(0.5, deadline - time.monotonic()))
        await db.close()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
