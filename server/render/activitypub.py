"""Local records → ActivityStreams documents (actors, notes, activities), via federation.documents.
Pure: what a document needs is loaded beforehand (server/services/federation/serving.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from federation import documents as docs
from federation.addressing import address_for_visibility
from federation.models import AS_PUBLIC
from server.domain.records import Account, Poll, Status
from server.render.mastodon import DEFAULT_AVATAR, DEFAULT_HEADER

REPLIES_PAGE = 20


class NoteParts(msgspec.Struct, kw_only=True):
    """What a note document shows besides the status itself."""

    author: Account
    mentioned: list[Account]
    parent_uri: str | None
    tags: list[str]
    media: list[Any]  # media_attachments rows, in position order
    poll: Poll | None
    replies: list[Status]  # its first public replies, up to REPLIES_PAGE + 1 (one more says "there is a next page")


def _absolute(base_url: str, url: str) -> str:
    return url if url.startswith(("http://", "https://")) else base_url + url


def _media_type(url: str) -> str:
    lower = url.lower()
    for ext, kind in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp")):
        if lower.endswith(ext):
            return kind
    return "image/jpeg"


def actor_document(base_url: str, account: Account, public_key_pem: str) -> dict[str, Any]:
    fields = [(f[0], f[1]) for f in msgspec.json.decode(account.fields or "[]")]
    avatar = _absolute(base_url, account.avatar_url or DEFAULT_AVATAR)
    header = _absolute(base_url, account.header_url or DEFAULT_HEADER)
    return docs.person_actor(
        id=account.uri, username=account.username, display_name=account.display_name, summary_html=account.note,
        inbox=account.inbox_url, outbox=account.outbox_url or f"{account.uri}/outbox",
        followers=account.followers_url or f"{account.uri}/followers",
        following=account.following_url or f"{account.uri}/following",
        featured=account.featured_url or f"{account.uri}/collections/featured",
        shared_inbox=f"{base_url}/inbox", public_key_pem=public_key_pem, url=account.url,
        published=account.created_at, manually_approves_followers=bool(account.locked),
        discoverable=bool(account.discoverable), indexable=bool(account.discoverable),
        icon_url=avatar, icon_media_type=_media_type(avatar), image_url=header, image_media_type=_media_type(header),
        fields=fields, actor_type=account.actor_type if account.actor_type in ("Person", "Application", "Service", "Group") else "Person",  # type: ignore[arg-type]
        key_id=account.key_id or f"{account.uri}#main-key")


def instance_actor_page(base_url: str) -> str:
    """The page that shows the instance actor: the instance's home page."""
    return f"{base_url}/"


def instance_actor_document(base_url: str, domain: str, account: Account) -> dict[str, Any]:
    """The instance actor (`/actor`), which signs our fetches: named so that WebFinger finds it as
    peers ask (`acct:<name>@<domain>`), and advertising only what it serves: its inbox and an outbox
    that stays empty."""
    doc = actor_document(base_url, account, account.public_key_pem)
    doc["preferredUsername"] = docs.instance_actor_username(domain)
    doc["manuallyApprovesFollowers"] = True
    doc["outbox"] = f"{account.uri}/outbox"
    doc["url"] = instance_actor_page(base_url)
    for key in ("followers", "following", "featured"):
        del doc[key]
    return doc


def context_url(base_url: str, status: Status) -> str:
    return f"{base_url}/contexts/{status.thread_id or status.id}"


def note_document(base_url: str, domain: str, status: Status, parts: NoteParts) -> dict[str, Any]:
    author = parts.author
    mentions = [docs.Mention(href=a.uri, name=f"@{a.username}@{a.domain or domain}") for a in parts.mentioned]
    to, cc = address_for_visibility(status.visibility, author.followers_url or f"{author.uri}/followers",
                                    [a.uri for a in parts.mentioned])
    attachments = []
    for row in parts.media:
        url = f"{base_url}/media/{row['file_path']}" if row["file_path"] else row["remote_url"]
        if not url:
            continue
        focus = (row["focus_x"], row["focus_y"]) if (row["focus_x"] or row["focus_y"]) else None
        attachments.append(docs.Attachment(url=url, media_type=row["mime_type"] or _media_type(url),
                                           name=row["description"], blurhash=row["blurhash"], focal_point=focus))
    note = docs.note_object(
        id=status.uri, url=status.url, attributed_to=author.uri, to=to, cc=cc, content=status.content,
        published=status.created_at, in_reply_to=parts.parent_uri, language=status.language,
        summary=status.spoiler_text or None, sensitive=bool(status.sensitive), updated=status.edited_at,
        mentions=mentions, hashtags=[docs.Hashtag(name=t, href=f"{base_url}/tags/{t.lower()}") for t in parts.tags],
        attachments=attachments, replies=replies_collection(status, parts.replies)[0],
        context=context_url(base_url, status))
    poll = parts.poll
    if poll is not None:  # a poll travels as a Question (Mastodon's shape)
        note["type"] = "Question"
        note["anyOf" if poll.multiple else "oneOf"] = [
            {"type": "Note", "name": option, "replies": {"type": "Collection", "totalItems": count}}
            for option, count in zip(poll.options, poll.tallies, strict=False)]
        if poll.expires_at:
            note["endTime"] = poll.expires_at
        note["votersCount"] = poll.voters_count
    return note


def replies_collection(status: Status, replies: list[Status],
                       min_id: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(collection, page) of a post's public replies; `replies` are those after `min_id`, up to
    REPLIES_PAGE + 1. The collection embeds its first page, the only place GoToSocial (and Mastodon,
    for a first look) reads replies."""
    collection_id = f"{status.uri}/replies"
    page_id = f"{collection_id}?min_id={min_id}" if min_id is not None else f"{collection_id}?page=true"
    next_url = f"{collection_id}?min_id={replies[REPLIES_PAGE - 1].id}" if len(replies) > REPLIES_PAGE else None
    page = docs.ordered_collection_page(page_id, collection_id, [r.uri for r in replies[:REPLIES_PAGE]], next=next_url)
    return docs.ordered_collection(collection_id, status.replies_count, first=page), page


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
