"""/api/v1/domain_blocks"""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, link_header, page, params, require_user, state_of
from server.services import domain_blocks as service


async def list_blocks(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:blocks")
    rows = await service.page_for(st, account, page(await params(request), 100, 200))
    return json_response([d for _, d in rows], headers=link_header(request, [i for i, _ in rows]))


async def add_block(request: web.Request) -> web.Response:
    account = await require_user(request, "write:blocks")
    await service.block(state_of(request), account, (await params(request)).str("domain"))
    return json_response({})


async def remove_block(request: web.Request) -> web.Response:
    account = await require_user(request, "write:blocks")
    await service.unblock(state_of(request), account, (await params(request)).str("domain"))
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/domain_blocks", list_blocks),
        ("POST", "/api/v1/domain_blocks", add_block),
        ("DELETE", "/api/v1/domain_blocks", remove_block),
    ])
