"""Follow suggestions (/api/v1 and /api/v2/suggestions), /api/v1/accounts/familiar_followers
(trends: trends.py)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from server.http.base import (
    add_routes,
    json_response,
    params,
    path_id,
    require_user,
    state_of,
)
from server.ids import parse_id
from server.render import mastodon as render
from server.services import discovery as service
from server.services.errors import BadRequest, Unprocessable

MAX_FAMILIAR_IDS = 100


def _limit(value: int | None) -> int:
    return max(1, min(value or 40, 80))


async def suggestions_v2(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:accounts")
    found = await service.suggestions(st, viewer, _limit((await params(request)).int("limit")))
    # Same-department colleagues are the organisation's own picks ("featured", shown as staff);
    # the rest are the most followed accounts ("most_followed", shown as global).
    return json_response([{"source": "staff" if colleague else "global",
                           "sources": ["featured"] if colleague else ["most_followed"],
                           "account": render.account_json(st, account)} for account, colleague in found])


async def suggestions_v1(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:accounts")
    found = await service.suggestions(st, viewer, _limit((await params(request)).int("limit")))
    return json_response([render.account_json(st, account) for account, _ in found])


async def dismiss_suggestion(request: web.Request) -> web.Response:
    viewer = await require_user(request, "write", "write:accounts")
    await service.dismiss(state_of(request), viewer, path_id(request, "account_id"))
    return json_response({})


async def _id_list(request: web.Request) -> list[Any]:
    """id[] from the query, or from a JSON body (Mastodon.py sends a GET with one)."""
    values = (await params(request)).list("id")
    if not values and request.can_read_body and request.content_type == "application/json":
        try:
            body = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            raise BadRequest("Invalid JSON body") from None
        raw = body.get("id", body.get("id[]")) if isinstance(body, dict) else None
        values = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return values


async def familiar_followers(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:follows")
    ids: list[int] = []
    for raw in await _id_list(request):
        parsed = None if isinstance(raw, bool) else parse_id(str(raw))
        if parsed is None:
            raise Unprocessable("id contains an invalid id")
        if parsed not in ids:
            ids.append(parsed)
    ids = ids[:MAX_FAMILIAR_IDS]
    familiar = await service.familiar_followers(st, viewer, ids)
    return json_response([{"id": str(target), "accounts": render.accounts_json(st, familiar.get(target, []))}
                          for target in ids])


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/accounts/familiar_followers", familiar_followers),
        ("GET", "/api/v2/suggestions", suggestions_v2),
        ("GET", "/api/v1/suggestions", suggestions_v1),
        ("DELETE", "/api/v1/suggestions/{account_id}", dismiss_suggestion),
    ])
