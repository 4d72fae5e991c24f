"""/api/v1/timelines/*, favourites and bookmarks listings."""

from __future__ import annotations

from aiohttp import web

from server.http.base import (
    Params,
    Unprocessable,
    add_routes,
    encoded_json_response,
    link_header,
    optional_user_id,
    page,
    params,
    require_user,
    require_user_id,
    state_of,
)
from server.render import mastodon as render
from server.render.bundles import StatusPage
from server.services import timelines as service


def _answer(request: web.Request, found: StatusPage) -> web.Response:
    return encoded_json_response(render.statuses_bytes(state_of(request), found),
                                 headers=link_header(request, found.cursor_ids))


async def home(request: web.Request) -> web.Response:
    viewer_id = await require_user_id(request, "read:statuses")
    pg = page(await params(request))
    return _answer(request, await service.home(state_of(request), viewer_id, pg))


async def public(request: web.Request) -> web.Response:
    viewer_id = await optional_user_id(request, "read:statuses")
    p = await params(request)
    found = await service.public(state_of(request), viewer_id, page(p), local=bool(p.bool("local")),
                                 remote=bool(p.bool("remote")), only_media=bool(p.bool("only_media")))
    return _answer(request, found)


def _tag_names(p: Params, name: str) -> list[str]:
    values = p.list(name)
    if not all(isinstance(v, str) for v in values):
        raise Unprocessable(f"{name} must be a list of hashtags")
    return [v for v in values if v.strip("# ")]


async def tag(request: web.Request) -> web.Response:
    viewer_id = await optional_user_id(request, "read:statuses")
    p = await params(request)
    found = await service.tag(state_of(request), viewer_id, request.match_info["hashtag"], page(p),
                              local=bool(p.bool("local")), remote=bool(p.bool("remote")),
                              only_media=bool(p.bool("only_media")), any_of=_tag_names(p, "any"),
                              all_of=_tag_names(p, "all"), none_of=_tag_names(p, "none"))
    return _answer(request, found)


async def _collection(request: web.Request, table: str, scope: str) -> web.Response:
    viewer = await require_user(request, scope)
    pg = page(await params(request))
    return _answer(request, await service.collection(state_of(request), viewer, table, pg))


async def favourites(request: web.Request) -> web.Response:
    return await _collection(request, "favourites", "read:favourites")


async def bookmarks(request: web.Request) -> web.Response:
    return await _collection(request, "bookmarks", "read:bookmarks")


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/timelines/home", home),
        ("GET", "/api/v1/timelines/public", public),
        ("GET", "/api/v1/timelines/tag/{hashtag}", tag),
        ("GET", "/api/v1/favourites", favourites),
        ("GET", "/api/v1/bookmarks", bookmarks),
    ])
