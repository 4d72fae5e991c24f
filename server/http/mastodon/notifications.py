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
from server.services import notifications as service
from server.services.errors import NotFound

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
    found = await service.page_for(st, viewer, pg, types=types, exclude=exclude, from_id=p.id("account_id"))
    return json_response(render.notifications_json(st, found), headers=link_header(request, found.cursor_ids))


async def get_one(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:notifications")
    rendered = render.notifications_json(st, await service.one(st, viewer, path_id(request)))
    if not rendered:
        raise NotFound()
    return json_response(rendered[0])


async def clear(request: web.Request) -> web.Response:
    viewer = await require_user(request, "write:notifications")
    await service.clear(state_of(request), viewer)
    return json_response({})


async def dismiss(request: web.Request) -> web.Response:
    viewer = await require_user(request, "write:notifications")
    await service.dismiss(state_of(request), viewer, path_id(request))
    return json_response({})


async def dismiss_legacy(request: web.Request) -> web.Response:
    viewer = await require_user(request, "write:notifications")
    p = await params(request)
    await service.dismiss(state_of(request), viewer, p.id("id"))
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/notifications", list_notifications),
        ("POST", "/api/v1/notifications/clear", clear),
        ("POST", "/api/v1/notifications/dismiss", dismiss_legacy),
        ("GET", "/api/v1/notifications/{id}", get_one),
        ("POST", "/api/v1/notifications/{id}/dismiss", dismiss),
    ])
