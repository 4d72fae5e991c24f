"""Builders for the documents we serve: WebFinger, host-meta, NodeInfo, actors, notes,
activities and collections.  All return plain dicts (or a string for XRD), ready for
`msgspec.json.encode`.  Arrays stay arrays (to, cc, tag, attachment) and Public is
always written as the full IRI: that is the shape every peer reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import quoteattr

import msgspec

from federation.models import ACTIVITY_CONTEXT, ACTOR_CONTEXT, AS_CONTEXT, host_of

__all__ = [
    "ACTIVITY_JSON",
    "JRD_JSON",
    "Attachment",
    "Hashtag",
    "Mention",
    "activity",
    "format_datetime",
    "host_meta_xrd",
    "instance_actor_username",
    "nodeinfo",
    "nodeinfo_links",
    "note_object",
    "ordered_collection",
    "ordered_collection_page",
    "parse_webfinger_resource",
    "person_actor",
    "tombstone",
    "webfinger_jrd",
]

ACTIVITY_JSON = "application/activity+json"
JRD_JSON = "application/jrd+json"
_NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/"

Timestamp = datetime | float | int | str


def format_datetime(value: Timestamp) -> str:
    """ISO 8601 in UTC with a `Z` and whole seconds, as Mastodon writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- discovery


def webfinger_jrd(
    acct_user: str, domain: str, actor_url: str, profile_url: str, *, subscribe_template: str | None = None
) -> dict[str, Any]:
    """JRD for `acct:user@domain` (serve as application/jrd+json with CORS *)."""
    if subscribe_template is None:
        p = urlsplit(actor_url)
        subscribe_template = f"{p.scheme}://{p.netloc}/authorize_interaction?uri={{uri}}"
    return {
        "subject": f"acct:{acct_user}@{domain}",
        "aliases": list(dict.fromkeys([profile_url, actor_url])),
        "links": [
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": profile_url},
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor_url},
            {"rel": "http://ostatus.org/schema/1.0/subscribe", "template": subscribe_template},
        ],
    }


def instance_actor_username(domain: str) -> str:
    """The preferredUsername of the instance actor: the domain, as Mastodon names it (peers look it up
    as `acct:<domain>@<domain>`), with any character a username cannot hold, such as the ':' before a
    port, turned into '.'. GoToSocial and Mastodon accept letters, digits, '.', '-' and '_' in a remote
    username and never ':', so an instance on `host:8080` is `host.8080`; the '.' also keeps it apart
    from every local username, which has none."""
    return re.sub(r"[^A-Za-z0-9._-]+", ".", domain.lower()).strip(".") or "instance"


def parse_webfinger_resource(
    resource: str, domain: str, *, web_domain: str | None = None
) -> tuple[str, str] | None:
    """Classify a WebFinger `resource` query value.

    Returns ("acct", username) for acct:u@h / u@h / @u@h on our domain, ("url", url)
    for an http(s) URL on our host (actor or profile URL: the server maps it), and
    None for a well-formed resource that isn't ours (→ 404).  Raises ValueError for a
    malformed one (→ 400).  `web_domain` is the host serving pages when it differs
    from the account domain (Mastodon's WEB_DOMAIN).
    """
    ours = {domain.lower()} | ({web_domain.lower()} if web_domain else set())
    r = resource.strip()
    if not r or len(r) > 2048 or any(c.isspace() for c in r):
        raise ValueError("malformed resource")
    if r.startswith(("https://", "http://")):
        host = host_of(r)
        if not host:
            raise ValueError("malformed resource URL")
        return ("url", r) if host in ours else None
    if r.lower().startswith("acct:"):
        r = unquote(r[5:])  # some clients percent-encode the @
    r = r.removeprefix("@")
    user, sep, host = r.rpartition("@")
    if not sep or not user or not host or "@" in user or "/" in host:
        raise ValueError("malformed acct resource")
    if ":" in user and user.lower() != host.lower():  # only `acct:host:port@host:port` (instance actor) has one
        raise ValueError("malformed acct resource")
    return ("acct", user) if host.lower() in ours else None


def host_meta_xrd(base_url: str) -> str:
    """/.well-known/host-meta (application/xrd+xml) with the lrdd template."""
    template = base_url.rstrip("/") + "/.well-known/webfinger?resource={uri}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template={quoteattr(template)}/>\n'
        "</XRD>\n"
    )


def nodeinfo_links(base_url: str) -> dict[str, Any]:
    """/.well-known/nodeinfo: points at /nodeinfo/2.0 and /nodeinfo/2.1 under base_url."""
    base = base_url.rstrip("/")
    return {
        "links": [
            {"rel": _NODEINFO_SCHEMA + "2.0", "href": f"{base}/nodeinfo/2.0"},
            {"rel": _NODEINFO_SCHEMA + "2.1", "href": f"{base}/nodeinfo/2.1"},
        ]
    }


def nodeinfo(
    version: Literal["2.0", "2.1"],
    software_version: str,
    users_total: int,
    users_active_month: int,
    users_active_halfyear: int,
    local_posts: int,
    open_registrations: bool,
    metadata: Mapping[str, Any],
    *,
    repository: str | None = None,
    homepage: str | None = None,
) -> dict[str, Any]:
    """The NodeInfo document; serve with profile=".../schema/<version>#"."""
    if version not in ("2.0", "2.1"):
        raise ValueError("nodeinfo version must be 2.0 or 2.1")
    software: dict[str, Any] = {"name": "crosstalk", "version": software_version}
    if version == "2.1":
        if repository:
            software["repository"] = repository
        if homepage:
            software["homepage"] = homepage
    return {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"outbound": [], "inbound": []},
        "usage": {
            "users": {
                "total": users_total,
                "activeMonth": users_active_month,
                "activeHalfyear": users_active_halfyear,
            },
            "localPosts": local_posts,
        },
        "openRegistrations": open_registrations,
        "metadata": dict(metadata),
    }


# --------------------------------------------------------------------------- actors


def _image(url: str | None, media_type: str | None) -> dict[str, Any] | None:
    if not url:
        return None
    img: dict[str, Any] = {"type": "Image", "url": url}
    if media_type:
        img["mediaType"] = media_type
    return img


def person_actor(
    *,
    id: str,
    username: str,
    display_name: str,
    summary_html: str,
    inbox: str,
    outbox: str,
    followers: str,
    following: str,
    featured: str,
    shared_inbox: str | None,
    public_key_pem: str,
    url: str,
    published: Timestamp,
    manually_approves_followers: bool = False,
    discoverable: bool = False,
    indexable: bool = False,
    icon_url: str | None = None,
    icon_media_type: str | None = None,
    image_url: str | None = None,
    image_media_type: str | None = None,
    fields: Sequence[tuple[str, str]] = (),
    actor_type: Literal["Person", "Application", "Service", "Group"] = "Person",
    key_id: str | None = None,
    featured_tags: str | None = None,
    also_known_as: Sequence[str] = (),
    moved_to: str | None = None,
    memorial: bool = False,
) -> dict[str, Any]:
    """An actor document shaped like Mastodon's actor_serializer.

    `fields` are (name, value_html) profile fields, emitted as PropertyValue
    attachments.  The key id defaults to `{id}#main-key`.
    """
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": id,
        "type": actor_type,
        "following": following,
        "followers": followers,
        "inbox": inbox,
        "outbox": outbox,
        "featured": featured,
        "preferredUsername": username,
        "name": display_name,
        "summary": summary_html,
        "url": url,
        "manuallyApprovesFollowers": manually_approves_followers,
        "discoverable": discoverable,
        "indexable": indexable,
        "published": format_datetime(published),
        "publicKey": {"id": key_id or f"{id}#main-key", "owner": id, "publicKeyPem": public_key_pem},
        "tag": [],
        "attachment": [{"type": "PropertyValue", "name": n, "value": v} for n, v in fields],
        "endpoints": {"sharedInbox": shared_inbox} if shared_inbox else {},
    }
    if featured_tags:
        doc["featuredTags"] = featured_tags
    if memorial:
        doc["memorial"] = True
    if also_known_as:
        doc["alsoKnownAs"] = list(also_known_as)
    if moved_to:
        doc["movedTo"] = moved_to
    if icon := _image(icon_url, icon_media_type):
        doc["icon"] = icon
    if image := _image(image_url, image_media_type):
        doc["image"] = image
    return doc


# --------------------------------------------------------------------------- notes


class Mention(msgspec.Struct):
    href: str  # actor id
    name: str  # "@user@host"


class Hashtag(msgspec.Struct):
    name: str  # with or without the leading "#"
    href: str  # our tag page


class Attachment(msgspec.Struct, kw_only=True):
    url: str
    media_type: str
    name: str | None = None  # alt text
    blurhash: str | None = None
    focal_point: tuple[float, float] | None = None
    width: int | None = None
    height: int | None = None


def note_object(
    *,
    id: str,
    url: str,
    attributed_to: str,
    to: Sequence[str],
    cc: Sequence[str],
    content: str,
    published: Timestamp,
    in_reply_to: str | None = None,
    language: str | None = None,
    summary: str | None = None,
    sensitive: bool = False,
    updated: Timestamp | None = None,
    mentions: Sequence[Mention] = (),
    hashtags: Sequence[Hashtag] = (),
    attachments: Sequence[Attachment] = (),
    replies: str | dict[str, Any] | None = None,
    context: str | None = None,
) -> dict[str, Any]:
    """A Note shaped like Mastodon's note_serializer (content is our sanitised HTML).

    `to`/`cc` go on the Note itself: Mastodon reads the object's addressing first.
    `updated` only for edited posts; `context` is a collection id, `replies` a collection id or the
    collection itself (embedding its first page, as Mastodon and GoToSocial expect).
    """
    doc: dict[str, Any] = {
        "@context": ACTIVITY_CONTEXT,
        "id": id,
        "type": "Note",
        "summary": summary or None,
        "inReplyTo": in_reply_to,
        "published": format_datetime(published),
        "url": url,
        "attributedTo": attributed_to,
        "to": list(to),
        "cc": list(cc),
        "sensitive": sensitive,
        "content": content,
    }
    if updated is not None:
        doc["updated"] = format_datetime(updated)
    if language:
        doc["contentMap"] = {language: content}
    if context:
        doc["context"] = context
    attachment = []
    for a in attachments:
        d: dict[str, Any] = {"type": "Document", "mediaType": a.media_type, "url": a.url, "name": a.name}
        if a.blurhash:
            d["blurhash"] = a.blurhash
        if a.focal_point is not None:
            d["focalPoint"] = [a.focal_point[0], a.focal_point[1]]
        if a.width:
            d["width"] = a.width
        if a.height:
            d["height"] = a.height
        attachment.append(d)
    doc["attachment"] = attachment
    tags: list[dict[str, Any]] = [{"type": "Mention", "href": m.href, "name": m.name} for m in mentions]
    tags += [{"type": "Hashtag", "href": h.href, "name": "#" + h.name.lstrip("#")} for h in hashtags]
    doc["tag"] = tags
    if replies:
        doc["replies"] = _strip_context(replies)
    return doc


# --------------------------------------------------------------------------- activities & collections


def _strip_context(obj: Any) -> Any:
    if isinstance(obj, dict) and "@context" in obj:
        return {k: v for k, v in obj.items() if k != "@context"}
    return obj


def activity(
    type: str,
    id: str,
    actor: str,
    object: Any,
    to: Sequence[str] | None = None,
    cc: Sequence[str] | None = None,
    published: Timestamp | None = None,
) -> dict[str, Any]:
    """An activity with `@context`; an embedded object loses its own `@context`."""
    doc: dict[str, Any] = {"@context": ACTIVITY_CONTEXT, "id": id, "type": type, "actor": actor}
    if published is not None:
        doc["published"] = format_datetime(published)
    if to is not None:
        doc["to"] = list(to)
    if cc is not None:
        doc["cc"] = list(cc)
    doc["object"] = _strip_context(object)
    return doc


def ordered_collection(
    id: str, total: int, first: str | dict[str, Any] | None = None, items: Sequence[Any] | None = None
) -> dict[str, Any]:
    """An OrderedCollection: give `first` (a page URL or embedded page) or `items`."""
    doc: dict[str, Any] = {"@context": AS_CONTEXT, "id": id, "type": "OrderedCollection", "totalItems": total}
    if first is not None:
        doc["first"] = _strip_context(first)
    if items is not None:
        doc["orderedItems"] = [_strip_context(i) for i in items]
    return doc


def ordered_collection_page(
    id: str, part_of: str, items: Sequence[Any], next: str | None = None, prev: str | None = None
) -> dict[str, Any]:
    """One OrderedCollectionPage; `next`/`prev` only when those pages exist."""
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
    }
    if next:
        doc["next"] = next
    if prev:
        doc["prev"] = prev
    doc["orderedItems"] = [_strip_context(i) for i in items]
    return doc


def tombstone(id: str) -> dict[str, Any]:
    """A Tombstone (served with 410 for deleted objects, or embedded in Delete)."""
    return {"@context": AS_CONTEXT, "id": id, "type": "Tombstone"}
