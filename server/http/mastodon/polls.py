"""/api/v1/polls/*, and reading the poll and scheduled_at parameters of a new status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server.http.base import (
    FALSE,
    TRUE,
    Params,
    add_routes,
    json_response,
    optional_user_id,
    params,
    path_id,
    require_user,
    state_of,
)
from server.ids import now_iso, parse_id
from server.render import polls as render
from server.services import polls as service
from server.services.errors import Unprocessable


def _flag(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise Unprocessable(f"{name} must be true or false")


def poll_param(p: Params) -> service.PollSpec | None:
    """`poll` as a JSON object, or as form keys poll[options][], poll[expires_in], poll[multiple],
    poll[hide_totals]. None when the status has no poll."""
    data = p.dict("poll")
    options: Any = data.get("options") if isinstance(data.get("options"), list) else p.list("poll[options]")
    if not data and not options:
        return None
    if not options:
        raise Unprocessable("Poll options can't be blank")
    if not all(isinstance(o, str) for o in options):
        raise Unprocessable("Poll options must be text")
    expires_in = data.get("expires_in")
    if expires_in is None or expires_in == "":
        raise Unprocessable("Poll expires_in can't be blank")
    seconds = None if isinstance(expires_in, bool) else parse_id(str(expires_in))
    if seconds is None:
        raise Unprocessable("Poll expires_in must be a number of seconds")
    return service.PollSpec(options=list(options), expires_in=seconds,
                            multiple=_flag(data.get("multiple"), "poll[multiple]"),
                            hide_totals=_flag(data.get("hide_totals"), "poll[hide_totals]"))


def time_param(p: Params, name: str) -> datetime | None:
    """An ISO 8601 date and time parameter (UTC when no offset is given)."""
    text = (p.str(name) or "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Unprocessable(f"{name} is not a valid date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def get_poll(request: web.Request) -> web.Response:
    st = state_of(request)
    viewer_id = await optional_user_id(request, "read:statuses")
    poll = await service.visible_poll(st, viewer_id, path_id(request))
    return json_response(render.poll_json(poll, viewer_id, await service.own_votes(st, viewer_id, poll), now_iso()))


async def vote(request: web.Request) -> web.Response:
    st = state_of(request)
    account = await require_user(request, "write:statuses")
    p = await params(request)
    choices = []
    for raw in p.list("choices"):
        choice = None if isinstance(raw, bool) else parse_id(str(raw))
        if choice is None:
            raise Unprocessable("choices must be option numbers")
        choices.append(choice)
    poll = await service.vote(st, account, path_id(request), choices)
    return json_response(render.poll_json(poll, account.id, await service.own_votes(st, account.id, poll), now_iso()))


def setup(app: web.Application) -> None:
    add_routes(app, [
        ("GET", "/api/v1/polls/{id}", get_poll),
        ("POST", "/api/v1/polls/{id}/votes", vote),
    ])
