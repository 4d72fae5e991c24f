"""Thread backfill: opening a remote thread fetches the conversation from the root's origin, so
replies we were never sent show up."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from federation import models as ap
from server.domain.records import Status
from server.services.federation import notes
from server.services.federation.client import BACKFILL_COOLDOWN, RemoteError
from server.state import State
from server.storage import statuses as status_store

log = logging.getLogger("crosstalk.federation")
BACKFILL_PAGES = 5
BACKFILL_ITEMS = 200


async def backfill_thread(state: State, status: Status, root: Status | None = None, budget: float = 4.0) -> bool:
    """Opening a thread: fetch the conversation from the root's origin (FEP-7888 `context`, else the
    `replies` collection) so replies we were never sent show up. At most once per 15 minutes a thread.
    Does nothing in a process that does not federate (admin commands). `root`: the thread's root if
    the caller has read it. True when a fetch was made (the thread may have grown)."""
    remote = getattr(state, "remote", None)
    if remote is None:
        return False
    if root is None:
        root = status
        if status.thread_id and status.thread_id != status.id:
            root = await status_store.get(state.db, status.thread_id) or status
    if root.local:
        return False
    now = time.monotonic()
    if remote.backfilled.get(root.id, 0) > now:
        return False
    remote.backfilled[root.id] = now + BACKFILL_COOLDOWN
    try:
        await asyncio.wait_for(_backfill(state, root), budget)
    except (TimeoutError, RemoteError) as exc:
        log.info("thread backfill of %s stopped: %s", root.uri, exc)
    return True


async def _backfill(state: State, root: Status) -> None:
    fetch = state.remote.fetch
    doc = await fetch(root.uri)
    collection = ap.id_of(doc.get("context")) or ap.id_of(doc.get("replies"))
    if isinstance(doc.get("replies"), dict) and not ap.id_of(doc.get("context")):
        collection_doc: dict[str, Any] | None = doc["replies"]
    else:
        collection_doc = await fetch(collection) if collection and ap.same_host(collection, root.uri) else None
    seen = 0
    pages = 0
    while collection_doc is not None and pages < BACKFILL_PAGES and seen < BACKFILL_ITEMS:
        pages += 1
        page = collection_doc.get("first", collection_doc) if "orderedItems" not in collection_doc and "items" not in collection_doc else collection_doc
        if isinstance(page, str):
            page = await fetch(page)
        if not isinstance(page, dict):
            return
        for item in ap.as_list(page.get("orderedItems") or page.get("items"))[:BACKFILL_ITEMS]:
            uri = ap.id_of(item)
            if not uri or uri == root.uri:
                continue
            seen += 1
            # Items embedded by the root's server are its word for its own posts only: replies from
            # other servers are fetched from their origin.
            if (isinstance(item, dict) and ap.first_str(item.get("type")) in ap.POST_TYPES
                    and ap.same_host(uri, root.uri)):
                try:
                    await notes.note(state, item, source=ap.host_of(root.uri))
                    continue
                except RemoteError:
                    pass
            await notes.status_by_uri(state, uri)
        next_page = ap.id_of(page.get("next"))
        collection_doc = await fetch(next_page) if next_page and ap.same_host(next_page, root.uri) else None
