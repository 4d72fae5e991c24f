"""Server-rendered HTML (Jinja2 templates in server/http/templates/, autoescaped) and the built-in images
(default avatar, header, instance thumbnail).

Public pages: a local account's profile (`/@name`, or `/users/name` asked for as HTML) and a post
(`/@name/ID`, `/users/name/statuses/ID`), with the meta tags link previews and other software read
(OpenGraph, Twitter cards, canonical and ActivityPub alternate links, microformats, rel="me" on profile
field links). They show only what is public: public posts that are not local-only, and the profile data
the API gives anyone.
"""

from __future__ import annotations

import struct
import zlib
from datetime import UTC
from functools import cache
from typing import Any

from aiohttp import web
from markupsafe import Markup

from federation.html import html_to_text, sanitize_html
from server.domain.records import Account, Status
from server.http.base import state_of
from server.ids import parse_id, parse_iso
from server.render import mastodon as render
from server.services import pages
from server.state import State

DESCRIPTION_CHARS = 300
# Pages hold no scripts; forms post to ourselves (the OAuth consent redirects to the app afterwards).
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self' *; "
       "frame-ancestors 'none'")


@cache
def _templates() -> Any:
    """The template environment, made on the first page: an API-only process never loads Jinja2 (2 MB)."""
    import jinja2
    return jinja2.Environment(
        loader=jinja2.PackageLoader("server.http", "templates"),
        autoescape=True,  # every value is escaped unless the code marks it Markup (sanitised HTML only)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(request: web.Request, template: str, *, title: str, http_status: int = 200,
                cache_control: str = "no-store", lang: str = "en", **context: Any) -> web.Response:
    """A page from a template. Pages about a signed-in user (the OAuth ones) must not be cached:
    cache_control stays no-store unless the page is public."""
    st = state_of(request)
    page = _templates().get_template(template).render(
        title=title, lang=lang, site_name=st.settings.instance.title, base_url=st.base_url, **context)
    return web.Response(text=page, status=http_status, content_type="text/html", headers={
        "Cache-Control": cache_control, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin", "Content-Security-Policy": CSP})


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, so default images need no files on disk."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


@cache
def _static_images() -> dict[str, bytes]:
    return {"avatar.png": png(96, 96, (0x8a, 0x96, 0xa8)), "header.png": png(300, 100, (0x3b, 0x4a, 0x5e)),
            "thumbnail.png": png(400, 210, (0x2b, 0x5d, 0x8c))}


async def static_image(request: web.Request) -> web.Response:
    data = _static_images().get(request.match_info["name"])
    if data is None:
        raise web.HTTPNotFound()
    return web.Response(body=data, content_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400, immutable"})


async def home_page(request: web.Request) -> web.Response:
    st = state_of(request)
    return render_page(request, "home.html", title=st.settings.instance.title,
                       description=st.settings.instance.description, cache_control="public, max-age=300")


# -- public profile and post pages ------------------------------------------------------------------

def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[:DESCRIPTION_CHARS - 1].rstrip() + "…"


def _field_value(value_html: str) -> Markup:
    """A profile field's value with rel="me" on its links: the link back that lets the linked site
    (and IndieAuth-style checkers) confirm the two profiles belong to the same person."""
    clean = sanitize_html(value_html)
    return Markup(clean.replace('rel="nofollow noopener noreferrer"', 'rel="me nofollow noopener noreferrer"'))


def _author(st: State, account: Account) -> dict[str, Any]:
    shown = render.account_json(st, account)  # what the API gives anyone about the account
    return {
        "name": shown["display_name"] or account.username,
        "handle": f"@{account.username}@{st.domain}",
        "acct": f"{account.username}@{st.domain}",
        "url": account.url,
        "uri": account.uri,
        "avatar": shown["avatar"],
        "header": shown["header"] if account.header_url else "",
        "note": Markup(sanitize_html(account.note)),
        "note_text": html_to_text(account.note),
        "fields": [(f["name"], _field_value(f["value"])) for f in shown["fields"]],
        "discoverable": account.discoverable,
        "bot": account.bot,
    }


def _label(iso_time: str) -> str:
    moment = parse_iso(iso_time).astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _posts(st: State, found: pages.PublicPosts) -> list[dict[str, Any]]:
    media: dict[int, list[dict[str, Any]]] = {}
    for status_id, rows in found.media.items():
        for row in rows:
            shown = render.media_json(st, row)
            if shown["url"] is None:  # still processing
                continue
            size = shown["meta"].get("small") or {}
            media.setdefault(status_id, []).append({
                "url": shown["url"], "preview_url": shown["preview_url"], "description": shown["description"] or "",
                "width": size.get("width"), "height": size.get("height")})
    out = []
    for s in found.items:
        parent = found.parents.get(s.in_reply_to_id) if s.in_reply_to_id else None
        out.append({
            "id": s.id, "url": s.url, "uri": s.uri, "created_at": s.created_at, "created_label": _label(s.created_at),
            "edited": s.edited_at is not None, "content": Markup(sanitize_html(s.content)),
            "text": html_to_text(s.content), "spoiler_text": s.spoiler_text, "sensitive": s.sensitive,
            "language": s.language or "", "media": media.get(s.id, []),
            "in_reply_to_url": parent.url if parent is not None else None,
        })
    return out


async def profile_page(request: web.Request, account: Account | None = None) -> web.Response:
    st = state_of(request)
    if not st.settings.web.public_pages:
        raise web.HTTPNotFound()
    if account is None:
        account = await pages.local_account(st, request.match_info["username"].lstrip("@"))
        if account is None:
            raise web.HTTPNotFound()
    if account.deleted_at is not None or account.suspended:
        raise web.HTTPGone()
    max_id = parse_id(request.query.get("max_id", ""))
    found = await pages.profile(st, account, max_id)
    older_url = f"{account.url}?max_id={found.older_id}" if found.older_id is not None else None
    posts = _posts(st, found.posts)
    author = _author(st, account)
    description = _summary(author["note_text"]) or f"Posts by {author['name']} on {st.settings.instance.title}"
    response = render_page(request, "profile.html", title=f"{author['name']} ({author['handle']})",
                           account=author, posts=posts, older_url=older_url, description=description,
                           cache_control="public, max-age=60")
    response.headers["Vary"] = "Accept"
    return response


async def status_page(request: web.Request, account: Account, status: Status) -> web.Response:
    st = state_of(request)
    if not st.settings.web.public_pages or not pages.shown_publicly(status) or status.account_id != account.id:
        raise web.HTTPNotFound()
    if account.deleted_at is not None or account.suspended:
        raise web.HTTPGone()
    author = _author(st, account)
    post = _posts(st, await pages.public_posts(st, [status]))[0]
    if status.spoiler_text:
        description = f"Content warning: {status.spoiler_text}"
    else:
        description = _summary(post["text"]) or f"A post by {author['name']}"
    pictures = [] if status.sensitive or status.spoiler_text else post["media"]
    image = ({"url": pictures[0]["url"], "description": pictures[0]["description"], "large": True} if pictures
             else {"url": author["avatar"], "description": "", "large": False})
    response = render_page(request, "status.html", title=f"{author['name']}: {_summary(description)[:80]}",
                           author=author, post=post, description=description, image=image,
                           cache_control="public, max-age=60")
    response.headers["Vary"] = "Accept"
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/", home_page)
    app.router.add_get("/static/{name}", static_image)
    app.router.add_get("/@{username}", profile_page)
    app.router.add_get("/@{username}/", profile_page)
