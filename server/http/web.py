"""Server-rendered HTML and the built-in images (default avatar, header, instance thumbnail)."""

from __future__ import annotations

import html
import struct
import zlib
from functools import cache

from aiohttp import web

STYLE = ("body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}"
         "label{display:block;margin:.5rem 0}input{display:block;width:100%;padding:.4rem;margin-top:.2rem}"
         "button{margin-top:1rem;padding:.5rem 1rem}.error{color:#b00}code{font-size:1.1rem;word-break:break-all}"
         "article{border-bottom:1px solid #ddd;padding:1rem 0}")


def html_page(title: str, body: str, status: int = 200) -> web.Response:
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{html.escape(title)} — Crosstalk</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return web.Response(text=page, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                            "img-src 'self' https: data:; form-action 'self' *"})


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
    from server.http.base import state_of
    st = state_of(request)
    return html_page(st.config["instance.title"],
                     f"<h1>{html.escape(st.config['instance.title'])}</h1><p>{html.escape(st.config['instance.description'])}</p>"
                     "<p>Use any Mastodon-compatible app, or the <code>xtalk</code> command-line client, with this server.</p>")


def setup(app: web.Application) -> None:
    app.router.add_get("/", home_page)
    app.router.add_get("/static/{name}", static_image)
