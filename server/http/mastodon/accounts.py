"""/api/v1/accounts/* and follow requests, blocks, mutes listings."""

from __future__ import annotations

from aiohttp import web

from server.domain.paging import Page
from server.domain.records import Account
from server.http.base import (
    Params,
    add_routes,
    encoded_json_response,
    json_response,
    link_header,
    optional_user_id,
    page,
    params,
    path_id,
    require_user,
    state_of,
)
from server.ids import parse_id
from server.render import mastodon as render
from server.services import accounts as account_service
from server.services import social, timelines
from server.services.errors import Unprocessable
from server.services.media import profile_images, replacing_profile_images
from server.services.search import accounts as search_accounts


async def verify_credentials(request: web.Request) -> web.Response:
    st = state_of(request)
    account, user = await account_service.with_user(st, await require_user(request, "read:accounts", "profile"))
    return json_response(render.credential_account_json(st, account, user))


async def update_credentials(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:accounts")
    p = await params(request)
    source = p.dict("source")
    fields = _profile_fields(p)
    media_avatar, media_header = await profile_images(st, p.file("avatar"), p.file("header"))

    def src_bool(name: str) -> bool | None:
        value = source.get(name)
        if value is None:
            return p.bool(f"source[{name}]")
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on")

    changes = account_service.ProfileChanges(
        display_name=p.str("display_name"), note=p.str("note"), locked=p.bool("locked"), bot=p.bool("bot"),
        discoverable=p.bool("discoverable"), fields=fields,
        privacy=source.get("privacy") if source.get("privacy") is not None else None,
        sensitive=src_bool("sensitive"),
        language=source.get("language") if source.get("language") is not None else None,
        avatar_url=media_avatar, header_url=media_header)
    async with replacing_profile_images(st, account, media_avatar, media_header):
        updated = await account_service.update_profile(st, account, changes)
    updated, user = await account_service.with_user(st, updated)
    return json_response(render.credential_account_json(st, updated, user))


def _sort_key(key: str) -> int:
    return int(key) if key.isdigit() else 0


def _profile_fields(p: Params) -> list[tuple[str, str]] | None:
    """fields_attributes as a JSON list, a JSON object of index → field, or form keys like
    fields_attributes[0][name]."""
    raw = p.dict("fields_attributes") or p.list("fields_attributes")
    if not raw:
        return None
    if isinstance(raw, dict):
        if all(isinstance(v, dict) for v in raw.values()):
            items = [raw[k] for k in sorted(raw, key=_sort_key)]
        else:
            collected: dict[str, dict[str, str]] = {}
            for key, value in raw.items():
                index, _, attr = key.partition("][")
                collected.setdefault(index, {})[attr.rstrip("]")] = value
            items = [collected[k] for k in sorted(collected, key=_sort_key)]
    else:
        items = raw
    fields = []
    for item in items:
        if not isinstance(item, dict):
            raise Unprocessable("fields_attributes must be a list of name/value pairs")
        fields.append((str(item.get("name", "")), str(item.get("value", ""))))
    return fields


async def get_account(request: web.Request) -> web.Response:
    st = state_of(request)
    await optional_user_id(request, "read:accounts")
    account = await account_service.require_account(st, path_id(request))
    return json_response(render.account_json(st, account))


async def lookup(request: web.Request) -> web.Response:
    st = state_of(request)
    await optional_user_id(request, "read:accounts")
    account = await account_service.lookup(st, request.query.get("acct") or "")
    return json_response(render.account_json(st, account))


async def account_statuses(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer_id = await optional_user_id(request, "read:statuses")
    account = await account_service.require_account(st, path_id(request))
    p = await params(request)
    found = await timelines.account_statuses(
        st, viewer_id, account, page(p), tagged=p.str("tagged"), exclude_replies=bool(p.bool("exclude_replies")),
        exclude_reblogs=bool(p.bool("exclude_reblogs")), only_media=bool(p.bool("only_media")),
        pinned=bool(p.bool("pinned")))
    return encoded_json_response(render.statuses_bytes(st, found), headers=link_header(request, found.cursor_ids))


def _account_list(request: web.Request, found: tuple[list[Account], list[int]]) -> web.Response:
    accounts, cursor = found
    return json_response(render.accounts_json(state_of(request), accounts), headers=link_header(request, cursor))


async def followers(request: web.Request) -> web.Response:
    return await _follow_list(request, "followers")


async def following(request: web.Request) -> web.Response:
    return await _follow_list(request, "following")


async def _follow_list(request: web.Request, direction: str) -> web.Response:
    st = state_of(request)
    await optional_user_id(request, "read:accounts")
    account = await account_service.require_account(st, path_id(request))
    pg = page(await params(request), 40, 80)
    return _account_list(request, await social.follow_list(st, account, direction, pg))


async def relationships(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:follows")
    p = await params(request)
    ids = [i for i in (parse_id(str(raw)) for raw in p.list("id")) if i is not None][:100]
    found = await social.relationships(st, viewer, ids)
    return json_response([render.relationship_json(i, found[i]) for i in ids])


async def _relationship(request: web.Request, account_id: int, viewer: Account) -> web.Response:
    found = await social.relationships(state_of(request), viewer, [account_id])
    return json_response(render.relationship_json(account_id, found[account_id]))


async def follow(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    target = await account_service.require_account(st, path_id(request))
    p = await params(request)
    await social.follow(st, viewer, target, reblogs=p.bool("reblogs", True) is not False,
                        notify_posts=bool(p.bool("notify", False)))
    return await _relationship(request, target.id, viewer)


async def unfollow(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    target = await account_service.require_account(st, path_id(request))
    await social.unfollow(st, viewer, target)
    return await _relationship(request, target.id, viewer)


async def remove_from_followers(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    target = await account_service.require_account(st, path_id(request))
    await social.remove_follower(st, viewer, target)
    return await _relationship(request, target.id, viewer)


async def block(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:blocks")
    target = await account_service.require_account(st, path_id(request))
    await social.block(st, viewer, target)
    return await _relationship(request, target.id, viewer)


async def unblock(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:blocks")
    target = await account_service.require_account(st, path_id(request))
    await social.unblock(st, viewer, target)
    return await _relationship(request, target.id, viewer)


async def mute(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:mutes")
    target = await account_service.require_account(st, path_id(request))
    p = await params(request)
    await social.mute(st, viewer, target, notifications=p.bool("notifications", True) is not False,
                      duration=max(0, p.int("duration", 0) or 0))
    return await _relationship(request, target.id, viewer)


async def unmute(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:mutes")
    target = await account_service.require_account(st, path_id(request))
    await social.unmute(st, viewer, target)
    return await _relationship(request, target.id, viewer)


async def search(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:accounts")
    p = await params(request)
    q = (p.str("q") or "").strip().lstrip("@")
    limit = max(1, min(p.int("limit", 40) or 40, 80))
    offset = max(0, p.int("offset", 0) or 0)
    results = await search_accounts(st, viewer, q, limit=limit, offset=offset, resolve=bool(p.bool("resolve")),
                                    following=bool(p.bool("following")))
    return json_response([render.account_json(st, a) for a in results])


async def follow_requests(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:follows")
    pg = page(await params(request), 40, 80)
    return _account_list(request, await social.follow_requests(st, viewer, pg))


async def authorize_request(request: web.Request) -> web.Response:
    return await _answer_request(request, True)


async def reject_request(request: web.Request) -> web.Response:
    return await _answer_request(request, False)


async def _answer_request(request: web.Request, accept: bool) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    requester_id = await social.answer_request_from(st, viewer, path_id(request), accept)
    return await _relationship(request, requester_id, viewer)


async def blocks(request: web.Request) -> web.Response:
    return await _target_list(request, "blocks", "read:blocks")


async def mutes(request: web.Request) -> web.Response:
    return await _target_list(request, "mutes", "read:mutes")


async def _target_list(request: web.Request, table: str, scope: str) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, scope)
    pg: Page = page(await params(request), 40, 80)
    return _account_list(request, await social.targets(st, viewer, table, pg))


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/accounts/verify_credentials", verify_credentials),
        ("PATCH", "/api/v1/accounts/update_credentials", update_credentials),
        ("GET", "/api/v1/accounts/relationships", relationships),
        ("GET", "/api/v1/accounts/lookup", lookup),
        ("GET", "/api/v1/accounts/search", search),
        ("GET", "/api/v1/accounts/{id}", get_account),
        ("GET", "/api/v1/accounts/{id}/statuses", account_statuses),
        ("GET", "/api/v1/accounts/{id}/followers", followers),
        ("GET", "/api/v1/accounts/{id}/following", following),
        ("POST", "/api/v1/accounts/{id}/follow", follow),
        ("POST", "/api/v1/accounts/{id}/unfollow", unfollow),
        ("POST", "/api/v1/accounts/{id}/remove_from_followers", remove_from_followers),
        ("POST", "/api/v1/accounts/{id}/block", block),
        ("POST", "/api/v1/accounts/{id}/unblock", unblock),
        ("POST", "/api/v1/accounts/{id}/mute", mute),
        ("POST", "/api/v1/accounts/{id}/unmute", unmute),
        ("GET", "/api/v1/follow_requests", follow_requests),
        ("POST", "/api/v1/follow_requests/{id}/authorize", authorize_request),
        ("POST", "/api/v1/follow_requests/{id}/reject", reject_request),
        ("GET", "/api/v1/blocks", blocks),
        ("GET", "/api/v1/mutes", mutes),
    ])
