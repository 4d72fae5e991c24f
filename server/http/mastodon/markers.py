"""/api/v1/markers"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.base import add_routes, json_response, params, require_user, state_of
from server.render.lists_filters import marker_json
from server.services import markers as service


async def get(request: web.Request) -> web.Response:
    account = await require_user(request, "read:statuses")
    p = await params(request)
    found = await service.get(state_of(request), account, [str(t) for t in p.list("timeline")])
    return json_response({m.timeline: marker_json(m) for m in found})


async def save(request: web.Request) -> web.Response:
    account = await require_user(request, "write:statuses")
    p = await params(request)
    positions: dict[str, Any] = {}
    for timeline in service.TIMELINES:
        nested = p.dict(timeline)
        if "last_read_id" in nested:
            positions[timeline] = nested["last_read_id"]
    saved = await service.save(state_of(request), account, positions)
    return json_response({m.timeline: marker_json(m) for m in saved})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/markers", get),
        ("POST", "/api/v1/markers", save),
    ])
