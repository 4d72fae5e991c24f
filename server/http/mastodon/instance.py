"""/api/v1/instance, /api/v2/instance and the small start-up endpoints clients call."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.domain.records import Account
from server.http.base import add_routes, json_response, optional_user, require_user, state_of
from server.render import mastodon as render
from server.services import accounts as account_service
from server.services import instance
from server.services import push as push_service
from server.state import State
from server.version import API_VERSION, SOURCE_URL

MEDIA_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"]


def _configuration(st: State) -> dict[str, Any]:
    limits = {"image_size_limit": st.settings.media.max_image_size,
              "image_matrix_limit": st.settings.media.max_image_pixels}
    return {
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {"max_characters": st.settings.statuses.max_characters, "max_media_attachments": 4,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": MEDIA_TYPES, "description_limit": 1500,
                              "video_size_limit": 0, "video_frame_rate_limit": 0, "video_matrix_limit": 0,
                              **limits},
        "polls": {"max_options": 8, "max_characters_per_option": 100,
                  "min_expiration": st.settings.polls.min_expiration,
                  "max_expiration": st.settings.polls.max_expiration},
        "translation": {"enabled": False},
        # The key apps pass to the push service when they subscribe (Web Push, VAPID).
        "vapid": {"public_key": push_service.server_key(st)},
    }


def _contact_account(st: State, account: Account | None) -> dict[str, Any] | None:
    return render.account_json(st, account) if account else None


def _streaming_url(st: State) -> str:
    return ("wss://" if st.settings.scheme == "https" else "ws://") + st.domain


async def instance_v1(request: web.Request) -> web.Response:
    st = state_of(request)
    found = await instance.figures(st)
    return json_response({
        "uri": st.domain,
        "title": st.settings.instance.title,
        "short_description": st.settings.instance.description,
        "description": st.settings.instance.description,
        "email": st.settings.instance.contact_email,
        "version": API_VERSION,
        "urls": {"streaming_api": _streaming_url(st)},
        "stats": {"user_count": found.users, "status_count": found.statuses, "domain_count": found.domains},
        "thumbnail": f"{st.base_url}/static/thumbnail.png",
        "languages": ["en"],
        "registrations": st.settings.registrations != "closed",
        "approval_required": st.settings.registrations == "approval",
        "invites_enabled": False,
        "configuration": _configuration(st),
        "contact_account": _contact_account(st, found.contact),
        "rules": [],
    })


async def instance_v2(request: web.Request) -> web.Response:
    st = state_of(request)
    active = await instance.active_month(st)
    contact = await instance.contact_account(st)
    config = _configuration(st)
    config["urls"] = {"streaming": _streaming_url(st), "status": None}
    return json_response({
        "domain": st.domain,
        "title": st.settings.instance.title,
        "version": API_VERSION,
        "source_url": SOURCE_URL,
        "description": st.settings.instance.description,
        "usage": {"users": {"active_month": active}},
        "thumbnail": {"url": f"{st.base_url}/static/thumbnail.png", "blurhash": None, "versions": {}},
        "icon": [],
        "languages": ["en"],
        "configuration": config,
        "registrations": {"enabled": st.settings.registrations != "closed",
                          "approval_required": st.settings.registrations == "approval",
                          "message": None, "url": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": st.settings.instance.contact_email, "account": _contact_account(st, contact)},
        "rules": [],
    })


async def peers(request: web.Request) -> web.Response:
    st = state_of(request)
    return json_response(await instance.peers(st))


async def rules(request: web.Request) -> web.Response:
    return json_response([])


async def custom_emojis(request: web.Request) -> web.Response:
    return json_response([])


async def preferences(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "read:accounts")
    _, user = await account_service.with_user(st, account)
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
