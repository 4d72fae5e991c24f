"""/api/v1/conversations/*"""

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
from server.services import conversations as service


async def list_conversations(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:statuses")
    pg = page(await params(request), 20, 40)
    found = await service.page_for(st, account, pg)
    # Pages are cut by the last status id, so that is what the Link header carries.
    return json_response(render.conversations_json(st, found),
                         headers=link_header(request, [c.last_status_id for c in found.items]))


async def read(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:conversations")
    found = await service.mark_read(st, account, path_id(request))
    return json_response(render.conversations_json(st, found)[0])


async def remove(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:conversations")
    await service.remove(st, account, path_id(request))
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/conversations", list_conversations),
        ("POST", "/api/v1/conversations/{id}/read", read),
        ("DELETE", "/api/v1/conversations/{id}", remove),
    ])
