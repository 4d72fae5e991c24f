"""Loading what rendering needs, in batches: one query per kind of record for a whole page (accounts,
mentions, tags, media, polls, applications; the viewer's flags, poll votes and filters), never one per
status. The result is a bundle (server/render/bundles.py) that the pure renderers consume.

The rule that a viewer's `hide` filters drop statuses from a context is applied here too
(`without_hidden`), before anything is rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from server.caches import ACCOUNT_RENDERINGS, STATUS_RENDERINGS
from server.domain import filters as filter_rules
from server.domain.filters import ActiveFilter, FilterResult
from server.domain.records import (
    Account,
    Conversation,
    Notification,
    Poll,
    ScheduledStatus,
    Status,
    ViewerFlags,
)
from server.ids import now_iso
from server.ports import Row
from server.render import mastodon as render
from server.render.bundles import (
    ConversationPage,
    NotificationPage,
    ScheduledPage,
    StatusBundle,
    StatusPage,
    ViewerBits,
)
from server.services import viewers
from server.state import Invalidation, State
from server.storage import accounts as account_store
from server.storage import media as media_store
from server.storage import oauth as oauth_store
from server.storage import polls as poll_store
from server.storage import reactions as reaction_store
from server.storage import reports as report_store
from server.storage import scheduled as scheduled_store
from server.storage import statuses as status_store
from server.storage import viewers as viewer_store


# The rendering caches hold tens of thousands of entries: their records and entries are kept out of the
# garbage collector's sight (gc=False: they hold no reference cycles), so that a full collection, which
# a churning cache brings about every few seconds, walks fewer objects (10,000 status entries: 70,000
# tracked objects and a 25 ms pause before).
class StatusEntry(msgspec.Struct, gc=False):
    """What rendering a status needs that is the same for every viewer, at one version of the status
    (a version covers its row, its poll, reactions, attachments and the names it mentions)."""
    version: int
    status: Status
    parts: dict[str, Any]  # render.status_parts_json
    poll: Poll | None
    reactions: tuple[tuple[str, int], ...]  # (emoji, count), most used first
    fragment: bytes  # render.status_fragment
    size: int  # bytes held, roughly


class AccountEntry(msgspec.Struct, gc=False):
    version: int
    account: Account
    rendered: bytes  # render.account_bytes
    size: int


# What an entry holds, in bytes, from the length of its encoded JSON: the record (whose text is in the
# JSON too), the parts' objects and the JSON itself. Fitted to tracemalloc's count on the bench's full
# dataset (3,000 random entries of each: statuses 3,256 bytes for 940 of JSON, accounts 3,255 for 732),
# so that a cache's size setting bounds the memory it really takes.
def _status_size(fragment: bytes) -> int:
    return 400 + 3 * len(fragment)


def _account_size(rendered: bytes) -> int:
    return 1100 + 3 * len(rendered)


async def _status_entries(state: State, loaded: dict[int, tuple[int, Status]]) -> dict[int, StatusEntry]:
    """Entries for these statuses as read (with their versions): everything else they show is read
    after them, so it is at least as new as the version each entry is kept under."""
    every = {sid: s for sid, (_, s) in loaded.items()}
    ids = list(every)
    mentions = await status_store.mentions_for(state.db, ids)
    mentioned = await account_store.get_many(state.db, {a for found in mentions.values() for a in found})
    tags = await status_store.tags_for(state.db, ids)
    media: dict[int, list[Row]] = {}
    for row in await media_store.for_statuses(state.db, ids):
        media.setdefault(row["status_id"], []).append(row)
    polls = await poll_store.for_statuses(state.db, ids)
    apps = await oauth_store.apps_by_ids(state.db, {app_id for s in every.values() if (app_id := s.app_id)})
    counts = await reaction_store.counts_for(state.db, ids, None)
    bundle = StatusBundle(statuses=every, accounts=mentioned, mentions=mentions, tags=tags, media=media, polls=polls,
                          apps=apps)
    out = {}
    for sid, (version, s) in loaded.items():
        parts = render.status_parts_json(state, s, bundle)
        fragment = render.status_fragment(s, parts)
        out[sid] = StatusEntry(version=version, status=s, parts=parts, poll=polls.get(sid),
                               reactions=tuple((name, n) for name, n, _ in counts.get(sid, [])), fragment=fragment,
                               size=_status_size(fragment))
    return out


async def _statuses_read(state: State, ids: list[int], generation: int, into: dict[int, StatusEntry]) -> None:
    """Read these statuses (those that exist), render their parts, and keep each one that has not
    changed since `generation` (anything newer may be older than what the feed reported)."""
    cache = state.caches.get(STATUS_RENDERINGS)
    for sid, entry in (await _status_entries(state, await status_store.get_many_versioned(state.db, ids))).items():
        into[sid] = entry
        if not state.invalidations.changed_since(Invalidation.STATUS, str(sid), generation):
            cache.put(sid, entry)


async def _account_entries(state: State, ids: Iterable[int], generation: int) -> dict[int, AccountEntry]:
    """The kept entries of these accounts, the others read, rendered and kept unless an invalidation
    reached them since `generation`."""
    cache = state.caches.get(ACCOUNT_RENDERINGS)
    accounts: dict[int, AccountEntry] = {}
    missing = cache.get_many(ids, accounts)
    if missing:
        for aid, (version, a) in (await account_store.get_many_versioned(state.db, missing)).items():
            rendered = render.account_bytes(state, a)
            accounts[aid] = made = AccountEntry(version=version, account=a, rendered=rendered,
                                                size=_account_size(rendered))
            if not state.invalidations.changed_since(Invalidation.ACCOUNT, str(aid), generation):
                cache.put(aid, made)
    return accounts


async def account(state: State, account_id: int) -> Account | None:
    """One account as the rendering cache keeps it, current as of this call (the invalidation feed is
    read first): a signed-in viewer's own record on every request, without reading its row."""
    entry = (await _account_entries(state, [account_id], await state.invalidations.catch_up())).get(account_id)
    return entry.account if entry is not None else None


async def statuses(state: State, ids: list[int]) -> dict[int, Status]:
    """These statuses (those that exist, deleted ones too) as the rendering cache keeps them, current
    as of this call (the invalidation feed is read first); the others read, rendered and kept."""
    generation = await state.invalidations.catch_up()
    entries: dict[int, StatusEntry] = {}
    missing = state.caches.get(STATUS_RENDERINGS).get_many(ids, entries)
    if missing:
        await _statuses_read(state, missing, generation, entries)
    return {sid: e.status for sid, e in entries.items()}


async def _page(state: State, ids: list[int], given: dict[int, Status] | None = None) -> StatusBundle:
    """The bundle for these statuses and the ones they boost. The rendering caches hold only entries
    that no invalidation has reached since they were read: every change to what a status or an
    account renders as writes one (schema 0039) and the feed is read first here, so what is kept is
    current as of the request. Statuses in `given` are rendered from the given record where it is not
    the kept one (a status read inside a transaction, say, or one that is gone)."""
    generation = await state.invalidations.catch_up()
    status_cache = state.caches.get(STATUS_RENDERINGS)
    entries: dict[int, StatusEntry] = {}
    missing = status_cache.get_many(ids, entries)
    if missing:
        await _statuses_read(state, missing, generation, entries)
    boosted = {o for e in entries.values() if (o := e.status.reblog_of_id) and o not in entries}
    if boosted and (missing := status_cache.get_many(boosted, entries)):
        await _statuses_read(state, missing, generation, entries)
    # What was given but is not (or no longer, or not yet) what the database holds is rendered from the
    # record given, and not kept.
    odd = [s for sid, s in (given or {}).items() if sid not in entries or entries[sid].status != s]
    if odd:
        for s in odd:
            entries.pop(s.id, None)
        extra = {s.id: (-1, s) for s in odd}
        wanted = {o for s in odd if (o := s.reblog_of_id) and o not in entries and o not in extra}
        extra |= await status_store.get_many_versioned(state.db, wanted)
        entries |= await _status_entries(state, extra)
    # One pass over the entries, not one per field: a page goes through here on every request.
    authors: set[int] = set()
    statuses: dict[int, Status] = {}
    parts: dict[int, dict[str, Any]] = {}
    fragments: dict[int, bytes] = {}
    polls: dict[int, Poll] = {}
    reactions: dict[int, Sequence[tuple[str, int]]] = {}
    for sid, e in entries.items():
        statuses[sid] = status = e.status
        authors.add(status.account_id)
        parts[sid] = e.parts
        fragments[sid] = e.fragment
        if e.poll is not None:
            polls[sid] = e.poll
        if e.reactions:
            reactions[sid] = e.reactions
    accounts = await _account_entries(state, authors, generation)
    return StatusBundle(
        statuses=statuses,
        accounts={aid: e.account for aid, e in accounts.items()},
        mentions={}, tags={}, media={}, polls=polls, apps={}, reactions=reactions, parts=parts,
        fragments=fragments, account_fragments={aid: e.rendered for aid, e in accounts.items()})


async def status_bundle(state: State, items: Iterable[Status]) -> StatusBundle:
    """Everything these statuses (and the ones they boost) need that is the same for every viewer."""
    items = list(items)
    return await _page(state, [s.id for s in items], {s.id: s for s in items})


def filter_results(filters: list[ActiveFilter], bundle: StatusBundle, now: str | None = None
                   ) -> dict[int, list[FilterResult]]:
    """status id → the FilterResults of the viewer's filters. A boost is matched on the boosted
    status's text and counts as both ids, as in Mastodon."""
    if not filters:
        return {}
    now = now or now_iso()
    out: dict[int, list[FilterResult]] = {}
    for s in bundle.statuses.values():
        proper = bundle.statuses.get(s.reblog_of_id, s) if s.reblog_of_id else s
        poll = bundle.polls.get(proper.id)
        media = bundle.parts[proper.id]["media_attachments"] if proper.id in bundle.parts else []
        text = filter_rules.searchable(proper.spoiler_text, proper.content, poll.options if poll else [],
                                       [m["description"] for m in media])
        results = filter_rules.match(filters, text, {s.id, proper.id}, now)
        if results:
            out[s.id] = results
    return out


async def viewer_bits(state: State, viewer_id: int, bundle: StatusBundle,
                      viewer: viewers.ViewerState) -> ViewerBits:
    """The viewer's flags, poll votes, reactions and filter verdicts for a bundle, from the viewer's
    state (`viewer`, checked against the version read with the page): no query when the flags of the
    page's statuses are kept, the page has no polls and nothing the viewer reacted to."""
    found = await viewers.flags(state, viewer_id, viewer, list(bundle.statuses))
    flags = ViewerFlags(set(), set(), set(), set())
    reacted_ids = []
    for sid in bundle.statuses:
        bits = found.get(sid, 0)
        if bits:
            if bits & viewer_store.FAVOURITED:
                flags.favourited.add(sid)
            if bits & viewer_store.REBLOGGED:
                flags.reblogged.add(sid)
            if bits & viewer_store.BOOKMARKED:
                flags.bookmarked.add(sid)
            if bits & viewer_store.PINNED:
                flags.pinned.add(sid)
            if bits & viewer_store.REACTED:
                reacted_ids.append(sid)
    votes = await poll_store.own_votes(state.db, viewer_id, [p.id for p in bundle.polls.values()]) if bundle.polls else {}
    reacted: dict[int, set[str]] = {}
    if reacted_ids:
        counts = await reaction_store.counts_for(state.db, reacted_ids, viewer_id)
        reacted = {sid: {name for name, _, me in got if me} for sid, got in counts.items()}
    return ViewerBits(viewer_id=viewer_id, flags=flags, votes=votes, filtered=filter_results(viewer.filters, bundle),
                      reacted=reacted)


async def status_page(state: State, viewer_id: int | None, items: list[Status], cursor_ids: list[int] | None = None,
                      with_source: bool = False, viewer_state: viewers.ViewerState | None = None) -> StatusPage:
    """These statuses ready to render for the viewer. `viewer_state`: the viewer's, as of when the
    statuses were read or newer (None: read now)."""
    bundle = await _page(state, [s.id for s in items], {s.id: s for s in items})
    viewer = None
    if viewer_id is not None and items:
        if viewer_state is None:
            viewer_state = await viewers.at_version(state, viewer_id, None)
        viewer = await viewer_bits(state, viewer_id, bundle, viewer_state)
    return StatusPage(items=items, bundle=bundle, viewer=viewer,
                      cursor_ids=cursor_ids if cursor_ids is not None else [s.id for s in items],
                      with_source=with_source)


async def statuses_by_ids(state: State, viewer_id: int | None, ids: list[int],
                          cursor_ids: list[int] | None = None,
                          viewer_state: viewers.ViewerState | None = None) -> StatusPage:
    """The statuses with these ids that still exist, in this order; paging follows `cursor_ids`
    (by default these ids, whether or not they were found). `viewer_state`: the viewer's, checked
    by the caller against the version read with the ids (None: read now)."""
    bundle = await _page(state, ids)
    items = [bundle.statuses[i] for i in ids if i in bundle.statuses]
    viewer = None
    if viewer_id is not None and items:
        if viewer_state is None:
            viewer_state = await viewers.at_version(state, viewer_id, None)
        viewer = await viewer_bits(state, viewer_id, bundle, viewer_state)
    return StatusPage(items=items, bundle=bundle, viewer=viewer, cursor_ids=cursor_ids if cursor_ids is not None else ids)


async def statuses_read_with(state: State, viewer_id: int, ids: list[int], viewer_state: viewers.ViewerState,
                             version: int | None = None) -> StatusPage | None:
    """`statuses_by_ids` for ids a query read leaving out the accounts `viewer_state` hides: None when
    the viewer's version, read with the ids (`version`) or else after them (versions only grow: the
    same one then means the same state when the ids were read), says that state was not the current one."""
    if version is None:
        version = await viewer_store.version(state.db, viewer_id)
    if version != viewer_state.version:
        return None
    bundle = await _page(state, ids)
    items = [bundle.statuses[i] for i in ids if i in bundle.statuses]
    viewer = await viewer_bits(state, viewer_id, bundle, viewer_state) if items else None
    return StatusPage(items=items, bundle=bundle, viewer=viewer, cursor_ids=ids)


def hidden(page: StatusPage, status_id: int, context: str) -> bool:
    return page.viewer is not None and filter_rules.hides(page.viewer.filtered.get(status_id), context)


def without_hidden(page: StatusPage, context: str) -> StatusPage:
    """The page without the statuses the viewer's `hide` filters remove in this context; paging still
    follows the unfiltered ids."""
    if page.viewer is None or not page.viewer.filtered:
        return page
    return StatusPage(items=[s for s in page.items if not hidden(page, s.id, context)], bundle=page.bundle,
                      viewer=page.viewer, cursor_ids=page.cursor_ids, with_source=page.with_source)


async def notification_page(state: State, viewer_id: int, notes: list[Notification],
                            drop_hidden: bool = True) -> NotificationPage:
    """Notifications with their statuses, accounts and reports; with `drop_hidden`, those about a status
    the viewer's `hide` filters remove from notifications are left out."""
    found = await status_store.get_many(state.db, [n.status_id for n in notes if n.status_id])
    statuses = await status_page(state, viewer_id, list(found.values()))
    links = await report_store.for_notifications(state.db, [n.id for n in notes if n.type == "admin.report"])
    reports = await report_store.get_many(state.db, links.values())
    accounts = await account_store.get_many(
        state.db, {n.from_account_id for n in notes} | {r.target_account_id for r in reports.values()})
    items = notes
    if drop_hidden:
        items = [n for n in notes if not (n.status_id and n.status_id in found
                                          and hidden(statuses, n.status_id, "notifications"))]
    return NotificationPage(items=items, statuses=statuses, accounts=accounts,
                            reports={n: reports[r] for n, r in links.items() if r in reports},
                            cursor_ids=[n.id for n in notes])


async def conversation_page(state: State, viewer_id: int, items: list[Conversation]) -> ConversationPage:
    found = await status_store.get_many(state.db, [c.last_status_id for c in items])
    live = [s for s in found.values() if s.deleted_at is None]
    statuses = await status_page(state, viewer_id, live)
    people = {p for c in items for p in (c.participant_ids or [viewer_id])}
    accounts: dict[int, Account] = await account_store.get_many(state.db, people)
    return ConversationPage(viewer_id=viewer_id, items=items, statuses=statuses, accounts=accounts)


async def scheduled_page(state: State, items: list[ScheduledStatus]) -> ScheduledPage:
    """Scheduled statuses with the attachments they will post: one query per account (a page holds
    one account's)."""
    wanted: dict[int, list[int]] = {}
    by_item: dict[int, list[int]] = {}
    for item in items:
        media_ids = [m for m in msgspec.json.decode(item.params).get("media_ids") or [] if isinstance(m, int)]
        by_item[item.id] = media_ids
        wanted.setdefault(item.account_id, []).extend(media_ids)
    rows: dict[tuple[int, int], Row] = {}
    for account_id, media_ids in wanted.items():
        for row in await scheduled_store.media_rows(state.db, account_id, list(dict.fromkeys(media_ids))):
            rows[(account_id, row["id"])] = row
    return ScheduledPage(items=items, media={
        item.id: [rows[(item.account_id, m)] for m in by_item[item.id] if (item.account_id, m) in rows]
        for item in items})


async def accounts(state: State, ids: list[int]) -> list[Account]:
    """The accounts with these ids that exist, in this order."""
    found = await account_store.get_many(state.db, ids)
    return [found[i] for i in ids if i in found]
