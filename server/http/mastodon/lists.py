"""/api/v1/lists, list members, /api/v1/timelines/list/:id and /api/v1/accounts/:id/lists."""

from __future__ import annotations

from aiohttp import web

from server.http.base import (
    Params,
    add_routes,
    json_response,
    link_header,
    page,
    params,
    path_id,
    require_user,
    state_of,
)
from server.render import mastodon as render
from server.render.lists_filters import list_json
from server.services import accounts as account_service
from server.services import filtering
from server.services import lists as service
from server.services.errors import Unprocessable
from server.storage import lists as store
from server.storage import relations, statuses


def _ids(p: Params, name: str) -> list[int]:
    out = []
    for value in p.list(name):
        text = str(value).strip()
        if not text.isdigit() or len(text) > 19:
            raise Unprocessable(f"{name} contains an invalid id")
        out.append(int(text))
    return out


async def index(request: web.Request) -> web.Response:
    account = await require_user(request, "read:lists")
    return json_response([list_json(i) for i in await store.owned(state_of(request).db, account.id)])


async def show(request: web.Request) -> web.Response:
    account = await require_user(request, "read:lists")
    return json_response(list_json(await service.own_list(state_of(request), account, path_id(request))))


async def create(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    p = await params(request)
    item = await service.create(state_of(request), account, p.str("title"), p.str("replies_policy"),
                                p.bool("exclusive"))
    return json_response(list_json(item))


async def update(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    p = await params(request)
    item = await service.update(state_of(request), account, path_id(request), p.str("title"),
                                p.str("replies_policy"), p.bool("exclusive"))
    return json_response(list_json(item))


async def delete(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    await service.delete(state_of(request), account, path_id(request))
    return json_response({})


async def members(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:lists")
    item = await service.own_list(st, account, path_id(request))
    p = await params(request)
    everyone = p.str("limit") == "0"  # Mastodon: limit=0 lists every member, unpaginated
    rows = await store.members_page(st.db, item.id, None if everyone else page(p, 40, 80))
    found = await render.accounts_json(st, [a for _, a in rows])
    return json_response(found, headers={} if everyone else link_header(request, [r for r, _ in rows]))


async def add_members(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    await service.add_members(state_of(request), account, path_id(request), _ids(await params(request), "account_ids"))
    return json_response({})


async def remove_members(request: web.Request) -> web.Response:
    account = await require_user(request, "write:lists")
    await service.remove_members(state_of(request), account, path_id(request),
                                 _ids(await params(request), "account_ids"))
    return json_response({})


async def timeline(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:lists")
    item = await service.own_list(st, account, path_id(request, "list_id"))
    pg = page(await params(request))
    hidden = await relations.hidden_account_ids(st.db, account.id)
    ids = await store.timeline(st.db, item.id, pg, hidden)
    found = await statuses.get_many(st.db, ids)
    rendered = await render.statuses_json(st, account.id, [found[i] for i in ids if i in found])
    return json_response(filtering.drop_hidden(rendered, "home"), headers=link_header(request, ids))


async def account_lists(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:lists")
    target = await account_service.require_account(st, path_id(request))
    return json_response([list_json(i) for i in await store.owned_containing(st.db, viewer.id, target.id)])


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/lists", index),
        ("POST", "/api/v1/lists", create),
        ("GET", "/api/v1/lists/{id}", show),
        ("PUT", "/api/v1/lists/{id}", update),
        ("DELETE", "/api/v1/lists/{id}", delete),
        ("GET", "/api/v1/lists/{id}/accounts", members),
        ("POST", "/api/v1/lists/{id}/accounts", add_members),
        ("DELETE", "/api/v1/lists/{id}/accounts", remove_members),
        ("GET", "/api/v1/timelines/list/{list_id}", timeline),
        ("GET", "/api/v1/accounts/{id}/lists", account_lists),
    ])
