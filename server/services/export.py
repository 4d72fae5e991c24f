"""A user's data as an ActivityStreams archive, shaped like Mastodon's "Request your archive" zip:

    actor.json               the profile (Person actor document)
    outbox.json              OrderedCollection of Create (posts) and Announce (boosts) activities
    likes.json               OrderedCollection of the URIs of favourited posts
    bookmarks.json           OrderedCollection of the URIs of bookmarked posts
    followers.json           OrderedCollection of the URIs of followers
    following_accounts.csv   the accounts followed, in Mastodon's import format
    media/...                the user's uploaded files, at the path of their URL (/media/...)
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from federation import documents as docs
from server.render import activitypub as ap
from server.services.errors import NotFound
from server.services.federation import serving
from server.state import State
from server.storage import accounts as account_store
from server.storage import export as export_store
from server.storage import statuses as status_store

BATCH = 200


async def _activities(state: State, account_id: int) -> list[dict[str, Any]]:
    ids = await export_store.authored_status_ids(state.db, account_id)
    author = await account_store.get(state.db, account_id)
    assert author is not None
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        statuses = await status_store.get_many(state.db, chunk)
        originals = await status_store.get_many(state.db, [s.reblog_of_id for s in statuses.values() if s.reblog_of_id])
        original_authors = await account_store.get_many(state.db, [s.account_id for s in originals.values()])
        parts = await serving.note_parts(state, [s for s in statuses.values() if s.reblog_of_id is None])
        for status_id in chunk:
            status = statuses[status_id]
            if status.reblog_of_id is not None:
                original = originals.get(status.reblog_of_id)
                if original is None or original.account_id not in original_authors:
                    continue
                out.append(ap.announce_activity(status, author, original, original_authors[original.account_id]))
            else:
                out.append(ap.create_activity(ap.note_document(state.base_url, state.domain, status, parts[status.id])))
    return out


def _collection(id: str, items: list[Any]) -> dict[str, Any]:
    return docs.ordered_collection(id, len(items), items=items)


async def export_user(state: State, username: str, output: Path) -> dict[str, int]:
    """Write the archive of local user `username` to `output` (a .zip); returns counts."""
    account = await account_store.by_username(state.db, username, "")
    if account is None:
        raise NotFound(f"there is no local user {username!r}")
    actor = ap.actor_document(state.base_url, account, account.public_key_pem)
    if not account.public_key_pem:
        actor.pop("publicKey")  # keys are made on first federation; the archive needs none
    activities = await _activities(state, account.id)
    following = await export_store.following(state.db, account.id)
    followers = await export_store.follower_uris(state.db, account.id)
    likes = await export_store.favourited_uris(state.db, account.id)
    bookmarks = await export_store.bookmarked_uris(state.db, account.id)
    media = await export_store.media_files(state.db, account.id)

    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["Account address", "Show boosts", "Notify on new posts", "Languages"])
    for row in following:
        address = f"{row['username']}@{row['domain'] or state.domain}"
        writer.writerow([address, "true" if row["show_reblogs"] else "false", "true" if row["notify"] else "false", ""])

    documents = {
        "actor.json": actor,
        "outbox.json": _collection(actor["outbox"], activities),
        "likes.json": _collection("likes.json", likes),
        "bookmarks.json": _collection("bookmarks.json", bookmarks),
        "followers.json": _collection(actor["followers"], followers),
    }
    contents = {rel: data for rel in media if (data := await state.files.read(rel)) is not None}

    def write() -> int:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        stored = 0
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, doc in documents.items():
                archive.writestr(name, json.dumps(doc, indent=2, ensure_ascii=False))
            archive.writestr("following_accounts.csv", rows.getvalue())
            for rel, data in contents.items():  # stored as they are: images are compressed already
                archive.writestr(f"media/{rel}", data, compress_type=zipfile.ZIP_STORED)
                stored += 1
        partial.replace(output)
        return stored

    stored = await asyncio.to_thread(write)
    return {"activities": len(activities), "following": len(following), "followers": len(followers),
            "likes": len(likes), "bookmarks": len(bookmarks), "media": stored}
