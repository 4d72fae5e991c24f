"""/api/v1/lists, list members, /api/v1/timelines/list/:id and /api/v1/accounts/:id/lists."""

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
from server.render.lists_filters import list_json
from server.services import lists as service


async def index(request: web.Request) -> web.Response:
    account = await require_user(request, "read:lists")
    return json_response([list_json(i) for i in await service.owned(state_of(request), account)])


async def show(request: web.Request) -> web.Response:
    account = await require_user(request, "read:lists")
    return json_response(list_json(await service.own_list(state_of(request), account, path_id(request))))


async def create(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    p = await params(request)
    item = await service.create(state_of(request), account, p.str("title"), p.str("replies_policy"),
                                p.bool("exclusive"))
    return json_response(list_json(item))


async def update(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    p = await params(request)
    item = await service.update(state_of(request), account, path_id(request), p.str("title"),
                                p.str("replies_policy"), p.bool("exclusive"))
    return json_response(list_json(item))


async def delete(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    await service.delete(state_of(request), account, path_id(request))
    return json_response({})


async def members(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:lists")
    p = await params(request)
    everyone = p.str("limit") == "0"  # Mastodon: limit=0 lists every member, unpaginated
    found, cursor = await service.members(st, account, path_id(request), None if everyone else page(p, 40, 80))
    return json_response(render.accounts_json(st, found), headers={} if everyone else link_header(request, cursor))


async def add_members(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    await service.add_members(state_of(request), account, path_id(request), (await params(request)).ids("account_ids"))
    return json_response({})


async def remove_members(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    await service.remove_members(state_of(request), account, path_id(request),
                                 (await params(request)).ids("account_ids"))
    return json_response({})


async def timeline(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:lists")
    list_id = path_id(request, "list_id")
    found = await service.timeline(st, account, list_id, page(await params(request)))
    return json_response(render.statuses_json(st, found), headers=link_header(request, found.cursor_ids))


async def account_lists(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:lists")
    return json_response([list_json(i) for i in await service.containing(st, viewer, path_id(request))])


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/lists", index),
        ("POST", "/api/v1/lists", create),
        ("GET", "/api/v1/lists/{id}", show),
        ("PUT", "/api/v1/lists/{id}", update),
        ("DELETE", "/api/v1/lists/{id}", delete),
        ("GET", "/api/v1/lists/{id}/accounts", members),
        ("POST", "/api/v1/lists/{id}/accounts", add_members),
        ("DELETE", "/api/v1/lists/{id}/accounts", remove_members),
        ("GET", "/api/v1/timelines/list/{list_id}", timeline),
        ("GET", "/api/v1/accounts/{id}/lists", account_lists),
    ])
