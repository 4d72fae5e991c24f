"""HTML from peers: sanitise to Mastodon's allowed subset, or flatten to plain text."""

from __future__ import annotations

import re
from functools import cache
from html import unescape
from html.parser import HTMLParser
from typing import Any

__all__ = ["ALLOWED_TAGS", "sanitize_html", "html_to_text"]

# Mastodon's Sanitize::Config::MASTODON_STRICT.
ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "a",
        "span",
        "del",
        "pre",
        "code",
        "em",
        "strong",
        "b",
        "i",
        "u",
        "ul",
        "ol",
        "li",
        "blockquote",
    }
)
_ATTRIBUTES = {"a": {"href"}, "ol": {"start", "reversed"}, "li": {"value"}}
# Mastodon keeps microformat classes and its own mention/hashtag/ellipsis/invisible ones.
_CLASSES = {"h-card", "u-url", "p-name", "p-nickname", "u-uid", "mention", "hashtag", "ellipsis", "invisible"}
_URL_SCHEMES = {
    "http",
    "https",
    "mailto",
    "xmpp",
    "magnet",
    "gemini",
    "gopher",
    "dat",
    "dweb",
    "ipfs",
    "ipns",
    "ssb",
    "matrix",
    "tel",
}

@cache
def _cleaner() -> Any:
    """Made on first use: a server that has not yet seen HTML from a peer never loads nh3 (1.5 MB)."""
    import nh3
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style", "template", "noscript", "iframe", "object", "svg", "math"},
        attributes=_ATTRIBUTES,
        allowed_classes={"a": _CLASSES, "span": _CLASSES},
        link_rel="nofollow noopener noreferrer",
        url_schemes=_URL_SCHEMES,
        url_relative="deny",  # a relative link in federated HTML would point at *our* host
        strip_comments=True,
    )


def sanitize_html(html: str) -> str:
    """Reduce untrusted HTML to Mastodon's tag/attribute/URL-scheme whitelist.

    Links get rel="nofollow noopener noreferrer"; script/style content is dropped.
    """
    if not html:
        return ""
    return _cleaner().clean(html)


_BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol", "div", "h1", "h2", "h3", "h4", "h5", "h6"})
_SKIP = frozenset({"script", "style", "template", "noscript"})


class _Text:
    """Plain text built from a stream of tags and text: block breaks, <br>, script/style skipped."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.skip = 0

    def start(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self._block_break("\n")
        elif tag in _BLOCKS:
            self._block_break("\n\n")

    def end(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self._block_break("\n\n")

    def data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)

    def _block_break(self, sep: str) -> None:
        if self.parts and not "".join(self.parts[-2:]).endswith(sep):
            self.parts.append(sep)


class _TextExtractor(HTMLParser):
    """Any HTML, tag by tag, into a _Text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = _Text()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.text.start(tag)

    def handle_endtag(self, tag: str) -> None:
        self.text.end(tag)

    def handle_data(self, data: str) -> None:
        self.text.data(data)


# A start or end tag as an HTML serialiser writes it (quoted attribute values, which may hold ">"), or a
# run of text: sanitised HTML (what we store, and flatten for search) is made of nothing else.
_TOKEN = re.compile(
    r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(/?)>"""
    r"|([^<]+)")


def _flatten(html: str) -> list[str] | None:
    """The text parts of well-formed tags-and-text HTML, as _TextExtractor makes them, without
    HTMLParser's character-by-character work (a stored post's HTML in 9.5 us instead of 23); None
    when anything else is in it (comments, doctypes, script or style, a stray "<"), which is left to it."""
    text = _Text()
    at = 0
    for m in _TOKEN.finditer(html):
        if m.start() != at:
            return None
        at = m.end()
        data = m.group(5)
        if data is not None:
            text.data(unescape(data) if "&" in data else data)
            continue
        tag = m.group(2).lower()
        if tag in _SKIP:
            return None
        if m.group(1):
            text.end(tag)
        else:
            text.start(tag)
            if m.group(4):  # <br/>: HTMLParser calls both
                text.end(tag)
    return text.parts if at == len(html) else None


def html_to_text(html: str) -> str:
    """Plain text for search indexing and plain-text display: paragraphs become blank
    lines, <br> a newline, entities are decoded, script/style content is dropped."""
    if not html:
        return ""
    parts = _flatten(html)
    if parts is None:
        p = _TextExtractor()
        p.feed(html)
        p.close()
        parts = p.text.parts
    text = "".join(parts)
    lines = [line.rstrip() for line in text.split("\n")]
    out = "\n".join(lines).strip("\n")
    while "\n\n\n" in out:
        out = out.replace("\n\n\n", "\n\n")
    return out.strip()
