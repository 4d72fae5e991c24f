"""Local records → ActivityStreams documents (actors, notes, activities), via federation.documents."""

from __future__ import annotations

from typing import Any

import msgspec

from federation import documents as docs
from federation.addressing import address_for_visibility
from federation.models import AS_PUBLIC
from server.records import Account, Status
from server.render.mastodon import DEFAULT_AVATAR, DEFAULT_HEADER
from server.state import State
from server.storage import accounts as account_store
from server.storage import polls as poll_store
from server.storage import statuses as status_store


def _absolute(state: State, url: str) -> str:
    return url if url.startswith(("http://", "https://")) else state.base_url + url


def _media_type(url: str) -> str:
    lower = url.lower()
    for ext, kind in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp")):
        if lower.endswith(ext):
            return kind
    return "image/jpeg"


def actor_document(state: State, account: Account, public_key_pem: str) -> dict[str, Any]:
    fields = [(f[0], f[1]) for f in msgspec.json.decode(account.fields or "[]")]
    avatar = _absolute(state, account.avatar_url or DEFAULT_AVATAR)
    header = _absolute(state, account.header_url or DEFAULT_HEADER)
    return docs.person_actor(
        id=account.uri, username=account.username, display_name=account.display_name, summary_html=account.note,
        inbox=account.inbox_url, outbox=account.outbox_url or f"{account.uri}/outbox",
        followers=account.followers_url or f"{account.uri}/followers",
        following=account.following_url or f"{account.uri}/following",
        featured=account.featured_url or f"{account.uri}/collections/featured",
        shared_inbox=f"{state.base_url}/inbox", public_key_pem=public_key_pem, url=account.url,
        published=account.created_at, manually_approves_followers=bool(account.locked),
        discoverable=bool(account.discoverable), indexable=bool(account.discoverable),
        icon_url=avatar, icon_media_type=_media_type(avatar), image_url=header, image_media_type=_media_type(header),
        fields=fields, actor_type=account.actor_type if account.actor_type in ("Person", "Application", "Service", "Group") else "Person",  # type: ignore[arg-type]
        key_id=account.key_id or f"{account.uri}#main-key")


def context_url(state: State, status: Status) -> str:
    return f"{state.base_url}/contexts/{status.thread_id or status.id}"


async def note_document(state: State, status: Status) -> dict[str, Any]:
    author = await account_store.get(state.db, status.account_id)
    assert author is not None
    mentioned = await account_store.get_many(state.db, await status_store.mentioned_ids(state.db, status.id))
    mentions = [docs.Mention(href=a.uri, name=f"@{a.username}@{a.domain or state.domain}") for a in mentioned.values()]
    to, cc = address_for_visibility(status.visibility, author.followers_url or f"{author.uri}/followers",
                                    [a.uri for a in mentioned.values()])
    parent_uri = None
    if status.in_reply_to_id is not None:
        parent = await status_store.get(state.db, status.in_reply_to_id)
        parent_uri = parent.uri if parent else None
    tags = (await status_store.tags_for(state.db, [status.id])).get(status.id, [])
    media_rows = await status_store.media_rows(state.db, status.id)
    attachments = []
    for row in media_rows:
        url = f"{state.base_url}/media/{row['file_path']}" if row["file_path"] else row["remote_url"]
        if not url:
            continue
        focus = (row["focus_x"], row["focus_y"]) if (row["focus_x"] or row["focus_y"]) else None
        attachments.append(docs.Attachment(url=url, media_type=row["mime_type"] or _media_type(url),
                                           name=row["description"], blurhash=row["blurhash"], focal_point=focus))
    note = docs.note_object(
        id=status.uri, url=status.url, attributed_to=author.uri, to=to, cc=cc, content=status.content,
        published=status.created_at, in_reply_to=parent_uri, language=status.language,
        summary=status.spoiler_text or None, sensitive=bool(status.sensitive), updated=status.edited_at,
        mentions=mentions, hashtags=[docs.Hashtag(name=t, href=f"{state.base_url}/tags/{t.lower()}") for t in tags],
        attachments=attachments, replies=f"{status.uri}/replies", context=context_url(state, status))
    poll = (await poll_store.for_statuses(state.db, [status.id])).get(status.id)
    if poll is not None:  # a poll travels as a Question (Mastodon's shape)
        note["type"] = "Question"
        note["anyOf" if poll.multiple else "oneOf"] = [
            {"type": "Note", "name": option, "replies": {"type": "Collection", "totalItems": count}}
            for option, count in zip(poll.options, poll.tallies, strict=False)]
        if poll.expires_at:
            note["endTime"] = poll.expires_at
        note["votersCount"] = poll.voters_count
    return note


def activity_id(thing_uri: str, kind: str, stamp: int | str | None = None) -> str:
    return f"{thing_uri}#{kind}" + (f"/{stamp}" if stamp is not None else "")


def create_activity(note: dict[str, Any], kind: str = "Create", stamp: int | str | None = None) -> dict[str, Any]:
    return docs.activity(kind, activity_id(note["id"], kind.lower(), stamp), note["attributedTo"], note,
                         to=note["to"], cc=note["cc"], published=note.get("updated") or note["published"])


def delete_activity(status: Status, author: Account, to: list[str], cc: list[str]) -> dict[str, Any]:
    return docs.activity("Delete", activity_id(status.uri, "delete"), author.uri, docs.tombstone(status.uri),
                         to=to, cc=cc)


def announce_activity(boost: Status, booster: Account, original: Status, original_author: Account) -> dict[str, Any]:
    followers = booster.followers_url or f"{booster.uri}/followers"
    if boost.visibility == "private":
        to, cc = [followers], [original_author.uri]
    else:
        to, cc = [AS_PUBLIC], [original_author.uri, followers]
    return docs.activity("Announce", boost.uri, booster.uri, original.uri, to=to, cc=cc, published=boost.created_at)


def undo(actor_uri: str, inner: dict[str, Any], stamp: str) -> dict[str, Any]:
    return docs.activity("Undo", f"{inner['id']}/undo/{stamp}", actor_uri, inner,
                         to=inner.get("to"), cc=inner.get("cc"))
