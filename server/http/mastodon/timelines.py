"""/api/v1/timelines/*, favourites and bookmarks listings."""

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
from server.render import mastodon as render
from server.services import filtering
from server.storage import relations, statuses, timelines


async def _render_ids(request: web.Request, viewer_id: int | None, ids: list[int],
                      cursor_ids: list[int] | None = None, context: str | None = None) -> web.Response:
    st = state_of(request)
    found = await statuses.get_many(st.db, ids)
    items = [found[i] for i in ids if i in found]
    rendered = await render.statuses_json(st, viewer_id, items)
    if context is not None:  # `hide` filters drop statuses; paging still follows the unfiltered ids
        rendered = filtering.drop_hidden(rendered, context)
    return json_response(rendered,
                         headers=link_header(request, cursor_ids if cursor_ids is not None else ids))


async def home(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:statuses")
    pg = page(await params(request))
    hidden = await relations.hidden_account_ids(st.db, viewer.id)
    ids = await timelines.home(st.db, viewer.id, pg, hidden)
    return await _render_ids(request, viewer.id, ids, context="home")


async def public(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read:statuses")
    p = await params(request)
    pg = page(p)
    hidden = await relations.hidden_account_ids(st.db, viewer.id) if viewer else set()
    ids = await timelines.public(st.db, pg, hidden, local=bool(p.bool("local")), remote=bool(p.bool("remote")),
                                 only_media=bool(p.bool("only_media")))
    return await _render_ids(request, viewer.id if viewer else None, ids, context="public")


async def tag(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read:statuses")
    p = await params(request)
    pg = page(p)
    tag_id = await statuses.tag_id(st.db, request.match_info["hashtag"].lstrip("#"))
    if tag_id is None:
        return json_response([])
    hidden = await relations.hidden_account_ids(st.db, viewer.id) if viewer else set()
    ids = await timelines.tag(st.db, tag_id, pg, hidden, local=bool(p.bool("local")))
    return await _render_ids(request, viewer.id if viewer else None, ids, context="public")


async def _collection(request: web.Request, table: str, scope: str) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, scope)
    pg = page(await params(request))
    rows = await timelines.statuses_by_ids_page(st.db, table, viewer.id, pg)
    return await _render_ids(request, viewer.id, [s for _, s in rows], [r for r, _ in rows])


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
