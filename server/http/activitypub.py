"""ActivityPub over HTTP: actor, note and collection documents (with content negotiation) and the
inboxes. Thin: documents come from server.render.activitypub, activities are handed to the inbox
worker after they are persisted."""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from federation import documents as docs
from federation.models import host_of
from federation.signatures import SignatureError, parse_signed_request, verify_signed_request
from server.http.base import add_routes, json_response, state_of
from server.http.web import html_page
from server.metrics import INBOX_ACTIVITIES, SIGNATURE_FAILURES
from server.records import Account, Status
from server.render import activitypub as render_ap
from server.services.boundary import Refused
from server.services.remote import RemoteError
from server.state import State
from server.storage import accounts as account_store
from server.storage import relations
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.inbox")
MAX_INBOX_BYTES = 1024 * 1024
PAGE_SIZE = 20
AS2_TYPES = ("application/activity+json", "application/ld+json")


def wants_activity_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(t in accept for t in AS2_TYPES)


def as2_response(doc: dict[str, Any], status: int = 200) -> web.Response:
    return json_response(doc, status=status, content_type="application/activity+json",
                         headers={"Vary": "Accept", "Cache-Control": "max-age=60, private"})


async def _local_account(request: web.Request) -> Account:
    st = state_of(request)
    account = await account_store.by_username(st.db, request.match_info["username"])
    if account is None or account.actor_type == "Application":
        raise web.HTTPNotFound()
    if account.deleted_at is not None or account.suspended:
        raise web.HTTPGone()
    return account


def _public(status: Status) -> bool:
    """May be served to other servers: public or unlisted, not deleted, never local-only."""
    return status.visibility in ("public", "unlisted") and status.deleted_at is None and not status.local_only


def _signed(request: web.Request) -> bool:
    return ("Signature" in request.headers or "Signature-Input" in request.headers
            or request.headers.get("Authorization", "")[:10].lower() == "signature ")


async def fetch_guard(request: web.Request) -> Account | None | web.Response:
    """Authorized fetch: AS2 documents need a valid signature from an allowed domain. Returns the
    signer (None for an unsigned request when secure mode is off) or the error response to send."""
    st = state_of(request)
    if not _signed(request):
        if st.config["federation.authorized_fetch"]:
            st.boundary.record("in", "fetch", "unknown", "rejected", activity_type=request.path,
                               reason="unsigned fetch in secure mode")
            return json_response({"error": "Request not signed"}, status=401)
        return None
    try:
        signer = await verify_request(st, request, None, event="fetch")
    except InboxRejection as exc:
        if exc.status != 403:
            st.boundary.record("in", "fetch", _claimed_host(request), "rejected", reason=exc.reason,
                               activity_type=request.path)
        return json_response({"error": exc.reason}, status=exc.status)
    st.boundary.record("in", "fetch", signer.domain, "ok", actor=signer.uri, activity_type=request.path)
    return signer


# -- actors --------------------------------------------------------------------------------------------

async def actor(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    account = await _local_account(request)
    if not wants_activity_json(request):
        return await profile_page(request, account)
    public_pem = await st.federation.public_key_pem(account)
    doc = render_ap.actor_document(st, account, public_pem)
    if _signed(request) or not st.config["federation.authorized_fetch"]:
        guard = await fetch_guard(request)
        if isinstance(guard, web.Response):
            return guard
        return as2_response(doc)
    # Unsigned in secure mode: only what key discovery needs, so two secure servers never deadlock.
    keep = ("@context", "id", "type", "preferredUsername", "inbox", "outbox", "followers", "following", "endpoints",
            "publicKey", "url")
    return as2_response({k: v for k, v in doc.items() if k in keep})


async def instance_actor(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    account = await account_store.get(st.db, st.federation.instance_actor_id)
    assert account is not None
    doc = render_ap.actor_document(st, account, account.public_key_pem)
    doc["preferredUsername"] = st.domain
    doc["manuallyApprovesFollowers"] = True
    return as2_response(doc)


async def profile_page(request: web.Request, account: Account | None = None) -> web.Response:
    st = state_of(request)
    if not st.config["web.public_pages"]:
        raise web.HTTPNotFound()
    if account is None:
        account = await account_store.by_username(st.db, request.match_info["username"].lstrip("@"))
        if account is None or not account.local or account.actor_type == "Application":
            raise web.HTTPNotFound()
    ids = await status_store.public_ids_of(st.db, account.id, PAGE_SIZE, only_public=True)
    found = await status_store.get_many(st.db, ids)
    posts = "".join(f'<article><a href="{html.escape(found[i].url)}"><time>{found[i].created_at[:16]}</time></a>'
                    f"{found[i].content}</article>" for i in ids if i in found)
    body = (f"<h1>{html.escape(account.display_name or account.username)}</h1><p>@{html.escape(account.username)}"
            f"@{html.escape(st.domain)}</p><div>{account.note}</div>{posts}")
    response = html_page(account.display_name or account.username, body)
    response.headers["Vary"] = "Accept"
    return response


# -- notes ---------------------------------------------------------------------------------------------

async def _status_of(request: web.Request) -> tuple[Account, Status]:
    st = state_of(request)
    account = await _local_account(request)
    text = request.match_info["id"]
    status = await status_store.get(st.db, int(text)) if text.isdigit() and len(text) <= 19 else None
    if status is None or status.account_id != account.id or status.reblog_of_id is not None:
        raise web.HTTPNotFound()
    if status.deleted_at is not None:
        raise web.HTTPGone()
    if not _public(status):
        raise web.HTTPNotFound()
    return account, status


async def note(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    _account, status = await _status_of(request)
    if not wants_activity_json(request):
        if not st.config["web.public_pages"] or status.visibility != "public":
            raise web.HTTPNotFound()
        body = f'<article><time>{status.created_at[:16]}</time>{status.content}</article>'
        response = html_page("Post", body)
        response.headers["Vary"] = "Accept"
        return response
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    return as2_response(await render_ap.note_document(st, status))


async def note_activity(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    _account, status = await _status_of(request)
    return as2_response(render_ap.create_activity(await render_ap.note_document(st, status)))


async def replies(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    _account, status = await _status_of(request)
    collection_id = f"{status.uri}/replies"
    reply_rows = await status_store.public_replies(st.db, status.id, _after(request), PAGE_SIZE + 1)
    return _paged(request, collection_id, [r.uri for r in reply_rows], status.replies_count)


async def context(request: web.Request) -> web.StreamResponse:
    """FEP-7888: the whole conversation a post belongs to, as an OrderedCollection of its posts."""
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    text = request.match_info["thread_id"]
    root = await status_store.get(st.db, int(text)) if text.isdigit() and len(text) <= 19 else None
    if root is None or root.local_only:
        raise web.HTTPNotFound()
    members = [m for m in await status_store.thread_members(st.db, root.thread_id or root.id) if _public(m)]
    collection_id = f"{st.base_url}/contexts/{root.thread_id or root.id}"
    after = _after(request)
    page = [m.uri for m in members if after is None or m.id > after][:PAGE_SIZE + 1]
    ids = [m.id for m in members if after is None or m.id > after][:PAGE_SIZE + 1]
    return _paged(request, collection_id, page, len(members), ids)


def _after(request: web.Request) -> int | None:
    text = request.query.get("min_id", "")
    return int(text) if text.isdigit() and len(text) <= 19 else None


def _paged(request: web.Request, collection_id: str, items: list[str], total: int,
           ids: list[int] | None = None) -> web.Response:
    """A collection whose first page is embedded; pages go forward with min_id."""
    has_more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    page_id = collection_id + ("?" + urlencode({"min_id": request.query["min_id"]}) if "min_id" in request.query
                               else "?page=true")
    next_url = None
    if has_more:
        last = ids[PAGE_SIZE - 1] if ids else int(items[-1].rstrip("/").rsplit("/", 1)[-1])
        next_url = f"{collection_id}?{urlencode({'min_id': last})}"
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
    ids = await status_store.public_ids_of(st.db, account.id, PAGE_SIZE, int(max_id) if max_id.isdigit() else None)
    found = await status_store.get_many(st.db, ids)
    items = [render_ap.create_activity(await render_ap.note_document(st, found[i])) for i in ids if i in found]
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
    page_no = int(request.query["page"]) if request.query["page"].isdigit() else 1
    rows = await relations.followers_page(st.db, account.id, direction, None, None, PAGE_SIZE * page_no + 1)
    rows = rows[PAGE_SIZE * (page_no - 1):]
    found = await account_store.get_many(st.db, [a for _, a in rows[:PAGE_SIZE]])
    items = [found[a].uri for _, a in rows[:PAGE_SIZE] if a in found]
    next_url = f"{collection_id}?page={page_no + 1}" if len(rows) > PAGE_SIZE else None
    return as2_response(docs.ordered_collection_page(f"{collection_id}?page={page_no}", collection_id, items, next=next_url))


async def featured(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    guard = await fetch_guard(request)
    if isinstance(guard, web.Response):
        return guard
    account = await _local_account(request)
    ids = await status_store.pinned_ids(st.db, account.id)
    found = await status_store.get_many(st.db, ids)
    notes = [await render_ap.note_document(st, found[i]) for i in ids if i in found and _public(found[i])]
    return as2_response(docs.ordered_collection(f"{account.uri}/collections/featured", len(notes), items=notes))


# -- inboxes -------------------------------------------------------------------------------------------

class InboxRejection(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def verify_request(st: State, request: web.Request, body: bytes | None, event: str = "receive") -> Account:
    """The remote actor whose key signed this request. Refetches the key once to follow rotations."""
    if request.host.lower() != st.domain:
        # A signature made for another host must not be replayed here (proxies must keep Host).
        SIGNATURE_FAILURES.labels("wrong_host").inc()
        raise InboxRejection(401, f"request was addressed to {request.host}, not {st.domain}")
    try:
        signed = parse_signed_request(request.method, request.path_qs, request.headers, body,
                                      scheme=st.config["scheme"], authority=st.domain)
    except SignatureError as exc:
        SIGNATURE_FAILURES.labels("malformed").inc()
        raise InboxRejection(401, exc.reason) from exc
    request["remote_domain"] = host_of(signed.key_id)  # for the access log
    fed = st.federation
    try:
        await st.boundary.admit_request(host_of(signed.key_id), event, request.path)
    except Refused as exc:
        raise InboxRejection(exc.status, exc.reason) from exc
    try:
        owner = await fed.key_owner(signed.key_id)
    except (RemoteError, Exception) as exc:
        SIGNATURE_FAILURES.labels("key_unavailable").inc()
        raise InboxRejection(401, f"could not fetch the signing key: {exc}") from exc
    try:
        verify_signed_request(signed, owner.public_key_pem)
    except SignatureError:
        try:
            owner = await fed.key_owner(signed.key_id, refresh=True)
            verify_signed_request(signed, owner.public_key_pem)
        except (SignatureError, RemoteError, Exception) as exc:
            SIGNATURE_FAILURES.labels("invalid").inc()
            raise InboxRejection(401, "signature does not verify") from exc
    return owner


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it exceeds `limit` (read() alone may return a partial chunk)."""
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _claimed_host(request: web.Request) -> str:
    """The host a rejected request claimed to come from (its keyId), for the boundary log."""
    header = request.headers.get("Signature") or request.headers.get("Signature-Input") or ""
    marker = 'keyid="' if 'keyid="' in header else 'keyId="'
    if marker in header:
        return host_of(header.split(marker, 1)[1].split('"', 1)[0]) or "unknown"
    return "unknown"


async def inbox(request: web.Request) -> web.Response:
    st = state_of(request)
    if request.content_length is not None and request.content_length > MAX_INBOX_BYTES:
        return json_response({"error": "Request entity too large"}, status=413)
    body = await read_limited(request, MAX_INBOX_BYTES)
    if body is None:
        return json_response({"error": "Request entity too large"}, status=413)
    doc: Any = None
    try:
        signer = await verify_request(st, request, body)
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise InboxRejection(400, "body is not JSON") from None
        if not isinstance(doc, dict):
            raise InboxRejection(400, "activity must be a JSON object")
        actor_uri = doc.get("actor")
        if isinstance(actor_uri, dict):
            actor_uri = actor_uri.get("id")
        if not isinstance(actor_uri, str) or actor_uri != signer.uri:
            raise InboxRejection(401, "the activity's actor is not the signer")
        activity_id = doc.get("id")
        if not isinstance(activity_id, str) or len(activity_id) > 2048 or host_of(activity_id) != host_of(signer.uri):
            raise InboxRejection(400, "the activity id must be a URL on the actor's host")
    except InboxRejection as exc:
        log.info("inbox rejected %s: %s", request.remote, exc.reason)
        INBOX_ACTIVITIES.labels(_activity_type(doc), "refused" if exc.status == 403 else "rejected").inc()
        if exc.status != 403:  # refusals by policy are logged by the boundary itself
            st.boundary.record("in", "receive", _claimed_host(request), "rejected", reason=exc.reason)
        return json_response({"error": exc.reason}, status=exc.status)
    # Persisted (group-committed with concurrent deliveries) before we acknowledge.
    fresh = await st.inbox_worker.persist(activity_id, signer.uri, body.decode("utf-8", "replace"), signer.domain)
    INBOX_ACTIVITIES.labels(_activity_type(doc), "accepted" if fresh else "duplicate").inc()
    return web.Response(status=202)


def _activity_type(doc: Any) -> str:
    """A metrics label: the activity's type when it is a plain string, else "unknown"."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    return kind if isinstance(kind, str) and len(kind) <= 40 and kind.isalnum() else "unknown"


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/users/{username}", actor),
        ("GET", "/@{username}", profile_page),
        ("GET", "/@{username}/{id}", note),
        ("GET", "/actor", instance_actor),
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
