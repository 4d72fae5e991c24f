"""Turning API entities into readable terminal text: HTML → wrapped plain text, relative times, content
warnings folded, thread indentation, and colour only when asked for (a terminal without NO_COLOR)."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, TextIO

Entity = dict[str, Any]

BLOCKS = {"p", "div", "blockquote", "li", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
MAX_INDENT_LEVELS = 8


# -- colour ----------------------------------------------------------------------------------------

def colour_wanted(stream: TextIO, flag: bool | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if flag is not None:
        return flag
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def acct(self, text: str) -> str:
        return self._wrap("36", text)

    def warn(self, text: str) -> str:
        return self._wrap("33", text)

    def error(self, text: str) -> str:
        return self._wrap("31", text)


def terminal_width(default: int = 80) -> int:
    return max(40, min(shutil.get_terminal_size((default, 24)).columns, 100))


# -- HTML → text -----------------------------------------------------------------------------------

class _Block:
    def __init__(self, prefix: str = "", pre: bool = False) -> None:
        self.prefix = prefix
        self.pre = pre
        self.lines: list[str] = [""]


class _TextExtractor(HTMLParser):
    """Collects paragraphs (lists of lines) from Mastodon-flavoured HTML.

    Links whose visible text is not the URL get the URL appended in <>, except mentions and hashtags,
    which read best as @user and #tag. Mastodon splits long URLs into invisible/ellipsis spans; their
    concatenated text is the full URL, so no special case is needed.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self.current: _Block | None = None
        self.quote_depth = 0
        self.list_stack: list[list[int]] = []  # [counter] per <ol>, [-1] per <ul>
        self.pre_depth = 0
        self.link: dict[str, Any] | None = None

    # block handling
    def _prefix(self) -> str:
        return "> " * self.quote_depth

    def _start_block(self, prefix: str | None = None) -> None:
        self._end_block()
        self.current = _Block(self._prefix() if prefix is None else prefix, pre=self.pre_depth > 0)
        self.blocks.append(self.current)

    def _end_block(self) -> None:
        if self.current is not None and not "".join(self.current.lines).strip():
            self.blocks.remove(self.current)
        self.current = None

    def _write(self, text: str) -> None:
        if self.current is None:
            self._start_block()
        assert self.current is not None
        if self.current.pre:
            parts = text.split("\n")
            self.current.lines[-1] += parts[0]
            self.current.lines.extend(parts[1:])
        else:
            self.current.lines[-1] += re.sub(r"\s+", " ", text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "br":
            if self.current is None:
                self._start_block()
            assert self.current is not None
            self.current.lines.append("")
        elif tag == "blockquote":
            self.quote_depth += 1
            self._start_block()
        elif tag in ("ul", "ol"):
            self.list_stack.append([0 if tag == "ol" else -1])
            self._end_block()
        elif tag == "li":
            counter = self.list_stack[-1] if self.list_stack else [-1]
            if counter[0] >= 0:
                counter[0] += 1
                bullet = f"{counter[0]}. "
            else:
                bullet = "- "
            self._start_block(self._prefix() + "  " * max(0, len(self.list_stack) - 1) + bullet)
        elif tag == "pre":
            self.pre_depth += 1
            self._start_block()
        elif tag in BLOCKS:
            self._start_block()
        elif tag == "a":
            self.link = {"href": attr.get("href", ""), "class": attr.get("class", ""), "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.link is not None:
            link, self.link = self.link, None
            self._write(_link_text(link["text"], link["href"], link["class"]))
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self._end_block()
        elif tag in ("ul", "ol"):
            if self.list_stack:
                self.list_stack.pop()
            self._end_block()
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            self._end_block()
        elif tag in BLOCKS:
            self._end_block()

    def handle_data(self, data: str) -> None:
        if self.link is not None:
            self.link["text"] += data
        else:
            self._write(data)


def _link_text(text: str, href: str, classes: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    names = set(classes.split())
    if names & {"mention", "hashtag"} or text.startswith(("@", "#")):
        return text
    if not href or not text:
        return text or href
    bare = re.sub(r"^[a-z]+://", "", href, flags=re.I).rstrip("/")
    shown = re.sub(r"^[a-z]+://", "", text.rstrip("…"), flags=re.I).rstrip("/")
    if shown == bare or (text.endswith("…") and bare.startswith(shown)):
        return href if text.endswith("…") else text
    return f"{text} <{href}>"


def html_paragraphs(html: str) -> list[tuple[str, list[str], bool]]:
    """(prefix, lines, preformatted) per paragraph, whitespace normalised."""
    parser = _TextExtractor()
    parser.feed(html or "")
    parser.close()
    if parser.link is not None:  # unterminated <a>
        parser._write(parser.link["text"])
    parser._end_block()
    out = []
    for block in parser.blocks:
        lines = block.lines if block.pre else [line.strip() for line in block.lines]
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines:
            out.append((block.prefix, lines, block.pre))
    return out


def html_to_text(html: str, width: int = 80, indent: str = "") -> str:
    """Plain text wrapped at `width`; paragraphs separated by a blank line, <br> kept as line breaks."""
    chunks: list[str] = []
    for prefix, lines, pre in html_paragraphs(html):
        out: list[str] = []
        cont = indent + (" " * len(prefix) if not prefix.startswith(">") else prefix)
        for i, line in enumerate(lines):
            first = indent + prefix if i == 0 else cont
            if pre:
                out.append(first + line)
                continue
            wrapped = textwrap.wrap(line, width=max(20, width - len(first)), break_long_words=False,
                                    break_on_hyphens=False) or [""]
            out.append(first + wrapped[0])
            out.extend(cont + w for w in wrapped[1:])
        chunks.append("\n".join(out))
    return "\n\n".join(chunks)


def plain_text_wrap(text: str, width: int, indent: str = "") -> str:
    lines = []
    for line in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(line, width=max(20, width - len(indent)), break_long_words=False,
                                   initial_indent=indent, subsequent_indent=indent) or [indent])
    return "\n".join(lines)


# -- times -----------------------------------------------------------------------------------------

def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def relative_time(value: str | None, now: datetime | None = None) -> str:
    when = parse_time(value)
    if when is None:
        return "?"
    now = now or datetime.now(UTC)
    seconds = (now - when).total_seconds()
    if seconds < 10:
        return "now"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d"
    return when.strftime("%Y-%m-%d")


# -- entities --------------------------------------------------------------------------------------

class Renderer:
    def __init__(self, width: int = 80, colour: bool = False, expand: bool = False,
                 now: datetime | None = None) -> None:
        self.width = width
        self.style = Style(colour)
        self.expand = expand
        self.now = now

    def _who(self, account: Entity) -> str:
        name = (account.get("display_name") or "").strip() or account.get("username", "")
        return f"{self.style.bold(name)} {self.style.acct('@' + str(account.get('acct', '')))}"

    def status(self, status: Entity, indent: int = 0, focus: bool = False) -> str:
        pad = "  " * min(indent, MAX_INDENT_LEVELS)
        lines: list[str] = []
        shown = status
        if status.get("reblog"):
            shown = status["reblog"]
            lines.append(pad + self.style.dim(f"{_name(status['account'])} boosted · "
                                              f"{relative_time(status.get('created_at'), self.now)}"))
        meta = [relative_time(shown.get("created_at"), self.now), str(shown.get("visibility", "")),
                f"id {shown.get('id')}"]
        if shown.get("edited_at"):
            meta.insert(1, "edited")
        marker = "> " if focus else ""
        lines.append(pad + marker + self._who(shown.get("account") or {}) + " " + self.style.dim("· " + " · ".join(meta)))
        body_pad = pad + "  "
        spoiler = (shown.get("spoiler_text") or "").strip()
        text = html_to_text(shown.get("content") or "", width=self.width, indent=body_pad)
        if spoiler:
            lines.append(body_pad + self.style.warn(f"CW: {spoiler}"))
            if self.expand:
                if text:
                    lines.append(text)
            else:
                hidden = len(text.replace(body_pad, "").strip())
                lines.append(body_pad + self.style.dim(f"[content hidden, {hidden} characters; --expand shows it]"))
        elif text:
            lines.append(text)
        for media in shown.get("media_attachments") or []:
            if spoiler and not self.expand:
                break
            label = media.get("type") or "media"
            desc = (media.get("description") or "").strip() or "no description"
            lines.append(plain_text_wrap(f"[{label}] {desc}  {media.get('url') or media.get('remote_url') or ''}".rstrip(),
                                         self.width, body_pad))
        poll = shown.get("poll")
        if poll and (self.expand or not spoiler):
            for option in poll.get("options") or []:
                count = option.get("votes_count")
                lines.append(body_pad + f"( ) {option.get('title')}" + (f"  {count}" if count is not None else ""))
        counts = []
        if shown.get("in_reply_to_id"):
            counts.append(f"reply to {shown['in_reply_to_id']}")
        for key, one, many in (("replies_count", "reply", "replies"), ("reblogs_count", "boost", "boosts"),
                               ("favourites_count", "fav", "favs")):
            n = shown.get(key) or 0
            if n:
                counts.append(f"{n} {one if n == 1 else many}")
        flags = [f for f, key in (("faved", "favourited"), ("boosted", "reblogged"), ("bookmarked", "bookmarked"))
                 if shown.get(key)]
        if counts or flags:
            lines.append(body_pad + self.style.dim(" · ".join(counts + flags)))
        return "\n".join(lines)

    def thread(self, focus: Entity, context: Entity) -> str:
        ancestors = context.get("ancestors") or []
        descendants = context.get("descendants") or []
        depth: dict[str, int] = {}
        parts = []
        for i, status in enumerate(ancestors):
            depth[str(status["id"])] = i
            parts.append(self.status(status, indent=i))
        depth[str(focus["id"])] = len(ancestors)
        parts.append(self.status(focus, indent=len(ancestors), focus=True))
        for status in descendants:
            parent = str(status.get("in_reply_to_id"))
            level = depth.get(parent, len(ancestors)) + 1
            depth[str(status["id"])] = level
            parts.append(self.status(status, indent=level))
        return "\n\n".join(parts)

    def notification(self, note: Entity) -> str:
        verbs = {"mention": "mentioned you", "status": "posted", "reblog": "boosted your post",
                 "favourite": "favourited your post", "follow": "followed you",
                 "follow_request": "asked to follow you", "poll": "poll ended", "update": "edited a post",
                 "admin.sign_up": "signed up", "admin.report": "filed a report"}
        kind = str(note.get("type", ""))
        head = (f"{self._who(note.get('account') or {})} {verbs.get(kind, kind)} "
                + self.style.dim(f"· {relative_time(note.get('created_at'), self.now)} · id {note.get('id')}"))
        if note.get("status"):
            return head + "\n" + self.status(note["status"], indent=1)
        return head

    def account(self, account: Entity, relationship: Entity | None = None) -> str:
        pad = "  "
        lines = [self._who(account) + (self.style.dim(" · bot") if account.get("bot") else "")
                 + (self.style.dim(" · locked") if account.get("locked") else "")]
        note = html_to_text(account.get("note") or "", width=self.width, indent=pad)
        if note:
            lines.append(note)
        for field in account.get("fields") or []:
            value = html_to_text(field.get("value") or "", width=10_000).replace("\n", " ")
            check = " (verified)" if field.get("verified_at") else ""
            lines.append(plain_text_wrap(f"{field.get('name')}: {value}{check}", self.width, pad))
        joined = (parse_time(account.get("created_at")) or datetime.now(UTC)).strftime("%Y-%m-%d")
        lines.append(pad + self.style.dim(
            f"{account.get('statuses_count', 0)} posts · {account.get('following_count', 0)} following · "
            f"{account.get('followers_count', 0)} followers · joined {joined}"))
        if relationship:
            rel = []
            for key, text in (("following", "you follow them"), ("requested", "follow requested"),
                              ("followed_by", "they follow you"), ("blocking", "blocked"),
                              ("muting", "muted"), ("blocked_by", "they block you")):
                if relationship.get(key):
                    rel.append(text)
            if rel:
                lines.append(pad + " · ".join(rel))
        if account.get("url"):
            lines.append(pad + str(account["url"]))
        return "\n".join(lines)

    def search(self, results: Entity) -> str:
        parts = []
        accounts = results.get("accounts") or []
        tags = results.get("hashtags") or []
        statuses = results.get("statuses") or []
        if accounts:
            parts.append(self.style.bold("Accounts") + "\n" + "\n".join(
                "  " + self._who(a) + self.style.dim(f" · id {a.get('id')}") for a in accounts))
        if tags:
            parts.append(self.style.bold("Hashtags") + "\n" + "\n".join(
                "  #" + (t.get("name", "") if isinstance(t, dict) else str(t)) for t in tags))
        if statuses:
            parts.append(self.style.bold("Posts") + "\n" + "\n\n".join(self.status(s, indent=1) for s in statuses))
        return "\n\n".join(parts) if parts else "No results."

    def statuses(self, items: Iterable[Entity]) -> str:
        return "\n\n".join(self.status(s) for s in items)


def _name(account: Entity) -> str:
    return (account.get("display_name") or "").strip() or str(account.get("username", ""))
