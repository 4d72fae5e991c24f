"""/api/v1/reports"""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, params, require_user, state_of
from server.render import reports as render
from server.services import reports as service


async def create_report(request: web.Request) -> web.Response:
    st = state_of(request)
    reporter = await require_user(request, "write:reports")
    p = await params(request)
    new = service.NewReport(account_id=p.id("account_id"), status_ids=p.ids("status_ids"),
                            comment=p.text("comment"), forward=bool(p.bool("forward", False)),
                            category=p.str("category") or None, rule_ids=p.ids("rule_ids"))
    report = await service.file(st, reporter, new)
    return json_response(render.reports_json(st, [report], await service.targets(st, [report]))[0])


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("POST", "/api/v1/reports", create_report),
    ])
