"""Plain text as users type it → the safe HTML Mastodon clients expect.

Two steps, because resolving a mention needs the database: `extract_mentions` finds the handles,
the caller resolves them, and `render` builds the HTML with only the resolved ones linked.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from urllib.parse import quote

import msgspec

_URL = r"https?://[^\s<>\"'\u00a0]+"
_MENTION = r"(?<![\w/@.])@(?P<user>[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*)(?:@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d+)?))?"
_HASHTAG = r"(?<![\w/&#])#(?P<tag>\w*[^\W\d]\w*)"
TOKEN = re.compile(f"(?P<url>{_URL})|{_MENTION}|{_HASHTAG}", re.UNICODE)
_TRAILING = ".,;:!?'\")]}"


class MentionTarget(msgspec.Struct, frozen=True):
    url: str
    username: str  # shown after the @ (Mastodon shows the bare username)
    account_id: int = 0


class Rendered(msgspec.Struct):
    html: str
    mentions: list[tuple[str, str | None]]  # the handles that resolved, in order
    tags: list[str]


def _trim_url(url: str) -> str:
    # Trailing punctuation belongs to the sentence, except a closing bracket that closes one in the URL.
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _normal_domain(domain: str | None, local_domain: str) -> str | None:
    if domain is None or domain.lower() == local_domain.lower():
        return None
    return domain.lower()


def extract_mentions(text: str, local_domain: str) -> list[tuple[str, str | None]]:
    """Handles mentioned in the text as (username, domain or None for local), without duplicates."""
    found: dict[tuple[str, str | None], None] = {}
    for m in TOKEN.finditer(text):
        if m.group("user"):
            found[(m.group("user").lower(), _normal_domain(m.group("domain"), local_domain))] = None
    return list(found)


def extract_tags(text: str) -> list[str]:
    found: dict[str, str] = {}
    for m in TOKEN.finditer(text):
        if m.group("tag"):
            found.setdefault(m.group("tag").lower(), m.group("tag"))
    return list(found.values())


def _link(url: str) -> str:
    esc = html.escape(url, quote=True)
    scheme, _, rest = url.partition("://")
    shown = html.escape(rest)
    return (f'<a href="{esc}" target="_blank" rel="nofollow noopener noreferrer" translate="no">'
            f'<span class="invisible">{html.escape(scheme)}://</span><span class="">{shown}</span></a>')


def render(text: str, base_url: str, local_domain: str,
           resolved: Mapping[tuple[str, str | None], MentionTarget]) -> Rendered:
    mentions: dict[tuple[str, str | None], None] = {}
    tags: dict[str, str] = {}

    def inline(line: str) -> str:
        out, pos = [], 0
        for m in TOKEN.finditer(line):
            start, end = m.span()
            if m.group("url"):
                url = _trim_url(m.group("url"))
                end = start + len(url)
                out.append(html.escape(line[pos:start]))
                out.append(_link(url))
            elif m.group("user"):
                key = (m.group("user").lower(), _normal_domain(m.group("domain"), local_domain))
                target = resolved.get(key)
                out.append(html.escape(line[pos:start]))
                if target is None:
                    out.append(html.escape(m.group(0)))
                else:
                    mentions[key] = None
                    out.append(f'<span class="h-card" translate="no"><a href="{html.escape(target.url, quote=True)}"'
                               f' class="u-url mention">@<span>{html.escape(target.username)}</span></a></span>')
            else:
                name = m.group("tag")
                tags.setdefault(name.lower(), name)
                out.append(html.escape(line[pos:start]))
                out.append(f'<a href="{base_url}/tags/{quote(name.lower())}" class="mention hashtag" rel="tag">'
                           f'#<span>{html.escape(name)}</span></a>')
            pos = end
        out.append(html.escape(line[pos:]))
        return "".join(out)

    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    body = "".join("<p>" + "<br />".join(inline(line) for line in p.split("\n")) + "</p>" for p in paragraphs)
    return Rendered(html=body, mentions=list(mentions), tags=list(tags.values()))
