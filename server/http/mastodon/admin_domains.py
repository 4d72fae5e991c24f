"""The Mastodon admin API for federation rules: /api/v1/admin/domain_allows and domain_blocks."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from server.domain.records import DomainRule
from server.http.base import add_routes, json_response, params, path_id, require_user, state_of
from server.services import admin, domains
from server.services.audit import Actor


async def _admin(request: web.Request, scope: str) -> Actor:
    """Domain rules are for admins only (not moderators); the caller as the audit log names them."""
    account = await require_user(request, scope)
    return await admin.staff(state_of(request), account, request.remote, admin_only=True)


def allow_json(rule: DomainRule) -> dict[str, Any]:
    return {"id": str(rule.id), "domain": rule.domain, "created_at": rule.created_at}


def block_json(rule: DomainRule) -> dict[str, Any]:
    return {"id": str(rule.id), "domain": rule.domain, "digest": hashlib.sha256(rule.domain.encode()).hexdigest(),
            "created_at": rule.created_at, "severity": rule.severity, "reject_media": rule.reject_media,
            "reject_reports": rule.reject_reports, "private_comment": rule.private_comment or None,
            "public_comment": rule.public_comment or None, "obfuscate": False}


async def _rules(request: web.Request, kind: str) -> list[DomainRule]:
    return await domains.rules(state_of(request), kind)


async def _rule(request: web.Request, kind: str) -> DomainRule:
    return await domains.rule(state_of(request), path_id(request), kind)


async def list_allows(request: web.Request) -> web.Response:
    await _admin(request, "admin:read:domain_allows")
    return json_response([allow_json(r) for r in await _rules(request, "allow")])


async def get_allow(request: web.Request) -> web.Response:
    await _admin(request, "admin:read:domain_allows")
    return json_response(allow_json(await _rule(request, "allow")))


async def create_allow(request: web.Request) -> web.Response:
    actor = await _admin(request, "admin:write:domain_allows")
    p = await params(request)
    rule = await domains.allow(state_of(request), actor, p.text("domain"))
    return json_response(allow_json(rule))


async def delete_allow(request: web.Request) -> web.Response:
    actor = await _admin(request, "admin:write:domain_allows")
    await domains.remove_by_id(state_of(request), actor, path_id(request), "allow")
    return json_response({})


async def list_blocks(request: web.Request) -> web.Response:
    await _admin(request, "admin:read:domain_blocks")
    return json_response([block_json(r) for r in await _rules(request, "block")])


async def get_block(request: web.Request) -> web.Response:
    await _admin(request, "admin:read:domain_blocks")
    return json_response(block_json(await _rule(request, "block")))


async def _save_block(request: web.Request, actor: Actor, domain: str,
                      current: DomainRule | None = None) -> web.Response:
    p = await params(request)
    severity = p.str("severity") or (current.severity if current else "suspend")
    rule = await domains.block(
        state_of(request), actor, domain, severity=severity, reject_media=p.bool("reject_media"),
        reject_reports=p.bool("reject_reports"), private_comment=p.str("private_comment"),
        public_comment=p.str("public_comment"))
    return json_response(block_json(rule))


async def create_block(request: web.Request) -> web.Response:
    actor = await _admin(request, "admin:write:domain_blocks")
    p = await params(request)
    return await _save_block(request, actor, p.text("domain"))


async def update_block(request: web.Request) -> web.Response:
    actor = await _admin(request, "admin:write:domain_blocks")
    rule = await _rule(request, "block")
    return await _save_block(request, actor, rule.domain, rule)


async def delete_block(request: web.Request) -> web.Response:
    actor = await _admin(request, "admin:write:domain_blocks")
    await domains.remove_by_id(state_of(request), actor, path_id(request), "block")
    return json_response({})


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/admin/domain_allows", list_allows),
        ("POST", "/api/v1/admin/domain_allows", create_allow),
        ("GET", "/api/v1/admin/domain_allows/{id}", get_allow),
        ("DELETE", "/api/v1/admin/domain_allows/{id}", delete_allow),
        ("GET", "/api/v1/admin/domain_blocks", list_blocks),
        ("POST", "/api/v1/admin/domain_blocks", create_block),
        ("GET", "/api/v1/admin/domain_blocks/{id}", get_block),
        ("PUT", "/api/v1/admin/domain_blocks/{id}", update_block),
        ("DELETE", "/api/v1/admin/domain_blocks/{id}", delete_block),
    ])
