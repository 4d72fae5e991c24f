"""/api/v1/announcements/*"""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, path_id, require_user, state_of
from server.render import announcements as render
from server.services import announcements as service


async def list_announcements(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read", "read:accounts")
    return json_response(render.announcements_json(st, await service.active(st, viewer)))


async def dismiss(request: web.Request) -> web.Response:
    account = await require_user(request, "write:accounts")
    await service.dismiss(state_of(request), account, path_id(request))
    return json_response({})


async def add_reaction(request: web.Request) -> web.Response:
    account = await require_user(request, "write:favourites")
    await service.react(state_of(request), account, path_id(request), request.match_info["name"])
    return json_response({})


async def remove_reaction(request: web.Request) -> web.Response:
    account = await require_user(request, "write:favourites")
    await service.unreact(state_of(request), account, path_id(request), request.match_info["name"])
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/announcements", list_announcements),
        ("POST", "/api/v1/announcements/{id}/dismiss", dismiss),
        ("PUT", "/api/v1/announcements/{id}/reactions/{name}", add_reaction),
        ("DELETE", "/api/v1/announcements/{id}/reactions/{name}", remove_reaction),
    ])
