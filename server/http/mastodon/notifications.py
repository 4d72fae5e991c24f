"""/api/v1/notifications"""

from __future__ import annotations

from aiohttp import web

from server.http.base import (
    add_routes,
    json_response,
    link_header,
    page,
    params,
    path_id,
    require_user,
    state_of,
)
from server.render import mastodon as render
from server.services import filtering
from server.services.errors import NotFound
from server.storage import notifications as store
from server.storage import relations

TYPES = {"mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
         "admin.sign_up", "admin.report", "severed_relationships", "moderation_warning"}


async def list_notifications(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:notifications")
    p = await params(request)
    pg = page(p, 40, 80)
    types = [t for t in p.list("types") if t in TYPES] or None
    if p.list("types") and not types:
        return json_response([])
    exclude = [t for t in p.list("exclude_types") if t in TYPES] or None
    from_id = p.id("account_id")
    hidden = await relations.notification_muted_ids(st.db, viewer.id)
    notes = await store.list_for(st.db, viewer.id, pg, types, exclude, from_id, hidden)
    rendered = filtering.drop_hidden_notifications(await render.notifications_json(st, viewer.id, notes))
    return json_response(rendered,
                         headers=link_header(request, [n.id for n in notes]))


async def get_one(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:notifications")
    note = await store.get(st.db, viewer.id, path_id(request))
    rendered = await render.notifications_json(st, viewer.id, [note]) if note else []
    if not rendered:
        raise NotFound()
    return json_response(rendered[0])


async def clear(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:notifications")
    async with st.db.transaction() as tx:
        await store.clear(tx, viewer.id)
    return json_response({})


async def dismiss(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:notifications")
    notification_id = path_id(request)
    async with st.db.transaction() as tx:
        found = await store.dismiss(tx, viewer.id, notification_id)
    if not found:
        raise NotFound()
    return json_response({})


async def dismiss_legacy(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:notifications")
    p = await params(request)
    notification_id = p.id("id")
    async with st.db.transaction() as tx:
        found = notification_id is not None and await store.dismiss(tx, viewer.id, notification_id)
    if not found:
        raise NotFound()
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/notifications", list_notifications),
        ("POST", "/api/v1/notifications/clear", clear),
        ("POST", "/api/v1/notifications/dismiss", dismiss_legacy),
        ("GET", "/api/v1/notifications/{id}", get_one),
        ("POST", "/api/v1/notifications/{id}/dismiss", dismiss),
    ])
