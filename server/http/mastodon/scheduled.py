"""/api/v1/scheduled_statuses/*"""

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
from server.http.mastodon.polls import time_param
from server.render import scheduled as render
from server.services import scheduled as service
from server.services.errors import Unprocessable


async def list_scheduled(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:statuses")
    pg = page(await params(request), 20, 40)
    found = await service.page_for(st, account, pg)
    return json_response(render.scheduled_statuses_json(st, found),
                         headers=link_header(request, [i.id for i in found.items]))


async def get_scheduled(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:statuses")
    item = await service.get(st, account, path_id(request))
    return json_response(render.scheduled_statuses_json(st, await service.shown(st, [item]))[0])


async def update_scheduled(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:statuses")
    when = time_param(await params(request), "scheduled_at")
    if when is None:
        raise Unprocessable("scheduled_at can't be blank")
    item = await service.reschedule(st, account, path_id(request), when)
    return json_response(render.scheduled_statuses_json(st, await service.shown(st, [item]))[0])


async def delete_scheduled(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:statuses")
    await service.cancel(st, account, path_id(request))
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/scheduled_statuses", list_scheduled),
        ("GET", "/api/v1/scheduled_statuses/{id}", get_scheduled),
        ("PUT", "/api/v1/scheduled_statuses/{id}", update_scheduled),
        ("DELETE", "/api/v1/scheduled_statuses/{id}", delete_scheduled),
    ])
