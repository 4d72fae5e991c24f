"""Lenient readers for the JSON-LD shapes peers actually send, plus AS2 constants.

Peers disagree on shapes: single-item arrays arrive as scalars, objects arrive
embedded or as bare ids, Public has three spellings, `url` can be a string, a Link
or a list of Links.  The `parse_*` functions accept all of that and return small
typed structs, or raise `InvalidObject` for input that cannot be used safely.
Nothing here fetches anything: embedded objects are returned as-is, references as ids.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "AS_CONTEXT",
    "AS_PUBLIC",
    "SECURITY_CONTEXT",
    "ACTIVITY_CONTEXT",
    "ACTOR_CONTEXT",
    "ACTOR_TYPES",
    "POST_TYPES",
    "MAX_ITEMS",
    "MAX_DEPTH",
    "InvalidObject",
    "ParsedActivity",
    "ParsedActor",
    "ParsedAttachment",
    "ParsedNote",
    "ParsedTag",
    "PollOption",
    "PublicKey",
    "as_list",
    "first_str",
    "host_of",
    "id_of",
    "is_public",
    "is_http_url",
    "parse_activity",
    "parse_actor",
    "parse_datetime",
    "parse_note",
    "parse_public_key",
    "same_host",
]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_PUBLIC_FORMS = frozenset({AS_PUBLIC, "as:Public", "Public"})

# Inline term map, as Mastodon's context_helper.rb emits it.  The toot: namespace URL
# does not resolve, so these terms must always be inlined.
_INLINE_TERMS: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "featuredTags": {"@id": "toot:featuredTags", "@type": "@id"},
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "memorial": "toot:memorial",
    "suspended": "toot:suspended",
    "Emoji": "toot:Emoji",
    "blurhash": "toot:blurhash",
    "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
    "votersCount": "toot:votersCount",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
}

ACTIVITY_CONTEXT: list[Any] = [AS_CONTEXT, _INLINE_TERMS]
ACTOR_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, _INLINE_TERMS]

ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})
# Mastodon reads Note and Question natively and converts the others (name + url).
POST_TYPES = frozenset({"Note", "Question", "Article", "Page", "Video", "Image", "Audio", "Event"})

MAX_ITEMS = 1000  # per to/cc/tag/attachment/... array
MAX_DEPTH = 24  # JSON nesting; real documents stay under ~8
MAX_URL_LENGTH = 2048


class InvalidObject(ValueError):
    """A document that can't be used: not a dict, missing id/type/actor, bad URLs, too big."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- shape helpers


def as_list(v: object) -> list[Any]:
    """None → [], list/tuple → list, anything else → [v]."""
    if v is None:
        return []
    if isinstance(v, list):
        return v
    if isinstance(v, tuple):
        return list(v)
    return [v]


def id_of(v: object) -> str | None:
    """The id of a reference: a string itself, or an embedded object's `id`."""
    if isinstance(v, str):
        return v or None
    if isinstance(v, dict):
        i = v.get("id")
        return i if isinstance(i, str) and i else None
    return None


def first_str(v: object) -> str | None:
    """The first string in a scalar-or-list value (objects are skipped)."""
    for item in as_list(v):
        if isinstance(item, str):
            return item
    return None


def is_public(addr: object) -> bool:
    """True for the three spellings of the Public collection (full IRI, as:Public, Public)."""
    if isinstance(addr, dict):
        addr = addr.get("id")
    return isinstance(addr, str) and addr in _PUBLIC_FORMS


_SPACE = re.compile(r"\s")  # what str.isspace() calls whitespace


# The usual shape of a URL: scheme, a plain host (no user, no IPv6 literal), an optional port of at most
# five digits, then the end or a path, query or fragment without whitespace. Such a URL is an http(s)
# URL with a host (urlsplit agrees, and finds this host and port); the rest goes through urlsplit.
_PLAIN_URL = re.compile(r"(https?)://([A-Za-z0-9._~!$&'()*+,;=%-]+)(?::([0-9]{1,5}))?(?:[/?#][^\s]*)?")


def is_http_url(v: object) -> bool:
    """An absolute http(s) URL with a host, no whitespace, of sane length."""
    if not isinstance(v, str) or len(v) > MAX_URL_LENGTH or not v.startswith(("https://", "http://")):
        return False
    if _PLAIN_URL.fullmatch(v) is not None:  # every new post brings new URLs: urlsplit for each is dear
        return True
    return _SPACE.search(v) is None and _has_host(v)


@lru_cache(maxsize=1024)
def _has_host(url: str) -> bool:
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:
        return False


def host_of(url: str) -> str:
    """Lowercased host[:port] of a URL (default ports dropped); "" if unparseable."""
    return _host_of(url) if isinstance(url, str) else ""


@lru_cache(maxsize=1024)
def _host_of(url: str) -> str:
    """host_of, remembered: every activity asks it of the same few actor, key and object URLs."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:  # what urlsplit would find, without it
        scheme, host, port = plain.groups()
        if port is None:
            return host.lower()
        number = int(port)
        if number > 65535:
            return ""
        return host.lower() if number == (443 if scheme == "https" else 80) else f"{host.lower()}:{number}"
    return _split_host(url)


def _split_host(url: str) -> str:
    """host_of by urlsplit, for the URLs _PLAIN_URL does not read."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except (ValueError, TypeError, AttributeError):
        return ""
    if not host:
        return ""
    host = host.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"https": 443, "http": 80}.get(parts.scheme.lower()):
        return f"{host}:{port}"
    return host


def same_host(a: str, b: str) -> bool:
    """Both URLs parse and live on the same host[:port]."""
    ha = host_of(a)
    return bool(ha) and ha == host_of(b)


def parse_datetime(v: object) -> datetime | None:
    """ISO 8601 (with Z or an offset) → aware UTC datetime; None if absent or invalid."""
    if not isinstance(v, str) or not 10 <= len(v) <= 40:
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _check_depth(doc: object, limit: int = MAX_DEPTH) -> None:
    """No more than `limit` levels of objects and arrays (the document itself is the first). The
    recursion is as deep as the document, so at most `limit` frames."""
    if limit <= 0:
        raise InvalidObject("document is nested too deeply")
    if isinstance(doc, dict):
        doc = doc.values()
    elif not isinstance(doc, list):
        return
    for v in doc:
        if isinstance(v, (dict, list)):  # noqa: UP038 - a tuple is the quicker test
            _check_depth(v, limit - 1)


def _items(doc: dict[str, Any], key: str) -> list[Any]:
    items = as_list(doc.get(key))
    if len(items) > MAX_ITEMS:
        raise InvalidObject(f"too many items in {key} ({len(items)} > {MAX_ITEMS})")
    return items


def _type_of(doc: dict[str, Any]) -> str:
    t = doc.get("type")
    if isinstance(t, list):  # JSON-LD allows several types; the first one is the useful one
        t = first_str(t)
    if not isinstance(t, str) or not t:
        raise InvalidObject("missing type")
    return t.removeprefix("as:")


def _require_dict(doc: object, what: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidObject(f"{what} is not a JSON object")
    return doc


def _required_url(doc: dict[str, Any], key: str) -> str:
    v = id_of(doc.get(key))
    if v is None:
        raise InvalidObject(f"missing {key}")
    if not is_http_url(v):
        raise InvalidObject(f"{key} is not an http(s) URL")
    return v


def _optional_url(v: object) -> str | None:
    i = id_of(v)
    return i if is_http_url(i) else None


def _first_url(v: object) -> str | None:
    """`url`-like values: string, Link {href}, or a list of those (prefer text/html)."""
    fallback = None
    for item in as_list(v)[:MAX_ITEMS]:
        href: str | None
        if isinstance(item, str):
            href, media_type = item, None
        elif isinstance(item, dict):
            raw = item.get("href") if isinstance(item.get("href"), str) else item.get("url")
            href = _first_url(raw) if isinstance(raw, dict | list) else raw if isinstance(raw, str) else None
            media_type = item.get("mediaType")
        else:
            continue
        if not is_http_url(href):
            continue
        if media_type in (None, "text/html"):
            return href
        fallback = fallback or href
    return fallback


def _addresses(doc: dict[str, Any], key: str) -> list[str]:
    out: list[str] = []
    for item in _items(doc, key):
        a = id_of(item)
        if a is None:
            continue
        if a in _PUBLIC_FORMS:
            a = AS_PUBLIC  # normalise, so callers only ever compare with AS_PUBLIC
        elif not is_http_url(a):
            continue
        if a not in out:
            out.append(a)
    return out


def _str(v: object, limit: int = 1_000_000) -> str | None:
    return v if isinstance(v, str) and len(v) <= limit else None


def _lang_map(doc: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    """(value, language) from `key` or `keyMap`."""
    value = _str(doc.get(key))
    m = doc.get(key + "Map")
    if isinstance(m, dict):
        for lang, text in m.items():
            if isinstance(text, str):
                return (value if value is not None else text), (
                    lang if isinstance(lang, str) and lang else None
                )
    return value, None


def _bool(v: object) -> bool:
    return v is True


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


# --------------------------------------------------------------------------- activities


class ParsedActivity(msgspec.Struct, kw_only=True):
    id: str
    type: str
    actor: str
    object_id: str | None = None
    object: dict[str, Any] | None = None  # embedded object, if it was embedded
    object_type: str | None = None
    target_id: str | None = None
    to: list[str] = []
    cc: list[str] = []
    published: datetime | None = None
    content: str | None = None  # Flag comment, EmojiReact/Like emoji
    result_id: str | None = None  # Accept{result: QuoteAuthorization}
    instrument_id: str | None = None  # QuoteRequest{instrument}
    raw: dict[str, Any] = {}


def parse_activity(doc: object) -> ParsedActivity:
    """Read any activity shape; raise InvalidObject if id/type/actor are missing or bad."""
    doc = _require_dict(doc, "activity")
    _check_depth(doc)
    act_id = _required_url(doc, "id")
    act_type = _type_of(doc)
    actor = doc.get("actor")
    if isinstance(actor, list):  # some implementations send [actor]
        actor = actor[0] if len(actor) == 1 else None
    actor_id = id_of(actor)
    if actor_id is None:
        raise InvalidObject("missing actor")
    if not is_http_url(actor_id):
        raise InvalidObject("actor is not an http(s) URL")
    obj = doc.get("object")
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    object_id = id_of(obj)
    embedded = obj if isinstance(obj, dict) else None
    object_type = None
    if embedded is not None:
        t = embedded.get("type")
        object_type = first_str(t)
    content, _ = _lang_map(doc, "content")
    return ParsedActivity(
        id=act_id,
        type=act_type,
        actor=actor_id,
        object_id=object_id,
        object=embedded,
        object_type=object_type.removeprefix("as:") if object_type else None,
        target_id=id_of(doc.get("target")),
        to=_addresses(doc, "to"),
        cc=_addresses(doc, "cc"),
        published=parse_datetime(doc.get("published")),
        content=content,
        result_id=id_of(doc.get("result")),
        instrument_id=id_of(doc.get("instrument")),
        raw=doc,
    )


# --------------------------------------------------------------------------- notes


class ParsedTag(msgspec.Struct, kw_only=True):
    type: str  # "Mention" | "Hashtag" | "Emoji" | "Link"
    name: str | None = None  # Mention "@u@h"; Hashtag without "#"; Emoji ":code:"
    href: str | None = None
    icon_url: str | None = None  # Emoji image
    media_type: str | None = None  # Link (FEP-e232)


class ParsedAttachment(msgspec.Struct, kw_only=True):
    type: str
    url: str
    media_type: str | None = None
    name: str | None = None  # alt text
    blurhash: str | None = None
    focal_point: tuple[float, float] | None = None
    width: int | None = None
    height: int | None = None


class PollOption(msgspec.Struct):
    name: str
    votes: int = 0


class ParsedNote(msgspec.Struct, kw_only=True):
    id: str
    type: str
    attributed_to: str
    content: str = ""  # raw, unsanitised HTML: run federation.html.sanitize_html on it
    summary: str | None = None
    name: str | None = None  # title of Article/Page/Video/Event
    sensitive: bool = False
    in_reply_to: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    url: str | None = None
    to: list[str] = []
    cc: list[str] = []
    tags: list[ParsedTag] = []
    attachments: list[ParsedAttachment] = []
    context: str | None = None
    replies: str | None = None
    language: str | None = None
    quote: str | None = None  # FEP-044f quote / quoteUrl / _misskey_quote
    poll_options: list[PollOption] | None = None
    poll_multiple: bool = False
    poll_end_time: datetime | None = None
    poll_closed: datetime | None = None
    poll_voters_count: int | None = None


def _parse_tags(doc: dict[str, Any]) -> list[ParsedTag]:
    tags: list[ParsedTag] = []
    for t in _items(doc, "tag"):
        if not isinstance(t, dict):
            continue
        kind = first_str(t.get("type"))
        name = _str(t.get("name"), 1000)
        href = t.get("href") if is_http_url(t.get("href")) else None
        if kind == "Mention":
            if href is None:
                continue
            tags.append(ParsedTag(type="Mention", name=name, href=href))
        elif kind in ("Hashtag", "as:Hashtag"):
            if not name or not name.lstrip("#"):
                continue
            tags.append(ParsedTag(type="Hashtag", name=name.lstrip("#"), href=href))
        elif kind == "Emoji":
            icon = t.get("icon")
            icon_url = _first_url(icon.get("url")) if isinstance(icon, dict) else _first_url(icon)
            if name and icon_url:
                tags.append(
                    ParsedTag(type="Emoji", name=name, icon_url=icon_url, href=_optional_url(t.get("id")))
                )
        elif kind == "Link" and href is not None:
            mt = t.get("mediaType")
            tags.append(
                ParsedTag(type="Link", name=name, href=href, media_type=mt if isinstance(mt, str) else None)
            )
    return tags


def _focal_point(v: object) -> tuple[float, float] | None:
    if (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    ):
        x, y = float(v[0]), float(v[1])
        if -1.0 <= x <= 1.0 and -1.0 <= y <= 1.0:
            return (x, y)
    return None


def _parse_attachments(doc: dict[str, Any]) -> list[ParsedAttachment]:
    out: list[ParsedAttachment] = []
    for a in _items(doc, "attachment"):
        if not isinstance(a, dict):
            continue
        url_v = a.get("url")
        media_type = a.get("mediaType")
        if isinstance(url_v, list | dict):
            # PeerTube & co: a list of Links; take the first with a media type.
            for link in as_list(url_v)[:MAX_ITEMS]:
                if isinstance(link, dict) and is_http_url(link.get("href")):
                    url_v = link["href"]
                    media_type = media_type or link.get("mediaType")
                    break
                if isinstance(link, str):
                    url_v = link
                    break
        if not isinstance(url_v, str) or not is_http_url(url_v):
            continue
        out.append(
            ParsedAttachment(
                type=first_str(a.get("type")) or "Document",
                url=url_v,
                media_type=media_type if isinstance(media_type, str) else None,
                name=_str(a.get("name"), 10_000),
                blurhash=_str(a.get("blurhash"), 200),
                focal_point=_focal_point(a.get("focalPoint")),
                width=_int(a.get("width")),
                height=_int(a.get("height")),
            )
        )
    return out


def _parse_poll(doc: dict[str, Any], note: ParsedNote) -> None:
    multiple = "anyOf" in doc
    options = []
    for o in _items(doc, "anyOf" if multiple else "oneOf"):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            continue
        replies = o.get("replies")
        votes = _int(replies.get("totalItems")) if isinstance(replies, dict) else None
        options.append(PollOption(name=o["name"], votes=votes or 0))
    note.poll_options = options
    note.poll_multiple = multiple
    note.poll_end_time = parse_datetime(doc.get("endTime"))
    closed = doc.get("closed")
    note.poll_closed = parse_datetime(closed) if isinstance(closed, str) else None
    note.poll_voters_count = _int(doc.get("votersCount"))


def _attributed_to(doc: dict[str, Any]) -> str:
    # PeerTube sends [Person, Group]; the author is the first actor that isn't a Group.
    candidates = as_list(doc.get("attributedTo"))[:MAX_ITEMS]
    chosen = None
    for c in candidates:
        if isinstance(c, dict) and first_str(c.get("type")) == "Group":
            continue
        chosen = id_of(c)
        if chosen:
            break
    if chosen is None and candidates:
        chosen = id_of(candidates[0])
    if chosen is None:
        raise InvalidObject("missing attributedTo")
    if not is_http_url(chosen):
        raise InvalidObject("attributedTo is not an http(s) URL")
    return chosen


def parse_note(doc: object) -> ParsedNote:
    """Read a Note/Question/Article/Page/...; raise InvalidObject if unusable."""
    doc = _require_dict(doc, "object")
    _check_depth(doc)
    note_id = _required_url(doc, "id")
    note_type = _type_of(doc)
    if note_type not in POST_TYPES:
        raise InvalidObject(f"unsupported object type {note_type!r}")
    content, language = _lang_map(doc, "content")
    summary, _ = _lang_map(doc, "summary")
    name, _ = _lang_map(doc, "name")
    in_reply_to = doc.get("inReplyTo")
    if isinstance(in_reply_to, list):
        in_reply_to = in_reply_to[0] if in_reply_to else None
    quote = next(
        (
            q
            for q in (_optional_url(doc.get(k)) for k in ("quote", "quoteUrl", "quoteUri", "_misskey_quote"))
            if q
        ),
        None,
    )
    context = id_of(doc.get("context"))
    note = ParsedNote(
        id=note_id,
        type=note_type,
        attributed_to=_attributed_to(doc),
        content=content or "",
        summary=summary or None,
        name=name or None,
        sensitive=_bool(doc.get("sensitive")),
        in_reply_to=_optional_url(in_reply_to),
        published=parse_datetime(doc.get("published")),
        updated=parse_datetime(doc.get("updated")),
        url=_first_url(doc.get("url")),
        to=_addresses(doc, "to"),
        cc=_addresses(doc, "cc"),
        tags=_parse_tags(doc),
        attachments=_parse_attachments(doc),
        context=context if context and len(context) <= MAX_URL_LENGTH else None,
        replies=_optional_url(doc.get("replies")),
        language=language,
        quote=quote,
    )
    if note_type == "Question":
        _parse_poll(doc, note)
    return note


# --------------------------------------------------------------------------- actors


class PublicKey(msgspec.Struct, kw_only=True):
    id: str
    owner: str
    pem: str
    # True when the key was read from the owner's own actor document; False for a
    # standalone key document, whose owner must still be fetched to confirm the key.
    owner_confirmed: bool


class ParsedActor(msgspec.Struct, kw_only=True):
    id: str
    type: str
    preferred_username: str | None  # None only when parsed with require_username=False
    inbox: str
    name: str | None = None
    summary: str | None = None  # raw HTML
    outbox: str | None = None
    shared_inbox: str | None = None
    followers: str | None = None
    following: str | None = None
    featured: str | None = None
    featured_tags: str | None = None
    public_key_id: str | None = None
    public_key_pem: str | None = None
    public_keys: list[PublicKey] = []
    manually_approves_followers: bool = False
    discoverable: bool = False
    indexable: bool = False
    memorial: bool = False
    suspended: bool = False
    icon_url: str | None = None
    image_url: str | None = None
    url: str | None = None
    published: datetime | None = None
    fields: list[tuple[str, str]] = []
    also_known_as: list[str] = []
    moved_to: str | None = None
    emojis: list[ParsedTag] = []


def _image_url(v: object) -> str | None:
    for item in as_list(v)[:MAX_ITEMS]:
        if isinstance(item, dict):
            u = _first_url(item.get("url")) or _first_url(item.get("href"))
        else:
            u = _first_url(item)
        if u:
            return u
    return None


def _keys_of(doc: dict[str, Any], actor_id: str) -> list[PublicKey]:
    keys = []
    for k in _items(doc, "publicKey")[:10]:  # Mastodon reads at most 10 keys
        if not isinstance(k, dict):
            continue
        kid, pem = k.get("id"), k.get("publicKeyPem")
        owner = id_of(k.get("owner")) or actor_id
        if isinstance(kid, str) and isinstance(pem, str) and "BEGIN" in pem and owner == actor_id:
            keys.append(PublicKey(id=kid, owner=actor_id, pem=pem, owner_confirmed=True))
    return keys


def parse_actor(doc: object, *, require_username: bool = True) -> ParsedActor:
    """Read a Person/Service/Application/Group/Organization; raise InvalidObject if unusable.

    Mastodon refuses actors without a `preferredUsername`, and so does this by default; with
    `require_username=False` a missing or unusable one reads as None (some ActivityPub applications
    publish such actors)."""
    doc = _require_dict(doc, "actor")
    _check_depth(doc)
    actor_id = _required_url(doc, "id")
    actor_type = _type_of(doc)
    if actor_type not in ACTOR_TYPES:
        raise InvalidObject(f"unsupported actor type {actor_type!r}")
    username = doc.get("preferredUsername")
    if not isinstance(username, str) or not username or len(username) > 256:
        if require_username:
            raise InvalidObject("missing preferredUsername")
        username = None
    inbox = _required_url(doc, "inbox")
    endpoints = doc.get("endpoints")
    shared_inbox = _optional_url(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else None
    keys = _keys_of(doc, actor_id)
    fields = []
    for a in _items(doc, "attachment"):
        if isinstance(a, dict) and first_str(a.get("type")) == "PropertyValue":
            n, v = a.get("name"), a.get("value")
            if isinstance(n, str) and isinstance(v, str):
                fields.append((n, v))
    name, _ = _lang_map(doc, "name")
    summary, _ = _lang_map(doc, "summary")
    return ParsedActor(
        id=actor_id,
        type=actor_type,
        preferred_username=username,
        inbox=inbox,
        name=name,
        summary=summary,
        outbox=_optional_url(doc.get("outbox")),
        shared_inbox=shared_inbox,
        followers=_optional_url(doc.get("followers")),
        following=_optional_url(doc.get("following")),
        featured=_optional_url(doc.get("featured")),
        featured_tags=_optional_url(doc.get("featuredTags")),
        public_key_id=keys[0].id if keys else None,
        public_key_pem=keys[0].pem if keys else None,
        public_keys=keys,
        manually_approves_followers=_bool(doc.get("manuallyApprovesFollowers")),
        discoverable=_bool(doc.get("discoverable")),
        indexable=_bool(doc.get("indexable")),
        memorial=_bool(doc.get("memorial")),
        suspended=_bool(doc.get("suspended")),
        icon_url=_image_url(doc.get("icon")),
        image_url=_image_url(doc.get("image")),
        url=_first_url(doc.get("url")),
        published=parse_datetime(doc.get("published")),
        fields=fields,
        also_known_as=[a for a in (_optional_url(x) for x in _items(doc, "alsoKnownAs")) if a],
        moved_to=_optional_url(doc.get("movedTo")),
        emojis=[t for t in _parse_tags(doc) if t.type == "Emoji"],
    )


def parse_public_key(doc: object, key_id: str) -> PublicKey:
    """Find `key_id` in what fetching it returned: an actor with publicKey, a standalone
    key document {id, owner, publicKeyPem}, or a stub actor (GoToSocial).

    Raises InvalidObject.  If `owner_confirmed` is False the server must fetch the owner
    and check that it lists the same key before trusting it.
    """
    doc = _require_dict(doc, "key document")
    _check_depth(doc)
    doc_id = id_of(doc.get("id"))
    pem = doc.get("publicKeyPem")
    if isinstance(pem, str) and "BEGIN" in pem:
        owner = id_of(doc.get("owner"))
        if doc_id != key_id or not is_http_url(owner):
            raise InvalidObject("key document does not match the keyId or has no owner")
        return PublicKey(id=key_id, owner=owner, pem=pem, owner_confirmed=False)  # type: ignore[arg-type]
    if not is_http_url(doc_id):
        raise InvalidObject("key document has no usable id")
    keys = _keys_of(doc, doc_id)  # type: ignore[arg-type]
    for k in keys:
        if k.id == key_id:
            return k
    # Tolerate `actor#main-key` keyIds that resolve to an actor whose single key has a
    # different fragment: the actor's own document vouches for it either way.
    if len(keys) == 1 and key_id.split("#", 1)[0] == doc_id:
        return keys[0]
    raise InvalidObject("keyId not found in the fetched document")
