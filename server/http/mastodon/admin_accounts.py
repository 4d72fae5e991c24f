"""Mastodon's admin API for accounts (/api/v1/admin/accounts, /api/v2/admin/accounts) and the audit log
(/api/v1/admin/audit_log)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.domain.identity import AdminAccount
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
from server.render import admin as render
from server.render.mastodon import account_json
from server.services import admin as service
from server.services import audit as audit_service
from server.services.audit import Actor
from server.services.errors import Unprocessable
from server.state import State


async def _staff(request: web.Request, scope: str, admin_only: bool = False) -> Actor:
    account = await require_user(request, scope)
    return await service.staff(state_of(request), account, request.remote, admin_only=admin_only)


def accounts_json(state: State, items: list[AdminAccount]) -> list[dict[str, Any]]:
    return [render.admin_account_json(item, account_json(state, item.account)) for item in items]


def _listing(request: web.Request, items: list[AdminAccount]) -> web.Response:
    st = state_of(request)
    return json_response(accounts_json(st, items), headers=link_header(request, [i.account.id for i in items]))


def _v1_filter(p: Params) -> service.AccountFilter:
    origin = "local" if p.bool("local") else "remote" if p.bool("remote") else None
    status = next((s for s in service.STATUSES if p.bool(s)), None)
    return service.AccountFilter(origin=origin, status=status, staff=bool(p.bool("staff")),
                                 username=p.str("username"), display_name=p.str("display_name"),
                                 by_domain=p.str("by_domain"), email=p.str("email"))


async def list_v1(request: web.Request) -> web.Response:
    await _staff(request, "admin:read:accounts")
    p = await params(request)
    items = await service.list_accounts(state_of(request), _v1_filter(p), page(p, default=100, maximum=200))
    return _listing(request, items)


async def list_v2(request: web.Request) -> web.Response:
    await _staff(request, "admin:read:accounts")
    p = await params(request)
    permissions = p.str("permissions")
    if permissions not in (None, "", "staff"):
        raise Unprocessable("permissions must be staff")
    filters = service.AccountFilter(origin=p.str("origin") or None, status=p.str("status") or None,
                                    staff=permissions == "staff", username=p.str("username"),
                                    display_name=p.str("display_name"), by_domain=p.str("by_domain"),
                                    email=p.str("email"))
    items = await service.list_accounts(state_of(request), filters, page(p, default=100, maximum=200))
    return _listing(request, items)


async def show(request: web.Request) -> web.Response:
    await _staff(request, "admin:read:accounts")
    st = state_of(request)
    return json_response(accounts_json(st, [await service.get_account(st, path_id(request))])[0])


async def _answer(request: web.Request) -> web.Response:
    st = state_of(request)
    return json_response(accounts_json(st, [await service.get_account(st, path_id(request))])[0])


async def action(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:write:accounts")
    p = await params(request)
    await service.act(state_of(request), actor, path_id(request), p.text("type", "none"), report_id=p.id("report_id"),
                      text=p.text("text"))
    return json_response({})


def _undo(what: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        actor = await _staff(request, "admin:write:accounts")
        await service.undo(state_of(request), actor, path_id(request), what)
        return await _answer(request)
    return handler


async def approve(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:write:accounts")
    await service.approve(state_of(request), actor, path_id(request))
    return await _answer(request)


async def reject(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:write:accounts")
    st = state_of(request)
    answer = accounts_json(st, [await service.get_account(st, path_id(request))])[0]
    await service.reject(st, actor, path_id(request))
    return json_response(answer)


async def delete(request: web.Request) -> web.Response:
    actor = await _staff(request, "admin:write:accounts")
    st = state_of(request)
    answer = accounts_json(st, [await service.get_account(st, path_id(request))])[0]
    await service.delete(st, actor, path_id(request))
    return json_response(answer)


async def audit_log(request: web.Request) -> web.Response:
    """Admins only; newest first, paginated by id (`max_id`, `since_id`), filters `actor`, `action`
    (a whole action, or a prefix ending in a dot) and `since` (RFC 3339)."""
    await _staff(request, "admin:read", admin_only=True)
    p = await params(request)
    pg = page(p, default=100, maximum=500)
    entries = await audit_service.entries(state_of(request), actor=p.str("actor"), action=p.str("action"),
                                          since=p.str("since"), after_id=pg.since_id or pg.min_id or 0,
                                          before_id=pg.max_id, limit=pg.limit, newest_first=True)
    return json_response([render.audit_json(e) for e in entries],
                         headers=link_header(request, [e.id for e in entries]))


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/admin/accounts", list_v1),
        ("GET", "/api/v2/admin/accounts", list_v2),
        ("GET", "/api/v1/admin/accounts/{id}", show),
        ("DELETE", "/api/v1/admin/accounts/{id}", delete),
        ("POST", "/api/v1/admin/accounts/{id}/action", action),
        ("POST", "/api/v1/admin/accounts/{id}/approve", approve),
        ("POST", "/api/v1/admin/accounts/{id}/reject", reject),
        ("POST", "/api/v1/admin/accounts/{id}/enable", _undo("enable")),
        ("POST", "/api/v1/admin/accounts/{id}/unsilence", _undo("unsilence")),
        ("POST", "/api/v1/admin/accounts/{id}/unsuspend", _undo("unsuspend")),
        ("POST", "/api/v1/admin/accounts/{id}/unsensitive", _undo("unsensitive")),
        ("GET", "/api/v1/admin/audit_log", audit_log),
    ])
