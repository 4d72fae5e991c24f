"""/api/v1/accounts/* and follow requests, blocks, mutes listings."""

from __future__ import annotations

from aiohttp import web

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
from server.render import mastodon as render
from server.services import accounts as account_service
from server.services import filtering, social
from server.services.errors import NotFound, Unprocessable
from server.services.media import profile_images, replacing_profile_images
from server.services.search import accounts as search_accounts
from server.storage import accounts as account_store
from server.storage import relations, statuses, timelines
from server.storage.paging import Page


async def verify_credentials(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:accounts", "profile")
    user = await account_store.user(st.db, account.id)
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
    await st.outbound.profile_updated(updated)
    user = await account_store.user(st.db, account.id)
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
    await optional_user(request, "read:accounts")
    account = await account_service.require_account(st, path_id(request))
    return json_response(render.account_json(st, account))


async def lookup(request: web.Request) -> web.Response:
    st = state_of(request)
    await optional_user(request, "read:accounts")
    acct = (request.query.get("acct") or "").strip().lstrip("@")
    if not acct:
        raise Unprocessable("acct is required")
    username, _, domain = acct.partition("@")
    if domain.lower() == st.domain:
        domain = ""
    account = await account_store.by_username(st.db, username, domain)
    resolver = st.resolve_account  # None unless federation runs
    if account is None and domain and resolver is not None:
        account = await resolver(f"{username}@{domain}")
    if account is None or account.suspended or account.deleted_at:
        raise NotFound()
    return json_response(render.account_json(st, account))


async def account_statuses(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await optional_user(request, "read:statuses")
    account = await account_service.require_account(st, path_id(request))
    p = await params(request)
    pg = page(p)
    if viewer and await relations.blocked_either_way(st.db, viewer.id, account.id):
        return json_response([])
    tag_name = p.str("tagged")
    tag_id = await statuses.tag_id(st.db, tag_name.lstrip("#")) if tag_name else None
    if tag_name and tag_id is None:
        return json_response([])
    ids = await timelines.account_statuses(
        st.db, account.id, viewer.id if viewer else None, pg, exclude_replies=bool(p.bool("exclude_replies")),
        exclude_reblogs=bool(p.bool("exclude_reblogs")), only_media=bool(p.bool("only_media")),
        pinned=bool(p.bool("pinned")), tag_id=tag_id)
    found = await statuses.get_many(st.db, ids)
    items = [found[i] for i in ids if i in found]
    rendered = filtering.drop_hidden(await render.statuses_json(st, viewer.id if viewer else None, items), "account")
    return json_response(rendered, headers=link_header(request, ids))


async def _account_list(request: web.Request, rows: list[tuple[int, int]]) -> web.Response:
    st = state_of(request)
    accounts = await account_store.get_many(st.db, [a for _, a in rows])
    body = [render.account_json(st, accounts[a]) for _, a in rows if a in accounts]
    return json_response(body, headers=link_header(request, [r for r, _ in rows]))


async def followers(request: web.Request) -> web.Response:
    return await _follow_list(request, "followers")


async def following(request: web.Request) -> web.Response:
    return await _follow_list(request, "following")


async def _follow_list(request: web.Request, direction: str) -> web.Response:
    st = state_of(request)
    await optional_user(request, "read:accounts")
    account = await account_service.require_account(st, path_id(request))
    pg = page(await params(request), 40, 80)
    rows = await relations.followers_page(st.db, account.id, direction, pg.max_id, pg.since_id or pg.min_id, pg.limit)
    return await _account_list(request, rows)


async def relationships(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "read:follows")
    p = await params(request)
    ids = []
    for raw in p.list("id"):
        text = str(raw)
        if text.isdigit() and len(text) <= 19:
            ids.append(int(text))
    return json_response(await render.relationships_json(st, viewer.id, ids[:100]))


async def _relationship(request: web.Request, account_id: int, viewer_id: int) -> web.Response:
    return json_response((await render.relationships_json(state_of(request), viewer_id, [account_id]))[0])


async def follow(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    target = await account_service.require_account(st, path_id(request))
    p = await params(request)
    await social.follow(st, viewer, target, reblogs=p.bool("reblogs", True) is not False,
                        notify_posts=bool(p.bool("notify", False)))
    return await _relationship(request, target.id, viewer.id)


async def unfollow(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    target = await account_service.require_account(st, path_id(request))
    await social.unfollow(st, viewer, target)
    return await _relationship(request, target.id, viewer.id)


async def remove_from_followers(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    target = await account_service.require_account(st, path_id(request))
    await social.remove_follower(st, viewer, target)
    return await _relationship(request, target.id, viewer.id)


async def block(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:blocks")
    target = await account_service.require_account(st, path_id(request))
    await social.block(st, viewer, target)
    return await _relationship(request, target.id, viewer.id)


async def unblock(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:blocks")
    target = await account_service.require_account(st, path_id(request))
    await social.unblock(st, viewer, target)
    return await _relationship(request, target.id, viewer.id)


async def mute(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:mutes")
    target = await account_service.require_account(st, path_id(request))
    p = await params(request)
    await social.mute(st, viewer, target, notifications=p.bool("notifications", True) is not False,
                      duration=max(0, p.int("duration", 0) or 0))
    return await _relationship(request, target.id, viewer.id)


async def unmute(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:mutes")
    target = await account_service.require_account(st, path_id(request))
    await social.unmute(st, viewer, target)
    return await _relationship(request, target.id, viewer.id)


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
    rows = await relations.pending_requests(st.db, viewer.id, pg.max_id, pg.since_id or pg.min_id, pg.limit)
    return await _account_list(request, rows)


async def authorize_request(request: web.Request) -> web.Response:
    return await _answer_request(request, True)


async def reject_request(request: web.Request) -> web.Response:
    return await _answer_request(request, False)


async def _answer_request(request: web.Request, accept: bool) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, "write:follows")
    requester = await account_store.get(st.db, path_id(request))
    if requester is None:
        raise NotFound()
    await social.answer_request(st, viewer, requester, accept)
    return await _relationship(request, requester.id, viewer.id)


async def blocks(request: web.Request) -> web.Response:
    return await _target_list(request, "blocks", "read:blocks")


async def mutes(request: web.Request) -> web.Response:
    return await _target_list(request, "mutes", "read:mutes")


async def _target_list(request: web.Request, table: str, scope: str) -> web.Response:
    st = state_of(request)
    viewer = await require_user(request, scope)
    pg: Page = page(await params(request), 40, 80)
    rows = await relations.list_targets(st.db, table, viewer.id, pg.max_id, pg.since_id or pg.min_id, pg.limit)
    return await _account_list(request, rows)


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
