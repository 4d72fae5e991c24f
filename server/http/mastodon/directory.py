"""GET /api/v1/directory: the people directory (Mastodon's parameters, plus department, title and
location filters)."""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, params, state_of
from server.render import mastodon as render
from server.services import directory as service


async def directory(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read", "read:accounts")
    p = await params(request)
    query = service.DirectoryQuery(
        local=bool(p.bool("local", False)), order=p.text("order", "active") or "active",
        offset=p.int("offset", 0) or 0, limit=p.int("limit", 40) or 40,
        department=p.str("department"), title=p.str("title"), location=p.str("location"))
    found = await service.directory(st, viewer, query)
    return json_response([render.account_json(st, a) for a in found])


def setup(app: web.Application) -> None:
    add_routes(app, [("GET", "/api/v1/directory", directory)])
