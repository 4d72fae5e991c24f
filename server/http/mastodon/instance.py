"""/api/v1/instance, /api/v2/instance and the small start-up endpoints clients call."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.base import add_routes, json_response, optional_user, require_user, state_of
from server.render import mastodon as render
from server.state import State
from server.storage import accounts as account_store
from server.version import API_VERSION, SOURCE_URL

MEDIA_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"]


def _configuration(st: State) -> dict[str, Any]:
    limits = {"image_size_limit": st.config["media.max_image_size"],
              "image_matrix_limit": st.config["media.max_image_pixels"]}
    return {
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {"max_characters": st.config["statuses.max_characters"], "max_media_attachments": 4,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": MEDIA_TYPES, "description_limit": 1500,
                              "video_size_limit": 0, "video_frame_rate_limit": 0, "video_matrix_limit": 0,
                              **limits},
        "polls": {"max_options": 8, "max_characters_per_option": 100,
                  "min_expiration": st.config["polls.min_expiration"],
                  "max_expiration": st.config["polls.max_expiration"]},
        "translation": {"enabled": False},
    }


async def _contact_account(st: State) -> dict[str, Any] | None:
    admin_id = await account_store.first_admin_id(st.db)
    if admin_id is None:
        return None
    account = await account_store.get(st.db, admin_id)
    return render.account_json(st, account) if account else None


def _streaming_url(st: State) -> str:
    return ("wss://" if st.config["scheme"] == "https" else "ws://") + st.domain


async def instance_v1(request: web.Request) -> web.Response:
    st = state_of(request)
    users = await account_store.count_local_users(st.db)
    posts = await account_store.count_local_statuses(st.db)
    domains = len(await account_store.known_domains(st.db))
    return json_response({
        "uri": st.domain,
        "title": st.config["instance.title"],
        "short_description": st.config["instance.description"],
        "description": st.config["instance.description"],
        "email": st.config["instance.contact_email"],
        "version": API_VERSION,
        "urls": {"streaming_api": _streaming_url(st)},
        "stats": {"user_count": users, "status_count": posts, "domain_count": domains},
        "thumbnail": f"{st.base_url}/static/thumbnail.png",
        "languages": ["en"],
        "registrations": st.config["registrations"] != "closed",
        "approval_required": st.config["registrations"] == "approval",
        "invites_enabled": False,
        "configuration": _configuration(st),
        "contact_account": await _contact_account(st),
        "rules": [],
    })


async def instance_v2(request: web.Request) -> web.Response:
    st = state_of(request)
    active = await st.db.fetchval(
        "SELECT count(*) FROM users WHERE last_sign_in_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days')") or 0
    config = _configuration(st)
    config["urls"] = {"streaming": _streaming_url(st), "status": None}
    config["vapid"] = {"public_key": ""}
    return json_response({
        "domain": st.domain,
        "title": st.config["instance.title"],
        "version": API_VERSION,
        "source_url": SOURCE_URL,
        "description": st.config["instance.description"],
        "usage": {"users": {"active_month": active}},
        "thumbnail": {"url": f"{st.base_url}/static/thumbnail.png", "blurhash": None, "versions": {}},
        "icon": [],
        "languages": ["en"],
        "configuration": config,
        "registrations": {"enabled": st.config["registrations"] != "closed",
                          "approval_required": st.config["registrations"] == "approval",
                          "message": None, "url": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": st.config["instance.contact_email"], "account": await _contact_account(st)},
        "rules": [],
    })


async def peers(request: web.Request) -> web.Response:
    st = state_of(request)
    return json_response(await account_store.known_domains(st.db))


async def rules(request: web.Request) -> web.Response:
    return json_response([])


async def custom_emojis(request: web.Request) -> web.Response:
    return json_response([])


async def preferences(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:accounts")
    user = await account_store.user(st.db, account.id)
    return json_response({
        "posting:default:visibility": user.default_visibility if user else "public",
        "posting:default:sensitive": bool(user.default_sensitive) if user else False,
        "posting:default:language": user.default_language if user else None,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    })


async def activity(request: web.Request) -> web.Response:
    await optional_user(request)
    return json_response([])


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/instance", instance_v1),
        ("GET", "/api/v2/instance", instance_v2),
        ("GET", "/api/v1/instance/peers", peers),
        ("GET", "/api/v1/instance/rules", rules),
        ("GET", "/api/v1/instance/activity", activity),
        ("GET", "/api/v1/custom_emojis", custom_emojis),
        ("GET", "/api/v1/preferences", preferences),
    ])
