"""What a viewer's own state adds to every page they read: the accounts hidden from them, their active
filters, and their flags on statuses (favourited, boosted, bookmarked, pinned, reacted).

A process keeps it per viewer (bounded, `caches.VIEWER_STATES`) with the viewer's version. Triggers
advance the version in the database with every change to that state, whoever writes it (schema 0038),
and each page's query reads the version with the page: a kept state is used only when its version is
the one read, so no process serves a stale one and nothing has to be told to forget. Timed mutes and
filters end without a write; a kept state ends with the first of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from server.caches import VIEWER_STATES
from server.domain.filters import ActiveFilter
from server.ids import now_iso, parse_iso
from server.services import filters as filter_service  # a module import: filters → statuses → loaders → here
from server.state import State
from server.storage import relations
from server.storage import streaming as streaming_store
from server.storage import viewers as store

# Flags kept per viewer: about two pages' statuses and the ones they boost. A viewer reading further
# starts over (the flags of older pages are read again when asked for).
FLAGS_KEPT = 96
# A viewer with at most this many flags (favourites, boosts, bookmarks, pins, reactions) has them all
# kept, read with the rest of their state: their pages then read no flags at all, whatever statuses
# they show (a profile, a thread, an older page). Beyond it, the flags of the last pages are kept.
EVERY_FLAG_KEPT = 256


@dataclass(slots=True)
class ViewerState:
    version: int
    hidden: frozenset[int]
    filters: list[ActiveFilter]
    ends_at: float | None  # when the first timed mute or filter ends (time.time()), if any
    flags: dict[int, int] = field(default_factory=dict)  # status id → storage.viewers flag bits, read at `version`
    every_flag: bool = False  # `flags` holds all the viewer's flags (absent: none), not just recent pages'
    blocked: frozenset[int] = frozenset()  # of `hidden`, the accounts a block stands between (either way)

    @property
    def size(self) -> int:
        """Bytes held, roughly, with the flags at their bound."""
        flags = len(self.flags) if self.every_flag else FLAGS_KEPT
        return 400 + 40 * (len(self.hidden) + len(self.blocked)) + 3000 * len(self.filters) + 70 * flags


async def _load(state: State, viewer_id: int) -> ViewerState:
    db = state.db
    # The version first: what is read after it is at least as new, so a change in between shows as a
    # newer version at the next page and the state is read again.
    version = await store.version(db, viewer_id)
    hidden, blocked = await relations.hidden_and_blocked(db, viewer_id)
    first_mute_end = await streaming_store.next_mute_expiry(db, viewer_id, now_iso())
    filters = await filter_service.active_filters(db, viewer_id)
    every_flag = await store.every_flag(db, viewer_id, EVERY_FLAG_KEPT)
    ends = [e for e in (first_mute_end, *(f.expires_at for f in filters)) if e]
    found = ViewerState(version=version, hidden=frozenset(hidden), filters=filters,
                        ends_at=min(parse_iso(e).timestamp() for e in ends) if ends else None,
                        flags=every_flag or {}, every_flag=every_flag is not None, blocked=frozenset(blocked))
    state.caches.get(VIEWER_STATES).put(viewer_id, found)
    return found


def _kept(state: State, viewer_id: int) -> ViewerState | None:
    found: ViewerState | None = state.caches.get(VIEWER_STATES).get(viewer_id)
    if found is not None and found.ends_at is not None and found.ends_at <= time.time():
        return None
    return found


async def kept_or_read(state: State, viewer_id: int) -> ViewerState:
    """The kept state, unchecked (the caller checks it against the version its page reads), or the
    current one read now."""
    return _kept(state, viewer_id) or await _load(state, viewer_id)


async def at_version(state: State, viewer_id: int, version: int | None) -> ViewerState:
    """The viewer's state as of `version` (read with a page; None: read it now) or newer."""
    if version is None:
        version = await store.version(state.db, viewer_id)
    found = _kept(state, viewer_id)
    if found is None or found.version != version:
        found = await _load(state, viewer_id)
    return found


async def flags(state: State, viewer_id: int, viewer: ViewerState, status_ids: list[int]) -> dict[int, int]:
    """The viewer's flags on these statuses (absent: none), kept ones and the others read, and kept
    when the viewer's version has not moved since `viewer` was read."""
    kept = viewer.flags
    if viewer.every_flag:
        return kept
    missing = [sid for sid in status_ids if sid not in kept]
    if not missing:
        return kept
    version, found = await store.flags(state.db, viewer_id, missing)
    if version != viewer.version:
        # The viewer changed something meanwhile: these flags are newer than the kept ones. Read them
        # all at one version; the state is read again at the next page.
        state.caches.get(VIEWER_STATES).invalidate(viewer_id)
        return (await store.flags(state.db, viewer_id, status_ids))[1]
    if len(kept) + len(missing) > FLAGS_KEPT:
        if len(status_ids) > FLAGS_KEPT:  # a page larger than what is kept (a long thread, say)
            return {**{sid: kept[sid] for sid in status_ids if sid in kept}, **found}
        viewer.flags = kept = {sid: kept[sid] for sid in status_ids if sid in kept}
    for sid in missing:
        kept[sid] = found.get(sid, 0)
    return kept
