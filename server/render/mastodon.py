"""Domain records → Mastodon API entities (plain dicts, encoded by msgspec at the edge). Pure: what a
page needs is loaded beforehand, in a fixed number of queries whatever the page size, by
server/services/loaders.py into the bundles of server/render/bundles.py.

A status renders as a function of its bundle and the viewer's bits (flags, poll votes, filter results),
so a rendering for nobody in particular can be kept and finished per viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from server.domain.records import Account, Status, StatusEdit
from server.ids import now_iso
from server.render.accounts import (
    DEFAULT_AVATAR,
    DEFAULT_HEADER,
    account_json,
    credential_account_json,
    media_json,
    relationship_json,
)
from server.render.bundles import (
    ConversationPage,
    NotificationPage,
    Site,
    StatusBundle,
    StatusPage,
    ViewerBits,
)
from server.render.polls import poll_json
from server.render.reports import report_json

_encoder = msgspec.json.Encoder()

__all__ = ["DEFAULT_AVATAR", "DEFAULT_HEADER", "account_bytes", "account_json", "accounts_json", "conversations_json",
           "credential_account_json", "emoji_reactions_json", "fixed_status_json", "media_json", "notifications_json",
           "relationship_json", "status_fragment", "status_history_json", "status_json", "status_parts_json",
           "statuses_bytes", "statuses_json", "thread_context_bytes"]


def emoji_reactions_json(counts: Sequence[tuple[str, int]], mine: set[str]) -> list[dict[str, Any]]:
    """Akkoma's `pleroma.emoji_reactions`: [{name, count, me}], the most used first."""
    return [{"name": name, "count": count, "me": name in mine} for name, count in counts]


def accounts_json(site: Site, items: list[Account]) -> list[dict[str, Any]]:
    return [account_json(site, a) for a in items]


def status_parts_json(site: Site, s: Status, bundle: StatusBundle) -> dict[str, Any]:
    """The parts of a status entity that are the same for every viewer and change only with the status."""
    mention_list = []
    for mid in bundle.mentions.get(s.id, []):
        m = bundle.accounts.get(mid)
        if m is not None:
            mention_list.append({"id": str(m.id), "username": m.username, "url": m.url, "acct": m.acct})
    app = bundle.apps.get(s.app_id) if s.app_id else None
    return {
        "application": {"name": app.name, "website": app.website} if app is not None else None,
        "media_attachments": [media_json(site, r) for r in bundle.media.get(s.id, [])],
        "mentions": mention_list,
        "tags": [{"name": t.lower(), "url": f"{site.base_url}/tags/{t.lower()}"} for t in bundle.tags.get(s.id, [])],
    }


def fixed_status_json(s: Status, fixed: dict[str, Any]) -> dict[str, Any]:
    """The fields of a status entity that are the same for every viewer, without its account, the
    status it boosts, its poll and reactions (which change apart from the status) and the viewer's own
    parts. `fixed` is what `status_parts_json` answers."""
    return {
        "id": str(s.id),
        "uri": s.uri,
        "url": s.url,
        "created_at": s.created_at,
        "content": s.content,
        "visibility": s.visibility,
        "sensitive": bool(s.sensitive),
        "spoiler_text": s.spoiler_text,
        "language": s.language,
        "application": fixed["application"],
        "media_attachments": fixed["media_attachments"],
        "mentions": fixed["mentions"],
        "tags": fixed["tags"],
        "emojis": [],
        "reblogs_count": s.reblogs_count,
        "favourites_count": s.favourites_count,
        "replies_count": s.replies_count,
        "in_reply_to_id": str(s.in_reply_to_id) if s.in_reply_to_id else None,
        "in_reply_to_account_id": str(s.in_reply_to_account_id) if s.in_reply_to_account_id else None,
        "card": None,
        "edited_at": s.edited_at,
        "local_only": bool(s.local_only),
    }


def status_fragment(s: Status, fixed: dict[str, Any]) -> bytes:
    """`fixed_status_json` encoded, without its closing brace: the start of the status's JSON object,
    which `statuses_bytes` finishes per viewer."""
    return _encoder.encode(fixed_status_json(s, fixed))[:-1]


def account_bytes(site: Site, a: Account) -> bytes:
    return _encoder.encode(account_json(site, a))


def _tail_json(s: Status, bundle: StatusBundle, viewer: ViewerBits | None, now: str,
               with_source: bool) -> dict[str, Any]:
    """The fields of a status entity that change apart from the status (poll, reactions) or depend on
    the viewer."""
    poll = bundle.polls.get(s.id)
    viewer_id = viewer.viewer_id if viewer is not None else None
    data: dict[str, Any] = {
        "poll": poll_json(poll, viewer_id, viewer.votes.get(poll.id) if viewer else None, now) if poll else None,
        "filtered": [],
        "pleroma": {"emoji_reactions": emoji_reactions_json(
            bundle.reactions.get(s.id, []), viewer.reacted.get(s.id, set()) if viewer is not None else set())},
    }
    if viewer is not None:
        flags = viewer.flags
        data["favourited"] = s.id in flags.favourited
        data["reblogged"] = s.id in flags.reblogged
        data["bookmarked"] = s.id in flags.bookmarked
        data["muted"] = False
        if s.account_id == viewer_id:
            data["pinned"] = s.id in flags.pinned
        data["filtered"] = viewer.filtered.get(s.id, [])
    if with_source:
        data["text"] = s.source_text
    return data


def _own_status_json(site: Site, s: Status, bundle: StatusBundle, viewer: ViewerBits | None, now: str,
                     with_source: bool, account: dict[str, Any] | None) -> dict[str, Any]:
    data = fixed_status_json(s, bundle.parts.get(s.id) or status_parts_json(site, s, bundle))
    data["account"] = account
    data["reblog"] = None
    data.update(_tail_json(s, bundle, viewer, now, with_source))
    return data


def status_json(site: Site, s: Status, bundle: StatusBundle, viewer: ViewerBits | None = None,
                with_source: bool = False, now: str | None = None,
                accounts: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One status (with the one it boosts). `accounts` shares account entities across a page."""
    now = now or now_iso()
    cache = accounts if accounts is not None else {}

    def account(account_id: int) -> dict[str, Any] | None:
        if account_id not in cache and account_id in bundle.accounts:
            cache[account_id] = account_json(site, bundle.accounts[account_id])
        return cache.get(account_id)

    data = _own_status_json(site, s, bundle, viewer, now, with_source, account(s.account_id))
    if s.reblog_of_id is not None:
        original = bundle.statuses.get(s.reblog_of_id)
        data["reblog"] = None if original is None else _own_status_json(
            site, original, bundle, viewer, now, with_source, account(original.account_id))
    return data


def statuses_json(site: Site, page: StatusPage) -> list[dict[str, Any]]:
    now = now_iso()
    accounts: dict[int, dict[str, Any]] = {}
    return [status_json(site, s, page.bundle, page.viewer, page.with_source, now, accounts) for s in page.items]


_PLAIN_TAIL = b',"poll":null,"filtered":[],"pleroma":{"emoji_reactions":[]}'
_PLAIN_TAIL_CLOSED = _PLAIN_TAIL + b"}"
_TF = (b"false", b"true")
_VIEWER_TAILS: dict[tuple[bool, bool, bool, bool | None], bytes] = {}


def _plain_viewer_tail(favourited: bool, reblogged: bool, bookmarked: bool, pinned: bool | None) -> bytes:
    """`_tail_json` encoded (without its opening brace) for a status without poll, reactions, source or
    filter results: one of a few constants."""
    key = (favourited, reblogged, bookmarked, pinned)
    found = _VIEWER_TAILS.get(key)
    if found is None:
        found = b"".join((_PLAIN_TAIL, b',"favourited":', _TF[favourited], b',"reblogged":', _TF[reblogged],
                          b',"bookmarked":', _TF[bookmarked], b',"muted":false',
                          b"" if pinned is None else b',"pinned":' + _TF[pinned], b"}"))
        _VIEWER_TAILS[key] = found
    return found


def _statuses_pieces(site: Site, page: StatusPage, out: list[bytes]) -> None:
    """Append the page as `statuses_json` renders it, encoded, in pieces: each status spliced from its
    kept fragment and its account's kept encoding (`bundle.fragments`, `bundle.account_fragments`;
    rendered here where the bundle has none) and the few fields that change apart from it or with the
    viewer. The pieces are joined once, into the answer's body: a page is 40 KB, and every join of it
    on the way (a status, the list, the brackets, an encoder writing it out again) was a copy."""
    bundle, viewer, with_source = page.bundle, page.viewer, page.with_source
    fragments, account_fragments = bundle.fragments, bundle.account_fragments
    polls, reactions = bundle.polls, bundle.reactions
    filtered = viewer.filtered if viewer is not None else {}
    flags = viewer.flags if viewer is not None else None
    viewer_id = viewer.viewer_id if viewer is not None else None
    encode = _encoder.encode
    now = now_iso() if polls else ""
    # Most statuses of a page have no poll, no reactions, no filter verdict and none of the viewer's
    # flags: their tail is one of two constants, found without looking at each of the viewer's sets.
    special = with_source or bool(polls or reactions or filtered)
    if flags is None:
        flagged: set[int] | frozenset[int] = frozenset()
        untouched = untouched_own = _PLAIN_TAIL_CLOSED
    else:
        flagged = flags.favourited | flags.reblogged | flags.bookmarked | flags.pinned
        untouched, untouched_own = _plain_viewer_tail(False, False, False, None), _plain_viewer_tail(False, False, False, False)

    def account(account_id: int) -> bytes:
        found = account_fragments.get(account_id)
        if found is None:
            a = bundle.accounts.get(account_id)
            found = b"null" if a is None else account_bytes(site, a)
        return found

    def own(s: Status) -> tuple[bytes, bytes, bytes]:
        """The status's kept fragment, its account's encoding, and its tail (the fields after "reblog")."""
        sid = s.id
        fragment = fragments.get(sid)
        if fragment is None:
            fragment = status_fragment(s, bundle.parts.get(sid) or status_parts_json(site, s, bundle))
        if special and (with_source or sid in polls or sid in reactions or sid in filtered):
            tail = b"," + encode(_tail_json(s, bundle, viewer, now, with_source))[1:]
        elif sid not in flagged:
            tail = untouched_own if s.account_id == viewer_id else untouched
        else:
            assert flags is not None  # flagged is empty without them
            tail = _plain_viewer_tail(sid in flags.favourited, sid in flags.reblogged, sid in flags.bookmarked,
                                      sid in flags.pinned if s.account_id == viewer_id else None)
        return fragment, account(s.account_id), tail

    if not page.items:
        out.append(b"[]")
        return
    separator = b"["
    statuses = bundle.statuses
    for s in page.items:
        fragment, author, tail = own(s)
        original = statuses.get(s.reblog_of_id) if s.reblog_of_id is not None else None
        if original is None:
            out += (separator, fragment, b',"account":', author, b',"reblog":null', tail)
        else:
            boosted_fragment, boosted_author, boosted_tail = own(original)
            out += (separator, fragment, b',"account":', author, b',"reblog":', boosted_fragment, b',"account":',
                    boosted_author, b',"reblog":null', boosted_tail, tail)
        separator = b","
    out.append(b"]")


def statuses_bytes(site: Site, page: StatusPage) -> bytes:
    """The page as `statuses_json` renders it, encoded (a JSON list of statuses)."""
    out: list[bytes] = []
    _statuses_pieces(site, page, out)
    return b"".join(out)


def thread_context_bytes(site: Site, ancestors: StatusPage, descendants: StatusPage) -> bytes:
    """A thread's context entity, encoded: {"ancestors": [...], "descendants": [...]}."""
    out = [b'{"ancestors":']
    _statuses_pieces(site, ancestors, out)
    out.append(b',"descendants":')
    _statuses_pieces(site, descendants, out)
    out.append(b"}")
    return b"".join(out)


def status_history_json(site: Site, page: StatusPage, author: Account, edits: list[StatusEdit]) -> list[dict[str, Any]]:
    """The versions of a status, oldest first (the status itself when it was never edited)."""
    status = page.items[0]
    media = statuses_json(site, page)[0]["media_attachments"]
    author_json = account_json(site, author)
    versions = [(e.content, e.spoiler_text, e.sensitive, e.created_at) for e in edits] or [
        (status.content, status.spoiler_text, status.sensitive, status.created_at)]
    return [{"content": c, "spoiler_text": sp, "sensitive": bool(se), "created_at": at, "account": author_json,
             "poll": None, "media_attachments": media, "emojis": []} for c, sp, se, at in versions]


def notifications_json(site: Site, page: NotificationPage) -> list[dict[str, Any]]:
    rendered = {s["id"]: s for s in statuses_json(site, page.statuses)}
    out = []
    for n in page.items:
        account = page.accounts.get(n.from_account_id)
        if account is None:
            continue
        data: dict[str, Any] = {"id": str(n.id), "type": n.type, "created_at": n.created_at,
                                "group_key": f"ungrouped-{n.id}", "account": account_json(site, account)}
        report = page.reports.get(n.id)
        if report is not None:
            data["report"] = report_json(site, report, page.accounts.get(report.target_account_id))
        if n.status_id:
            status = rendered.get(str(n.status_id))
            if status is None:
                continue
            data["status"] = status
        out.append(data)
    return out


def conversations_json(site: Site, page: ConversationPage) -> list[dict[str, Any]]:
    """Also what the streaming layer sends for a `conversation` event (see services.conversations)."""
    rendered = {s["id"]: s for s in statuses_json(site, page.statuses)}
    out = []
    for c in page.items:
        # A note to oneself has no other participants; Mastodon then lists the owner.
        ids = c.participant_ids or [page.viewer_id]
        out.append({
            "id": str(c.id),
            "unread": bool(c.unread),
            "accounts": [account_json(site, page.accounts[a]) for a in ids if a in page.accounts],
            "last_status": rendered.get(str(c.last_status_id)),
        })
    return out
