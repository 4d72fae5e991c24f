"""/api/v1/tags/:name (with follow/unfollow) and /api/v1/followed_tags."""

from __future__ import annotations

import time

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
from server.ids import id_for_time
from server.render.lists_filters import tag_json
from server.services import tags as service
from server.state import State
from server.storage import tag_follows as store


async def _tags_json(st: State, tags: list[tuple[int, str]], following: set[int] | None) -> list[dict[str, object]]:
    since = id_for_time((int(time.time()) // 86400 - 6) * 86400)
    usage = await store.history(st.db, [t for t, _ in tags], since)
    return [tag_json(st, name, usage[tag_id], None if following is None else tag_id in following, tag_id)
            for tag_id, name in tags]


async def show(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)  # Mastodon asks for no scope here
    name = service.normalise(request.match_info["name"])
    found = await store.tag_by_name(st.db, name)
    if found is None:  # a hashtag nobody used yet still exists as far as clients are concerned
        return json_response(tag_json(st, name, [], False if viewer else None))
    following = await store.following(st.db, viewer.id, [found[0]]) if viewer else None
    return json_response((await _tags_json(st, [found], following))[0])


async def follow(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:follows")
    tag = await service.follow(st, account, request.match_info["name"])
    return json_response((await _tags_json(st, [tag], {tag[0]}))[0])


async def unfollow(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:follows")
    tag = await service.unfollow(st, account, request.match_info["name"])
    if tag is None:
        return json_response(tag_json(st, service.normalise(request.match_info["name"]), [], False))
    return json_response((await _tags_json(st, [tag], set()))[0])


async def followed(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:follows")
    rows = await store.followed_page(st.db, account.id, page(await params(request), 100, 200))
    tags = [(tag_id, name) for _, tag_id, name in rows]
    return json_response(await _tags_json(st, tags, {t for t, _ in tags}),
                         headers=link_header(request, [r for r, _, _ in rows]))


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/followed_tags", followed),
        ("GET", "/api/v1/tags/{name}", show),
        ("POST", "/api/v1/tags/{name}/follow", follow),
        ("POST", "/api/v1/tags/{name}/unfollow", unfollow),
    ])
