"""/api/v1/tags/:name (with follow/unfollow) and /api/v1/followed_tags."""

from __future__ import annotations

from aiohttp import web

from server.http.base import (
    add_routes,
    json_response,
    link_header,
    optional_user,
    page,
    params,
    require_user,
    state_of,
)
from server.render.lists_filters import tags_json
from server.services import tags as service


async def show(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)  # Mastodon asks for no scope here
    return json_response(tags_json(st, [await service.show(st, viewer, request.match_info["name"])])[0])


async def follow(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:follows")
    return json_response(tags_json(st, [await service.follow(st, account, request.match_info["name"])])[0])


async def unfollow(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:follows")
    return json_response(tags_json(st, [await service.unfollow(st, account, request.match_info["name"])])[0])


async def followed(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:follows")
    found, cursor = await service.followed(st, account, page(await params(request), 100, 200))
    return json_response(tags_json(st, found), headers=link_header(request, cursor))


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/followed_tags", followed),
        ("GET", "/api/v1/tags/{name}", show),
        ("POST", "/api/v1/tags/{name}/follow", follow),
        ("POST", "/api/v1/tags/{name}/unfollow", unfollow),
    ])
