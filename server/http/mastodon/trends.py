"""/api/v1/trends/{tags,statuses,links} and Mastodon's admin review of them (/api/v1/admin/trends/*)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, params, path_id, state_of
from server.http.mastodon.admin_accounts import _staff
from server.render import mastodon as render
from server.render import trends as trend_render
from server.services import loaders
from server.services import trends as service


async def _paging(request: web.Request, default: int) -> tuple[int, int]:
    p = await params(request)
    return p.int("offset", 0) or 0, p.int("limit", default) or default


async def tags(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)
    offset, limit = await _paging(request, 10)
    found, following = await service.tags(st, viewer, offset=offset, limit=limit)
    return json_response([trend_render.trending_tag_json(st.base_url, t, following) for t in found])


async def links(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)
    offset, limit = await _paging(request, 10)
    return json_response([trend_render.link_json(t) for t in await service.links(st, viewer, offset=offset,
                                                                                  limit=limit)])


async def statuses(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)
    offset, limit = await _paging(request, 20)
    found = await service.statuses(st, viewer, offset=offset, limit=limit)
    return json_response(render.statuses_json(st, await loaders.status_page(st, viewer.id if viewer else None, found)))


async def admin_tags(request: web.Request) -> web.Response:
    await _staff(request, "admin:read")
    st = state_of(request)
    found = await service.admin_list(st)
    return json_response([trend_render.admin_tag_json(st.base_url, t) for t in found.tags])


async def admin_links(request: web.Request) -> web.Response:
    await _staff(request, "admin:read")
    found = await service.admin_list(state_of(request))
    return json_response([trend_render.admin_link_json(t) for t in found.links])


async def admin_statuses(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:read")
    st = state_of(request)
    found = await service.admin_statuses(st)
    return json_response(render.statuses_json(st, await loaders.status_page(st, actor.account_id, found)))


def _review(kind: str, approve: bool) -> Any:
    async def handler(request: web.Request) -> web.Response:
        actor = await _staff(request, "admin:write")
        st = state_of(request)
        item_id = path_id(request)
        await service.review(st, actor.at(request.remote), kind, item_id, approve)
        found = await service.admin_list(st)
        if kind == "tag":
            tag = next((t for t in found.tags if t.id == item_id), None)
            return json_response(trend_render.admin_tag_json(st.base_url, tag) if tag else {"id": str(item_id)})
        if kind == "link":
            link = next((t for t in found.links if t.id == item_id), None)
            return json_response(trend_render.admin_link_json(link) if link else {"id": str(item_id)})
        shown = await service.admin_statuses(st, [item_id])
        return json_response((render.statuses_json(st, await loaders.status_page(st, actor.account_id, shown)) or [{"id": str(item_id)}])[0])
    return handler


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/trends", tags),  # the older name of /trends/tags
        ("GET", "/api/v1/trends/tags", tags),
        ("GET", "/api/v1/trends/statuses", statuses),
        ("GET", "/api/v1/trends/links", links),
        ("GET", "/api/v1/admin/trends/tags", admin_tags),
        ("GET", "/api/v1/admin/trends/statuses", admin_statuses),
        ("GET", "/api/v1/admin/trends/links", admin_links),
        *[("POST", f"/api/v1/admin/trends/{path}/{{id}}/{verb}", _review(kind, verb == "approve"))
          for kind, path in (("tag", "tags"), ("status", "statuses"), ("link", "links"))
          for verb in ("approve", "reject")],
    ])
