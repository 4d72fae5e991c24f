"""/api/v1/reports, and /api/v1/push/subscription (Web Push is not supported yet)."""

from __future__ import annotations

from aiohttp import web

from server.http.base import add_routes, json_response, params, require_user, state_of
from server.render import reports as render
from server.services import reports as service
from server.services.errors import NotFound, Unprocessable


def _ids(values: list[object], name: str) -> list[int]:
    out = []
    for v in values:
        text = str(v).strip()
        if isinstance(v, bool) or not text.isdigit() or len(text) > 19:
            raise Unprocessable(f"{name} contains an invalid id")
        out.append(int(text))
    return out


async def create_report(request: web.Request) -> web.Response:
    st = state_of(request)
    reporter = await require_user(request, "write:reports")
    p = await params(request)
    new = service.NewReport(account_id=p.id("account_id"), status_ids=_ids(p.list("status_ids"), "status_ids"),
                            comment=p.text("comment"), forward=bool(p.bool("forward", False)),
                            category=p.str("category") or None, rule_ids=_ids(p.list("rule_ids"), "rule_ids"))
    report = await service.file(st, reporter, new)
    return json_response((await render.reports_json(st, [report]))[0])


async def push_subscription(request: web.Request) -> web.Response:
    """Web Push is not supported yet: no subscription can exist, so every call finds none."""
    await require_user(request, "push")
    raise NotFound()


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("POST", "/api/v1/reports", create_report),
        ("GET", "/api/v1/push/subscription", push_subscription),
        ("POST", "/api/v1/push/subscription", push_subscription),
        ("PUT", "/api/v1/push/subscription", push_subscription),
        ("DELETE", "/api/v1/push/subscription", push_subscription),
    ])
