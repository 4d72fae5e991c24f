"""/api/v2/search, and /api/v1/search as an alias of the same answer."""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, params, state_of
from server.render import mastodon as render
from server.render.lists_filters import tags_json
from server.services import search as service
from server.services.errors import BadRequest


async def search(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read:search")
    p = await params(request)
    q = p.str("q")
    if q is None or not q.strip():
        raise BadRequest("q is missing", "A search query is required")
    query = service.Query(q=q, type=p.str("type") or None, limit=p.int("limit", 20) or 20,
                          offset=p.int("offset", 0) or 0, resolve=bool(p.bool("resolve", False)),
                          following=bool(p.bool("following", False)), account_id=p.id("account_id"))
    found = await service.search_page(st, viewer, query)
    return json_response({
        "accounts": render.accounts_json(st, found.accounts),
        "statuses": render.statuses_json(st, found.statuses),
        "hashtags": tags_json(st, found.hashtags),
    })


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v2/search", search),
        ("GET", "/api/v1/search", search),
    ])
