"""Builds the aiohttp Application: middlewares, routes, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import socket
import time
import uuid
from functools import partial
from typing import Any

from aiohttp import web

from server import metrics
from server.bus import make_bus
from server.bus.memory import MemoryBus
from server.bus.relay import BusUnavailable
from server.caches import ACCOUNT_RENDERINGS, STATUS_RENDERINGS, TOKENS, standard_caches
from server.http import activitypub, oauth, oidc, ops, scim, wellknown
from server.http import web as web_pages
from server.http.base import STATE, Handler, credentials, error_response, json_response
from server.http.mastodon import (
    accounts,
    admin_accounts,
    admin_domains,
    admin_reports,
    announcements,
    conversations,
    directory,
    discovery,
    domain_blocks,
    filters,
    groups,
    instance,
    lists,
    markers,
    media,
    notifications,
    polls,
    push,
    reactions,
    reports,
    scheduled,
    search,
    statuses,
    streaming,
    tags,
    timelines,
    trends,
)
from server.jobs import catalog
from server.jobs.invalidations import REQUEST_READS, Invalidations, RequestReads
from server.jobs.nodes import NodeLease
from server.jobs.outbox import Outbox
from server.jobs.runtime import JobRuntime
from server.logs import request_id_var
from server.ports import FileStore, Store
from server.ratelimit import MemoryCounter, RateLimits, address_subject, make_counter, rate_limit_headers
from server.services import health
from server.services import streaming as streaming_service
from server.services.boundary import Boundary
from server.services.errors import ServiceError, TooMany, Unauthorized, Unprocessable
from server.services.federation import keys as federation_keys
from server.services.federation import lookup
from server.services.federation.client import Remote
from server.services.federation.outbound import ActivityPubOutbound
from server.services.push import WebPush
from server.settings import ConfigError, MediaServe, MediaStorage, Settings
from server.state import Invalidation, State
from server.storage.backend import database_for
from server.storage.errors import DatabaseUnavailable
from server.storage.files import LocalFiles
from server.storage.s3 import S3Files, S3Unavailable
from server.workers.delivery import DeliveryWorker
from server.workers.inbox import InboxWorker

log = logging.getLogger("crosstalk.http")

STREAMING_PREFIX = "/api/v1/streaming"
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


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("crosstalk.access")


def route_template(request: web.Request) -> str:
    """The matched route's pattern (ids stay out of metric labels); both slash variants count as one."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical.rstrip("/") or "/"


# Request ids only need to differ (across processes too: 128 bits from a generator the kernel seeds
# in each process); uuid4 asks the kernel on every request, a system call that cost 2 us of 2.3.
_REQUEST_IDS = random.Random()


def _request_id_of(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if _REQUEST_ID.match(incoming) else f"{_REQUEST_IDS.getrandbits(128):032x}"


# Routes whose bodies are uploads: how many images (of up to media.max_image_size each) they carry.
UPLOADS = {("POST", "/api/v1/media"): 1, ("POST", "/api/v2/media"): 1,
           ("PATCH", "/api/v1/accounts/update_credentials"): 2}
UPLOAD_SLACK = 64 * 1024  # multipart framing and the text fields next to the files


def body_limit(request: web.Request, settings: Settings) -> int:
    images = UPLOADS.get((request.method, route_template(request)))
    if images:
        return images * settings.media.max_image_size + UPLOAD_SLACK
    return settings.http.max_body_size


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What every request goes through, in this order: the client's view of it (`_client_view`), a
    request id with one access log line and the HTTP metrics, then CORS, the body limit, the rate
    limits and clean answers for every failure (`_answer`).

    One middleware rather than one per concern: each layer is a coroutine frame on every request, held
    as long as the request lasts (a WebSocket stream for hours, and an instance may hold 10,000)."""
    request = _client_view(request)
    request_id = request.get("request_id") or _request_id_of(request)
    request["request_id"] = request_id
    token = request_id_var.set(request_id)
    reads = None if request.path.startswith(STREAMING_PREFIX) else RequestReads()
    reads_token = REQUEST_READS.set(reads)
    started = time.perf_counter()
    status = 500
    state = request.app[STATE]
    state.in_flight += 1
    try:
        response = await _answer(request, handler)
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
        route = route_template(request)
        duration = metrics.observe_request(request.method, route, status, started)
        level = logging.DEBUG if route in ops.QUIET_ROUTES else logging.INFO
        if access_log.isEnabledFor(level):  # the line's fields cost more than the check
            access_log.log(
                level, "request",
                extra={"method": request.method, "path": request.path, "route": route, "status": status,
                       "duration_ms": round(duration * 1000, 2), "remote_addr": request.remote,
                       "remote_domain": request.get("remote_domain")})
        request_id_var.reset(token)
        if reads is not None:
            reads.open = False
        REQUEST_READS.reset(reads_token)


def _client_view(request: web.Request) -> web.Request:
    """The request with the client's real address (X-Forwarded-For only from trusted proxies) and the
    largest body its route takes, as every handler must see it."""
    st = request.app[STATE]
    address = st.rate_limits.client_address(request.remote, request.headers.get("X-Forwarded-For"))
    limit = body_limit(request, st.settings)
    changes: dict[str, Any] = {}
    if address is not None and address != request.remote:
        changes["remote"] = address
    if limit != request.client_max_size:
        changes["client_max_size"] = limit
    if not changes:
        return request
    # The request id is chosen on the request aiohttp holds: on_response_prepare, which puts it on the
    # answer, sees that one, not the clone (whose keys are its own).
    request["request_id"] = _request_id_of(request)
    return request.clone(**changes)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer, if the body is within the route's limit and the client within its rate
    limits (whose X-RateLimit-* headers the answer carries), with CORS headers; and every failure made
    a clean answer: {"error": ...} for the API, SCIM's error schema under /scim/v2, never a traceback."""
    cors = request.path.startswith(CORS_PREFIXES) or request.path.startswith("/users/")
    if cors and request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    rate_headers = None
    try:
        refusal = _body_refusal(request)
        limits = request.app[STATE].rate_limits
        if (refusal is None and limits.enabled and request.path.startswith("/api/")
                and not request.path.startswith(STREAMING_PREFIX)):
            refusal, rate_headers = await _rate_limit(request, limits)
        if refusal is not None:
            response: web.StreamResponse = refusal
        elif request.body_exists and not request.content.is_eof():
            response = await _with_body_watchdog(request, handler)
        else:
            response = await handler(request)
    except ServiceError as exc:
        response = scim.error_answer(exc) if request.path.startswith(scim.PREFIX) else error_response(exc)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith(scim.PREFIX):
            response = scim.http_error_answer(exc)
        elif exc.status >= 400 and _wants_json(request) and exc.content_type != "application/json":
            reason = {404: "Record not found", 405: "Method not allowed", 413: "Request entity too large"}
            response = json_response({"error": reason.get(exc.status, exc.reason)}, status=exc.status,
                                     headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"})
        else:
            raise
    except DatabaseUnavailable as exc:
        # PostgreSQL restarting or out of reach: nothing was committed; the client may retry.
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc)
        response = json_response({"error": "Service temporarily unavailable"}, status=503, headers={"Retry-After": "5"})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_response({"error": "Internal server error"}, status=500)
    if not response.prepared:
        if rate_headers is not None:
            response.headers.update(rate_headers)
        if cors:
            response.headers.update(CORS_HEADERS)
    return response


def _body_refusal(request: web.Request) -> web.Response | None:
    """A body larger than the route takes is refused on its Content-Length, before any of it is read
    (request.read()/post() enforce the same limit on bodies without one; a client that stops sending
    its body for http.read_timeout seconds is disconnected by `_with_body_watchdog`)."""
    declared = request.content_length
    if declared is None or declared <= request.client_max_size:
        return None
    # Answered at once; aiohttp then reads and drops what the client still sends for a few seconds
    # (lingering), so the client sees this answer rather than a reset connection.
    if (request.method, route_template(request)) in UPLOADS:  # Mastodon's answer for a big file
        return error_response(Unprocessable(f"File is too large (maximum is {request.client_max_size} bytes)"))
    return json_response({"error": f"Request body too large (maximum is {request.client_max_size} bytes)"},
                         status=413)


async def _with_body_watchdog(request: web.Request, handler: Handler) -> web.StreamResponse:
    idle = float(request.app[STATE].settings.http.read_timeout)
    stream = request.content
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    stalled = False
    watch: asyncio.TimerHandle | None = None

    def check(last: int) -> None:
        # total_bytes counts what has arrived, whether or not the handler has read it yet.
        nonlocal stalled, watch
        if stream.is_eof():
            return
        if stream.total_bytes == last:
            stalled = True
            task.cancel()
            return
        watch = loop.call_later(idle, check, stream.total_bytes)

    watch = loop.call_later(idle, check, stream.total_bytes)
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if not stalled:
            raise
        task.uncancel()
        response = json_response({"error": "Request timeout: the body stopped arriving"}, status=408)
        response.force_close()
        return response
    finally:
        if watch is not None:
            watch.cancel()


async def _rate_limit(request: web.Request, limits: RateLimits) -> tuple[web.Response | None, dict[str, str]]:
    """API requests count against the signed-in account behind a valid user token, otherwise against
    the client's address (an invalid or app-only token counts as none). Returns the refusal, if a limit
    is exceeded, and the X-RateLimit-* headers of the limit closest to running out."""
    try:
        creds = await credentials(request)
    except Unauthorized:
        creds = None
    template = route_template(request)
    # Unmatched paths count too (by path), so a limit set on a route we do not serve yet still holds.
    route = (request.method, request.path.rstrip("/") if template == "unmatched" else template)
    address = address_subject(request.remote)
    if creds is not None and creds.account_id is not None:
        account = f"account:{creds.account_id}"
        checks = [(limits.api_account, account)]
        if route in limits.account_routes:
            checks.append((limits.account_routes[route], account))
    else:
        checks = [(limits.api_address, address)]
    if route in limits.address_routes:
        checks.append((limits.address_routes[route], address))
    usages = [await limits.hit(limit, subject) for limit, subject in checks]
    tightest = min(usages, key=lambda u: (not u.exceeded, u.remaining))
    headers = rate_limit_headers(tightest.limit.limit, tightest.remaining, tightest.reset_at)
    if tightest.exceeded:
        return error_response(TooMany("Too many requests", limit=tightest.limit.limit, reset_at=tightest.reset_at)), headers
    return None, headers


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # Also covers streamed responses and aiohttp's own error pages, which bypass the middleware.
    if "request_id" in request:
        response.headers["X-Request-Id"] = request["request_id"]
    state = request.app[STATE]
    if state.draining or state.stopping.is_set():
        # Keep-alive clients should reconnect (to another replica); headers are computed already.
        response.force_close()
        response.headers["Connection"] = "close"


def make_file_store(settings: Settings) -> FileStore:
    """Uploaded media on this host, or in an S3-compatible bucket that every host shares."""
    media = settings.media
    if media.storage == MediaStorage.S3:
        return S3Files(media.s3_endpoint, media.s3_bucket, media.s3_access_key, media.s3_secret_key,
                       region=media.s3_region, secure=media.s3_secure, redirect=media.s3_serve == MediaServe.REDIRECT)
    return LocalFiles(settings.data_path / "media")


def build_state(settings: Settings, db: Store, *, serving: bool) -> tuple[State, Outbox, NodeLease]:
    """Assemble an instance's parts from its settings: the one place that decides which
    implementation of each port is used. `serving` processes dispatch events, run background jobs and
    join the bus; admin commands record events and invalidations for a serving process to act on."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    paused = frozenset(settings.jobs.paused)
    outbox = Outbox(db, holder, settings.jobs.claim_seconds, dispatching=serving and "outbox" not in paused)
    bus = make_bus(settings) if serving else MemoryBus()
    jobs = JobRuntime(db, bus, holder, paused)
    invalidations = Invalidations(db, bus)
    megabyte = 1024 * 1024
    caches = standard_caches(settings.statuses.render_cache_mb * megabyte, settings.statuses.account_cache_mb * megabyte,
                             settings.statuses.viewer_cache_mb * megabyte)
    state = State(settings, db, bus, outbox, jobs, caches,
                  invalidations,
                  RateLimits(settings, make_counter(settings) if serving else MemoryCounter()),
                  make_file_store(settings))
    state.boundary = Boundary(state)
    state.push = WebPush(state)

    def access_changed(key: str) -> None:
        state.caches.invalidate(TOKENS)
        if key.isdigit():
            streaming_service.access_changed(state, int(key))

    invalidations.on(Invalidation.ACCESS, access_changed)
    invalidations.on(Invalidation.BOUNDARY, lambda _: state.boundary.invalidate())
    invalidations.on(Invalidation.TRENDS, lambda _: state.caches.invalidate("trends"))
    statuses_kept, accounts_kept = caches.get(STATUS_RENDERINGS), caches.get(ACCOUNT_RENDERINGS)
    invalidations.on(Invalidation.STATUS, lambda key: statuses_kept.invalidate(int(key)))
    invalidations.on(Invalidation.ACCOUNT, lambda key: accounts_kept.invalidate(int(key)))
    node_lease = NodeLease(db, holder)
    catalog.subscribe(state, outbox)
    catalog.declare(state, outbox, node_lease, invalidations)
    return state, outbox, node_lease


def install_federation(state: State, outbox: Outbox) -> None:
    """The federation parts of a serving process: the outgoing client and remote look-ups, the inbox
    and delivery workers, and the subscriber that turns events into deliveries. The client's instance
    key is loaded at start-up, before the jobs run."""
    state.remote = Remote(state.settings, state.db, state.boundary, state.spawn)
    state.delivery_worker = DeliveryWorker(state)
    state.inbox_worker = InboxWorker(state)
    state.resolve_account = partial(lookup.resolve_account, state)
    state.resolve_url = partial(lookup.resolve_url, state)
    outbound = ActivityPubOutbound(state, wake=lambda: state.jobs.wake("delivery"))
    catalog.declare_federation(state, outbox, outbound)


def create_app(settings: Settings, database: Store | None = None, web_routes: bool = True) -> web.Application:
    """The application of `serve` (every route) or of `worker` (web_routes=False: health and metrics)."""
    db = database or database_for(settings)
    state, outbox, node_lease = build_state(settings, db, serving=True)
    invalidations = state.invalidations
    assert isinstance(invalidations, Invalidations)
    app = web.Application(
        middlewares=[request_middleware],
        # Routes that take uploads get a larger limit from request_middleware.
        client_max_size=settings.http.max_body_size)
    app[STATE] = state
    app.on_response_prepare.append(_add_request_id)
    health.bind_metrics(state)

    # discovery before accounts: its /accounts/familiar_followers must win over /accounts/{id}.
    modules = (ops, oauth, oidc, instance, discovery, accounts, statuses, polls, scheduled, conversations,
               announcements, domain_blocks, reports, timelines, notifications, push, lists, filters, markers, tags,
               streaming, admin_domains, admin_accounts, admin_reports, wellknown, activitypub, media, search, scim,
               groups, reactions, directory, trends, web_pages)
    for module in modules if web_routes else (ops,):
        module.setup(app)
    install_federation(state, outbox)

    async def on_startup(app: web.Application) -> None:
        await db.open()
        db.start_maintenance()  # SQLite: WAL checkpoints off the write path
        try:
            await state.bus.start()
        except BusUnavailable as exc:
            raise ConfigError(f"setting bus.url (CROSSTALK_BUS_URL): {exc}") from None
        await invalidations.start()
        try:
            await state.files.start()
        except S3Unavailable as exc:
            raise ConfigError(f"setting media.s3_endpoint (CROSSTALK_MEDIA_S3_ENDPOINT): {exc}") from None
        await node_lease.acquire()
        await federation_keys.load_instance_actor(state)
        await state.push.start()
        state.jobs.start()

    async def on_shutdown(app: web.Application) -> None:
        # The listening socket is closed by now; /readyz turns 503 and streams can end themselves.
        state.stopping.set()

    async def on_cleanup(app: web.Application) -> None:
        # In-flight requests are finished (or cancelled at the grace deadline); what is left of the
        # grace period goes to jobs finishing their current attempt and to spawned tasks.
        deadline = state.shutdown_deadline or time.monotonic() + settings.shutdown_grace_seconds
        await state.jobs.stop(deadline - time.monotonic())
        await state.drain(max(0.5, deadline - time.monotonic()))
        await state.remote.close()
        await state.boundary.flush()
        await state.push.close()
        await invalidations.close()
        await state.rate_limits.counter.close()
        await state.files.close()
        state.image_workers.shutdown(wait=False)
        await state.bus.close()
        await node_lease.release()
        await db.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
