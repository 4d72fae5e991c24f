"""Mastodon's admin API for reports: /api/v1/admin/reports (list, show, assign, unassign, resolve,
reopen)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.base import add_routes, json_response, link_header, page, params, path_id, state_of
from server.http.mastodon.admin_accounts import _staff, accounts_json
from server.render import admin as render
from server.render.mastodon import statuses_json
from server.services import admin as service
from server.state import State


async def _reports_json(state: State, viewer_id: int | None, ids: list[int]) -> list[dict[str, Any]]:
    reports, statuses = await service.admin_reports(state, ids, viewer_id)
    people = {p.account.id: p for r in reports for p in (r.reporter, r.target, r.assigned, r.action_taken_by) if p}
    rendered = dict(zip(people, accounts_json(state, list(people.values())), strict=True))
    return [render.admin_report_json(r, rendered, statuses_json(state, statuses[r.report.id])) for r in reports]


async def list_reports(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:read:reports")
    p = await params(request)
    st = state_of(request)
    ids = await service.list_reports(st, resolved=p.bool("resolved"), account_id=p.id("account_id"),
                                     target_account_id=p.id("target_account_id"), page=page(p, 100, 200))
    return json_response(await _reports_json(st, actor.account_id, ids), headers=link_header(request, ids))


async def show(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:read:reports")
    st = state_of(request)
    found = await _reports_json(st, actor.account_id, [path_id(request)])
    if not found:
        from server.services.errors import NotFound
        raise NotFound()
    return json_response(found[0])


def _step(kind: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        actor = await _staff(request, "admin:write:reports")
        st = state_of(request)
        report_id = path_id(request)
        if kind in ("assign_to_self", "unassign"):
            await service.assign_report(st, actor, report_id, to_self=kind == "assign_to_self")
        elif kind == "resolve":
            await service.resolve_report(st, actor, report_id)
        else:
            await service.reopen_report(st, actor, report_id)
        return json_response((await _reports_json(st, actor.account_id, [report_id]))[0])
    return handler


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/admin/reports", list_reports),
        ("GET", "/api/v1/admin/reports/{id}", show),
        ("POST", "/api/v1/admin/reports/{id}/assign_to_self", _step("assign_to_self")),
        ("POST", "/api/v1/admin/reports/{id}/unassign", _step("unassign")),
        ("POST", "/api/v1/admin/reports/{id}/resolve", _step("resolve")),
        ("POST", "/api/v1/admin/reports/{id}/reopen", _step("reopen")),
    ])
