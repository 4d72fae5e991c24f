"""Emoji reactions through the Pleroma/Akkoma API that Akkoma-aware clients speak:
PUT/DELETE /api/v1/pleroma/statuses/:id/reactions/:emoji, GET .../reactions[/:emoji]."""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, path_id, require_user, state_of
from server.render import mastodon as render
from server.services import loaders
from server.services import reactions as service


async def react(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:favourites")
    status = await service.react(st, viewer, path_id(request), request.match_info["emoji"])
    return json_response((render.statuses_json(st, await loaders.status_page(st, viewer.id, [status])))[0])


async def unreact(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:favourites")
    status = await service.unreact(st, viewer, path_id(request), request.match_info["emoji"].strip())
    return json_response((render.statuses_json(st, await loaders.status_page(st, viewer.id, [status])))[0])


async def listing(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)
    name = request.match_info.get("emoji")
    found = await service.summary(st, viewer, path_id(request), name.strip() if name else None)
    return json_response([{"name": n, "count": count, "me": me,
                           "accounts": [render.account_json(st, a) for a in accounts]}
                          for n, count, me, accounts in found])


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/pleroma/statuses/{id}/reactions", listing),
        ("GET", "/api/v1/pleroma/statuses/{id}/reactions/{emoji}", listing),
        ("PUT", "/api/v1/pleroma/statuses/{id}/reactions/{emoji}", react),
        ("DELETE", "/api/v1/pleroma/statuses/{id}/reactions/{emoji}", unreact),
    ])
