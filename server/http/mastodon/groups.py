"""The groups API as the Soapbox web client speaks it (Truth Social's /api/v1/groups), plus
/api/v1/timelines/group/:id. Group ids are the group accounts' ids, so the account-based view
(follow the group, mention it) works with the same ids in any Mastodon app."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.domain.groups import GroupRole
from server.domain.records import Account
from server.http.base import (
    Params,
    add_routes,
    json_response,
    link_header,
    optional_user,
    page,
    params,
    path_id,
    require_user,
    state_of,
)
from server.ids import parse_id
from server.render import groups as render_groups
from server.render import mastodon as render
from server.services import groups as service
from server.services import loaders
from server.services.errors import Unprocessable
from server.state import State


async def _groups_json(st: State, viewer: Account | None, accounts: list[Account]) -> list[dict[str, Any]]:
    ids = [a.id for a in accounts]
    settings = await service.settings_of(st, ids)
    owners = await service.owners(st, ids)
    memberships = await service.memberships(st, viewer, ids) if viewer is not None else {}
    out = []
    for account in accounts:
        rel = None
        m = memberships.get(account.id)
        if m is not None:
            rel = render_groups.relationship_json(account.id, member=m.member, requested=m.requested, role=m.role,
                                                  blocked_by=m.banned, pending_requests=m.pending_requests)
        out.append(render_groups.group_json(render.account_json(st, account), account.domain,
                                            settings.get(account.id), owners.get(account.id), rel))
    return out


async def _one(st: State, viewer: Account | None, account: Account) -> web.Response:
    return json_response((await _groups_json(st, viewer, [account]))[0])


async def _relationship(st: State, viewer: Account, group_id: int) -> web.Response:
    m = (await service.memberships(st, viewer, [group_id]))[group_id]
    return json_response(render_groups.relationship_json(group_id, member=m.member, requested=m.requested,
                                                         role=m.role, blocked_by=m.banned,
                                                         pending_requests=m.pending_requests))


def _partners(p: Params) -> list[str] | None:
    if not p.has("partners"):
        return None
    values = p.list("partners")
    if len(values) == 1 and isinstance(values[0], str) and "," in values[0]:
        values = values[0].split(",")
    return [str(v) for v in values if str(v).strip()]


def _account_ids(p: Params) -> list[int]:
    out = []
    for raw in p.list("account_ids")[:100]:
        parsed = None if isinstance(raw, bool) else parse_id(str(raw))
        if parsed is None:
            raise Unprocessable("account_ids contains an invalid id")
        out.append(parsed)
    if not out:
        raise Unprocessable("account_ids is required")
    return out


# -- groups --------------------------------------------------------------------------------------------

async def index(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    return json_response(await _groups_json(st, viewer, await service.joined(st, viewer)))


async def show(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request)
    return await _one(st, viewer, await service.group_account(st, path_id(request)))


async def create(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    p = await params(request)
    name = p.str("username") or p.str("slug") or p.text("display_name").strip().replace(" ", "_")
    if not name:
        raise Unprocessable("display_name is required")
    kind = p.str("kind")
    if kind is None:  # Soapbox sends group_visibility: everyone | members_only
        kind = "members_only" if p.str("group_visibility") == "members_only" else "open"
    spec = service.GroupSpec(username=name, display_name=p.text("display_name"), note=p.text("note"), kind=kind,
                             federation=p.text("federation", "local"), partners=_partners(p) or [],
                             rules=p.text("rules"))
    account = await service.create(st, viewer, spec)
    return await _one(st, viewer, account)


async def update(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    p = await params(request)
    changes = service.GroupChanges(display_name=p.str("display_name"), note=p.str("note"), kind=p.str("kind"),
                                   federation=p.str("federation"), partners=_partners(p), rules=p.str("rules"),
                                   discoverable=p.bool("discoverable"), non_member_posts=p.str("non_member_posts"))
    return await _one(st, viewer, await service.update(st, viewer, path_id(request), changes))


async def relationships(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    ids = []
    for raw in (await params(request)).list("id")[:100]:
        parsed = None if isinstance(raw, bool) else parse_id(str(raw))
        if parsed is None:
            raise Unprocessable("id contains an invalid id")
        ids.append(parsed)
    found = await service.memberships(st, viewer, ids)
    return json_response([render_groups.relationship_json(i, member=m.member, requested=m.requested, role=m.role,
                                                          blocked_by=m.banned, pending_requests=m.pending_requests)
                          for i, m in found.items()])


async def search(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    p = await params(request)
    limit = max(1, min(p.int("limit") or 20, 40))
    found = await service.browse(st, p.text("q"), limit, max(0, p.int("offset") or 0))
    return json_response(await _groups_json(st, viewer, found))


async def suggestions(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    limit = max(1, min((await params(request)).int("limit") or 10, 40))
    return json_response(await _groups_json(st, viewer, await service.suggestions(st, viewer, limit)))


# -- membership ----------------------------------------------------------------------------------------

async def join(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups", "follow")
    await service.join(st, viewer, path_id(request))
    return await _relationship(st, viewer, path_id(request))


async def leave(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups", "follow")
    await service.leave(st, viewer, path_id(request))
    return await _relationship(st, viewer, path_id(request))


async def memberships(request: web.Request) -> web.Response:
    st = state_of(request)
    await optional_user(request)
    p = await params(request)
    role_name = p.str("role")
    try:
        role = GroupRole(role_name) if role_name else None
    except ValueError:
        raise Unprocessable("role must be owner, admin or user") from None
    pg = page(p, 20, 80)
    rows = await service.members(st, path_id(request), role, pg)
    found = {a["id"]: a for a in render.accounts_json(st, await loaders.accounts(st, [m for _, m in rows]))}
    roles = await service.roles(st, path_id(request))
    body = [render_groups.member_json(fid, found[str(m)], roles.get(m, GroupRole.USER))
            for fid, m in rows if str(m) in found]
    return json_response(body, headers=link_header(request, [fid for fid, _ in rows]) if rows else None)


async def membership_requests(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    ids = await service.requests(st, viewer, path_id(request), 80)
    return json_response(render.accounts_json(st, await loaders.accounts(st, ids)))


async def _answer(request: web.Request, accept: bool) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    requester = await service.account_by_id(st, path_id(request, "account_id"))
    await service.answer_request(st, viewer, path_id(request), requester, accept)
    return json_response({})


async def authorize(request: web.Request) -> web.Response:
    return await _answer(request, True)


async def reject(request: web.Request) -> web.Response:
    return await _answer(request, False)


async def kick(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    group_id = path_id(request)  # an id that cannot be ours is a 404 before the body is looked at
    for account_id in _account_ids(await params(request)):
        await service.kick(st, viewer, group_id, await service.account_by_id(st, account_id))
    return json_response({})


async def blocks(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    return json_response(render.accounts_json(st, await loaders.accounts(st, await service.banned(st, viewer, path_id(request)))))


async def block(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    on = request.method == "POST"
    group_id = path_id(request)
    for account_id in _account_ids(await params(request)):
        await service.ban(st, viewer, group_id, await service.account_by_id(st, account_id), on)
    return json_response({})


async def _set_role(request: web.Request, demote: bool) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    group_id = path_id(request)
    p = await params(request)
    try:
        role = GroupRole(p.text("role", "user" if demote else "admin"))
    except ValueError:
        raise Unprocessable("role must be admin or user") from None
    out = []
    for account_id in _account_ids(p):
        member = await service.account_by_id(st, account_id)
        await service.set_role(st, viewer, group_id, member, role)
        out.append(render_groups.member_json(account_id, render.account_json(st, member), role))
    return json_response(out)


async def promote(request: web.Request) -> web.Response:
    return await _set_role(request, False)


async def demote(request: web.Request) -> web.Response:
    return await _set_role(request, True)


async def transfer(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    group_id = path_id(request)
    p = await params(request)
    raw = p.str("account_id")
    new_owner_id = parse_id(raw) if raw else None
    if new_owner_id is None:
        raise Unprocessable("account_id is required")
    await service.transfer(st, viewer, group_id, await service.account_by_id(st, new_owner_id))
    return await _one(st, viewer, await service.group_account(st, group_id))


async def archive(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    await service.set_archived(st, viewer, path_id(request), request.method == "POST")
    return await _one(st, viewer, await service.group_account(st, path_id(request)))


# -- posts ---------------------------------------------------------------------------------------------

async def remove_status(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    await service.remove_post(st, viewer, path_id(request), path_id(request, "status_id"))
    return json_response({})


async def _pin(request: web.Request, on: bool) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    status = await service.pin_post(st, viewer, path_id(request), path_id(request, "status_id"), on)
    rendered = (render.statuses_json(st, await loaders.status_page(st, viewer.id, [status])))[0]
    rendered["pinned"] = on
    return json_response(rendered)


async def pin(request: web.Request) -> web.Response:
    return await _pin(request, True)


async def unpin(request: web.Request) -> web.Response:
    return await _pin(request, False)


async def pending_statuses(request: web.Request) -> web.Response:
    """Non-members' posts held for the moderators (groups whose non_member_posts is `hold`)."""
    st = state_of(request)
    viewer = await require_user(request, "read", "read:groups")
    limit = max(1, min((await params(request)).int("limit") or 40, 80))
    items = await service.held_posts(st, viewer, path_id(request), limit)
    return json_response(render.statuses_json(st, await loaders.status_page(st, viewer.id, items)))


async def _answer_pending(request: web.Request, approve: bool) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write", "write:groups")
    await service.answer_held_post(st, viewer, path_id(request), path_id(request, "status_id"), approve)
    return json_response({})


async def approve_pending(request: web.Request) -> web.Response:
    return await _answer_pending(request, True)


async def reject_pending(request: web.Request) -> web.Response:
    return await _answer_pending(request, False)


async def timeline(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read", "read:statuses")
    p = await params(request)
    pg = page(p)
    group_id = path_id(request)
    if p.bool("pinned"):
        items = await service.timeline(st, viewer, group_id, pg)
        pinned = set(await service.pinned(st, group_id))
        items = [s for s in items if s.id in pinned]
    else:
        items = await service.timeline(st, viewer, group_id, pg)
    body = render.statuses_json(st, await loaders.status_page(st, viewer.id if viewer else None, items))
    return json_response(body, headers=link_header(request, [s.id for s in items]) if items else None)


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/groups", index),
        ("POST", "/api/v1/groups", create),
        ("GET", "/api/v1/groups/relationships", relationships),
        ("GET", "/api/v1/groups/search", search),
        ("GET", "/api/v1/groups/suggestions", suggestions),
        ("GET", "/api/v1/groups/{id}", show),
        ("PUT", "/api/v1/groups/{id}", update),
        ("PATCH", "/api/v1/groups/{id}", update),
        ("POST", "/api/v1/groups/{id}/join", join),
        ("POST", "/api/v1/groups/{id}/leave", leave),
        ("GET", "/api/v1/groups/{id}/memberships", memberships),
        ("GET", "/api/v1/groups/{id}/membership_requests", membership_requests),
        ("POST", "/api/v1/groups/{id}/membership_requests/{account_id}/authorize", authorize),
        ("POST", "/api/v1/groups/{id}/membership_requests/{account_id}/reject", reject),
        ("POST", "/api/v1/groups/{id}/kick", kick),
        ("GET", "/api/v1/groups/{id}/blocks", blocks),
        ("POST", "/api/v1/groups/{id}/blocks", block),
        ("DELETE", "/api/v1/groups/{id}/blocks", block),
        ("POST", "/api/v1/groups/{id}/promote", promote),
        ("POST", "/api/v1/groups/{id}/demote", demote),
        ("POST", "/api/v1/groups/{id}/transfer", transfer),
        ("POST", "/api/v1/groups/{id}/archive", archive),
        ("DELETE", "/api/v1/groups/{id}/archive", archive),
        ("DELETE", "/api/v1/groups/{id}/statuses/{status_id}", remove_status),
        ("POST", "/api/v1/groups/{id}/statuses/{status_id}/pin", pin),
        ("POST", "/api/v1/groups/{id}/statuses/{status_id}/unpin", unpin),
        ("GET", "/api/v1/groups/{id}/pending_statuses", pending_statuses),
        ("POST", "/api/v1/groups/{id}/pending_statuses/{status_id}/approve", approve_pending),
        ("POST", "/api/v1/groups/{id}/pending_statuses/{status_id}/reject", reject_pending),
        ("GET", "/api/v1/timelines/group/{id}", timeline),
    ])
