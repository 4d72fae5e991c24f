"""ActivityPub over HTTP: actor, note and collection documents (with content negotiation) and the
inboxes. Thin: what is served comes from server.services.federation.serving, and the inbox rules
(signatures, who may send what) live in server.services.federation.inbound."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from federation import documents as docs
from server.domain.records import Account, Status
from server.http import web as web_pages
from server.http.base import add_routes, json_response, state_of
from server.ids import parse_id
from server.render import activitypub as render_ap
from server.services.errors import Gone, NotFound
from server.services.federation import inbound, serving
from server.services.federation.inbound import InboxRejection

log = logging.getLogger("crosstalk.inbox")
MAX_INBOX_BYTES = 1024 * 1024
PAGE_SIZE = serving.PAGE_SIZE
AS2_TYPES = ("application/activity+json", "application/ld+json")


def wants_activity_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(t in accept for t in AS2_TYPES)


def as2_response(doc: dict[str, Any], status: int = 200) -> web.Response:
    return json_response(doc, status=status, content_type="application/activity+json",
                         headers={"Vary": "Accept", "Cache-Control": "max-age=60, private"})


def _http_error(exc: NotFound | Gone) -> web.HTTPException:
    return web.HTTPGone() if isinstance(exc, Gone) else web.HTTPNotFound()


async def _local_account(request: web.Request, suspended_too: bool = False) -> Account:
    try:
        return await serving.local_actor(state_of(request), request.match_info["username"], suspended_too)
    except (NotFound, Gone) as exc:
        raise _http_error(exc) from None


def _signed_request(request: web.Request) -> inbound.SignedRequest:
    return inbound.SignedRequest(method=request.method, path=request.path, path_qs=request.path_qs,
                                 host=request.host, headers=request.headers)


async def fetch_guard(request: web.Request) -> Account | None | web.Response:
    """Authorized fetch (server.services.federation.inbound.authorize_fetch): the signer, None for an
    unsigned request outside secure mode, or the error response to send."""
    signed = _signed_request(request)
    try:
        return await inbound.authorize_fetch(state_of(request), signed)
    except InboxRejection as exc:
        return json_response({"error": exc.reason}, status=exc.status)
    finally:
        if signed.key_host is not None:
            request["remote_domain"] = signed.key_host  # for the access log


# -- actors --------------------------------------------------------------------------------------------

async def actor(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    # A suspended actor is still served, marked suspended (as Mastodon does), so peers can verify its
    # Update and show the suspension; a deleted one is gone.
    account = await _local_account(request, suspended_too=wants_activity_json(request))
    if not wants_activity_json(request):
        return await web_pages.profile_page(request, account)
    signed = _signed_request(request)
    try:
        return as2_response(await serving.actor_for_fetch(st, account, signed))
    except NotFound:
        raise web.HTTPNotFound() from None
    except InboxRejection as exc:
        return json_response({"error": exc.reason}, status=exc.status)
    finally:
        if signed.key_host is not None:
            request["remote_domain"] = signed.key_host


async def instance_actor(request: web.Request) -> web.StreamResponse:
    return as2_response(await serving.instance_actor_document(state_of(request)))


async def instance_outbox(request: web.Request) -> web.StreamResponse:
    """The instance actor publishes nothing: an empty collection, first page included."""
    collection_id = f"{state_of(request).base_url}/actor/outbox"
    page = docs.ordered_collection_page(f"{collection_id}?page=true", collection_id, [])
    return as2_response(docs.ordered_collection(collection_id, 0, first=page))


# -- notes ---------------------------------------------------------------------------------------------

async def _status_of(request: web.Request) -> tuple[Account, Status]:
    try:
        return await serving.public_status(state_of(request), request.match_info["username"],
                                           parse_id(request.match_info["id"]))
    except (NotFound, Gone) as exc:
        raise _http_error(exc) from None


async def note(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    account, status = await _status_of(request)
    if not wants_activity_json(request):
        return await web_pages.status_page(request, account, status)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    return as2_response(await serving.note_document(st, status))


async def note_activity(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    _account, status = await _status_of(request)
    return as2_response(render_ap.create_activity(await serving.note_document(st, status)))


async def replies(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    _account, status = await _status_of(request)
    collection, page = await serving.replies(st, status, _after(request))
    return as2_response(page if "page" in request.query or "min_id" in request.query else collection)


async def context(request: web.Request) -> web.StreamResponse:
    """FEP-7888: the whole conversation a post belongs to, as an OrderedCollection of its posts."""
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    try:
        collection_id, members = await serving.context_members(st, parse_id(request.match_info["thread_id"]))
    except NotFound:
        raise web.HTTPNotFound() from None
    after = _after(request)
    page = [m.uri for m in members if after is None or m.id > after][:PAGE_SIZE + 1]
    ids = [m.id for m in members if after is None or m.id > after][:PAGE_SIZE + 1]
    return _paged(request, collection_id, page, len(members), ids)


def _after(request: web.Request) -> int | None:
    return parse_id(request.query.get("min_id", ""))


def _paged(request: web.Request, collection_id: str, items: list[str], total: int, ids: list[int]) -> web.Response:
    """A collection whose first page is embedded; pages go forward with min_id."""
    has_more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    page_id = collection_id + ("?" + urlencode({"min_id": request.query["min_id"]}) if "min_id" in request.query
                               else "?page=true")
    next_url = None
    if has_more:
        next_url = f"{collection_id}?{urlencode({'min_id': ids[PAGE_SIZE - 1]})}"
    page = docs.ordered_collection_page(page_id, collection_id, items, next=next_url)
    if "page" in request.query or "min_id" in request.query:
        return as2_response(page)
    return as2_response(docs.ordered_collection(collection_id, total, first=page))


# -- collections ---------------------------------------------------------------------------------------

async def outbox(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    account = await _local_account(request)
    collection_id = f"{account.uri}/outbox"
    total = account.statuses_count
    if "page" not in request.query and "max_id" not in request.query:
        return as2_response(docs.ordered_collection(collection_id, total, first=f"{collection_id}?page=true"))
    max_id = request.query.get("max_id", "")
    ids, items = await serving.outbox_page(st, account, parse_id(max_id))
    next_url = f"{collection_id}?{urlencode({'max_id': ids[-1], 'page': 'true'})}" if len(ids) == PAGE_SIZE else None
    return as2_response(docs.ordered_collection_page(f"{collection_id}?page=true" + (f"&max_id={max_id}" if max_id else ""),
                                                     collection_id, items, next=next_url))


async def follow_collection(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    account = await _local_account(request)
    direction = "followers" if request.path.rstrip("/").endswith("followers") else "following"
    collection_id = f"{account.uri}/{direction}"
    total = account.followers_count if direction == "followers" else account.following_count
    if "page" not in request.query:
        return as2_response(docs.ordered_collection(collection_id, total, first=f"{collection_id}?page=1"))
    page_no = min(parse_id(request.query["page"]) or 1, serving.MAX_FOLLOW_PAGE)
    items, has_more = await serving.follow_page(st, account, direction, page_no)
    next_url = f"{collection_id}?page={page_no + 1}" if has_more else None
    return as2_response(docs.ordered_collection_page(f"{collection_id}?page={page_no}", collection_id, items, next=next_url))


async def featured(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    account = await _local_account(request)
    notes = await serving.featured_notes(st, account)
    return as2_response(docs.ordered_collection(f"{account.uri}/collections/featured", len(notes), items=notes))


# -- inboxes -------------------------------------------------------------------------------------------

async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it exceeds `limit` (read() alone may return a partial chunk)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


async def inbox(request: web.Request) -> web.Response:
    st = state_of(request)
    if request.content_length is not None and request.content_length > MAX_INBOX_BYTES:
        return json_response({"error": "Request entity too large"}, status=413)
    body = await read_limited(request, MAX_INBOX_BYTES)
    if body is None:
        return json_response({"error": "Request entity too large"}, status=413)
    signed = _signed_request(request)
    try:
        with st.inbox_worker.receiving():
            await inbound.receive(st, signed, body)
    except InboxRejection as exc:
        log.info("inbox rejected %s: %s", request.remote, exc.reason)
        return json_response({"error": exc.reason}, status=exc.status)
    finally:
        if signed.key_host is not None:
            request["remote_domain"] = signed.key_host  # for the access log
    return web.Response(status=202)


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/users/{username}", actor),
        ("GET", "/@{username}/{id}", note),
        ("GET", "/actor", instance_actor),
        ("GET", "/actor/outbox", instance_outbox),
        ("GET", "/users/{username}/statuses/{id}", note),
        ("GET", "/users/{username}/statuses/{id}/activity", note_activity),
        ("GET", "/users/{username}/statuses/{id}/replies", replies),
        ("GET", "/contexts/{thread_id}", context),
        ("GET", "/users/{username}/outbox", outbox),
        ("GET", "/users/{username}/followers", follow_collection),
        ("GET", "/users/{username}/following", follow_collection),
        ("GET", "/users/{username}/collections/featured", featured),
        ("POST", "/inbox", inbox),
        ("POST", "/actor/inbox", inbox),
        ("POST", "/users/{username}/inbox", inbox),
    ])
