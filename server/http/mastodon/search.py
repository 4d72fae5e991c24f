"""/api/v2/search, and /api/v1/search as an alias of the same answer."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, params, state_of
from server.ids import id_for_time
from server.render import mastodon as render
from server.render.lists_filters import tag_json
from server.services import search as service
from server.services.errors import BadRequest
from server.state import State
from server.storage import tag_follows


async def _hashtags_json(st: State, tags: list[tuple[int | None, str]], viewer_id: int | None) -> list[dict[str, Any]]:
    ids = [t for t, _ in tags if t is not None]
    since = id_for_time((int(time.time()) // 86400 - 6) * 86400)
    usage = await tag_follows.history(st.db, ids, since)
    following = await tag_follows.following(st.db, viewer_id, ids) if viewer_id is not None else set()
    return [tag_json(st, name, usage.get(tag_id, []) if tag_id is not None else [],
                     None if viewer_id is None else tag_id in following, tag_id)
            for tag_id, name in tags]


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
    found = await service.search(st, viewer, query)
    viewer_id = viewer.id if viewer else None
    return json_response({
        "accounts": [render.account_json(st, a) for a in found.accounts],
        "statuses": await render.statuses_json(st, viewer_id, found.statuses),
        "hashtags": await _hashtags_json(st, found.hashtags, viewer_id),
    })


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v2/search", search),
        ("GET", "/api/v1/search", search),
    ])
