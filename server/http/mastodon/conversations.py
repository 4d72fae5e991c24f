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
from server.render import conversations as render
from server.services import conversations as service
from server.storage import conversations as store


async def list_conversations(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:statuses")
    pg = page(await params(request), 20, 40)
    items = await store.page_for(st.db, account.id, pg)
    # Pages are cut by the last status id, so that is what the Link header carries.
    return json_response(await render.conversations_json(st, account.id, items),
                         headers=link_header(request, [c.last_status_id for c in items]))


async def read(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:conversations")
    conversation = await service.mark_read(st, account, path_id(request))
    return json_response((await render.conversations_json(st, account.id, [conversation]))[0])


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
