import datetime

import pytest

from federation.models import (
    ACTIVITY_CONTEXT,
    ACTOR_CONTEXT,
    AS_PUBLIC,
    MAX_ITEMS,
    InvalidObject,
    as_list,
    first_str,
    host_of,
    id_of,
    is_public,
    parse_activity,
    parse_actor,
    parse_note,
    parse_public_key,
    same_host,
)

ACTOR = "https://remote.example/users/bob"
NOTE_ID = "https://remote.example/users/bob/statuses/1"
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB...\n-----END PUBLIC KEY-----\n"


def note(**overrides):
    doc = {
        "id": NOTE_ID,
        "type": "Note",
        "attributedTo": ACTOR,
        "content": "<p>hello</p>",
        "to": [AS_PUBLIC],
        "cc": [ACTOR + "/followers"],
        "published": "2026-08-01T12:00:00Z",
    }
    doc.update(overrides)
    return doc


# --------------------------------------------------------------------------- helpers


def test_shape_helpers():
    assert as_list(None) == []
    assert as_list("a") == ["a"]
    assert as_list(["a", "b"]) == ["a", "b"]
    assert as_list({"id": "x"}) == [{"id": "x"}]
    assert id_of("https://a/x") == "https://a/x"
    assert id_of({"id": "https://a/x", "type": "Note"}) == "https://a/x"
    assert id_of({"type": "Note"}) is None
    assert id_of(5) is None and id_of("") is None
    assert first_str(["x", "y"]) == "x"
    assert first_str([{"id": "x"}, "y"]) == "y"
    assert first_str("z") == "z" and first_str(None) is None


@pytest.mark.parametrize("form", [AS_PUBLIC, "as:Public", "Public", {"id": "as:Public"}])
def test_is_public_forms(form):
    assert is_public(form)


@pytest.mark.parametrize("form", ["https://www.w3.org/ns/activitystreams", "public", None, ACTOR])
def test_is_public_negatives(form):
    assert not is_public(form)


def test_host_of_and_same_host():
    assert host_of("https://Remote.Example/users/bob") == "remote.example"
    assert host_of("https://remote.example:443/x") == "remote.example"
    assert host_of("http://remote.example:80/x") == "remote.example"
    assert host_of("https://remote.example:8443/x") == "remote.example:8443"
    assert host_of("http://[::1]:8080/x") == "[::1]:8080"
    assert host_of("not a url") == "" and host_of("https://") == ""
    assert host_of("https://a:99999/") == ""
    assert same_host("https://A.example/x", "https://a.example:443/y")
    assert not same_host("https://a.example/x", "https://b.example/x")
    assert not same_host("https://a.example/x", "https://a.example:8443/x")
    assert not same_host("garbage", "garbage")


def test_contexts():
    assert ACTIVITY_CONTEXT[0] == "https://www.w3.org/ns/activitystreams"
    assert ACTOR_CONTEXT[:2] == ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
    terms = ACTOR_CONTEXT[2]
    assert terms["toot"] == "http://joinmastodon.org/ns#"
    assert terms["schema"] == "http://schema.org#"
    for term in (
        "manuallyApprovesFollowers",
        "featured",
        "discoverable",
        "indexable",
        "PropertyValue",
        "value",
        "Hashtag",
        "sensitive",
        "blurhash",
        "focalPoint",
        "Emoji",
        "votersCount",
    ):
        assert term in terms


# --------------------------------------------------------------------------- activities


def test_parse_activity_bare_object_and_scalar_addressing():
    act = parse_activity(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": ACTOR + "#follows/1",
            "type": "Follow",
            "actor": ACTOR,
            "object": "https://local.example/users/alice",
            "to": "https://local.example/users/alice",
        }
    )
    assert act.type == "Follow" and act.actor == ACTOR
    assert act.object_id == "https://local.example/users/alice" and act.object is None
    assert act.to == ["https://local.example/users/alice"] and act.cc == []


def test_parse_activity_embedded_object_and_public_forms():
    act = parse_activity(
        {
            "id": NOTE_ID + "/activity",
            "type": ["Create"],
            "actor": {"id": ACTOR, "type": "Person"},
            "object": note(),
            "to": "as:Public",
            "cc": ["Public", ACTOR + "/followers", AS_PUBLIC, 7, {"id": "https://x.example/u"}, "not-a-url"],
            "published": "2026-08-01T12:00:00+02:00",
        }
    )
    assert act.type == "Create" and act.actor == ACTOR
    assert act.object_id == NOTE_ID and act.object is not None and act.object_type == "Note"
    assert act.to == [AS_PUBLIC]
    assert act.cc == [AS_PUBLIC, ACTOR + "/followers", "https://x.example/u"]  # normalised, deduped
    assert act.published == datetime.datetime(2026, 8, 1, 10, 0, tzinfo=datetime.UTC)


def test_parse_activity_misc_fields():
    act = parse_activity(
        {
            "id": "https://remote.example/flags/1",
            "type": "Flag",
            "actor": ACTOR,
            "object": [NOTE_ID],
            "content": "spam",
            "published": "garbage",
        }
    )
    assert act.object_id == NOTE_ID and act.content == "spam" and act.published is None


@pytest.mark.parametrize(
    "doc",
    [
        None,
        "a string",
        [{"id": "x"}],
        {},
        {"type": "Create", "actor": ACTOR},  # no id
        {"id": "https://r.example/1", "actor": ACTOR},  # no type
        {"id": "https://r.example/1", "type": "Create"},  # no actor
        {"id": "https://r.example/1", "type": 5, "actor": ACTOR},
        {"id": "ftp://r.example/1", "type": "Create", "actor": ACTOR},
        {"id": "javascript:alert(1)", "type": "Create", "actor": ACTOR},
        {"id": "https://r.example/1", "type": "Create", "actor": "acct:bob@r.example"},
        {"id": "https://r.example/1", "type": "Create", "actor": [ACTOR, ACTOR + "2"]},
        {"id": "https://r.example/ 1", "type": "Create", "actor": ACTOR},
        {"id": "https:///nohost", "type": "Create", "actor": ACTOR},
        {"id": ["https://r.example/1"], "type": "Create", "actor": ACTOR},
    ],
)
def test_parse_activity_garbage(doc):
    with pytest.raises(InvalidObject):
        parse_activity(doc)


def test_deep_nesting_rejected():
    deep: dict = {"x": 1}
    for _ in range(100):
        deep = {"nested": deep}
    with pytest.raises(InvalidObject, match="nested"):
        parse_activity({"id": "https://r.example/1", "type": "Create", "actor": ACTOR, "object": deep})
    nested_list: list = []
    for _ in range(100):
        nested_list = [nested_list]
    with pytest.raises(InvalidObject, match="nested"):
        parse_note(note(junk=nested_list))
    # Ordinary depth is fine.
    parse_activity(
        {"id": "https://r.example/1", "type": "Create", "actor": ACTOR, "object": note(tag=[{"a": {"b": 1}}])}
    )


@pytest.mark.parametrize("field", ["to", "cc", "tag", "attachment"])
def test_huge_arrays_rejected(field):
    with pytest.raises(InvalidObject, match="too many"):
        parse_note(note(**{field: [f"https://r.example/u/{i}" for i in range(MAX_ITEMS + 1)]}))
    parse_note(note(**{field: [f"https://r.example/u/{i}" for i in range(10)]}))


def test_huge_activity_addressing_rejected():
    with pytest.raises(InvalidObject):
        parse_activity(
            {
                "id": "https://r.example/1",
                "type": "Create",
                "actor": ACTOR,
                "cc": ["https://r.example/u"] * (MAX_ITEMS + 1),
            }
        )


# --------------------------------------------------------------------------- notes


def test_parse_note_mastodon_shape():
    n = parse_note(
        note(
            summary="cw",
            sensitive=True,
            inReplyTo="https://local.example/users/alice/statuses/9",
            updated="2026-08-02T12:00:00Z",
            url="https://remote.example/@bob/1",
            contentMap={"de": "<p>hallo</p>"},
            context="https://remote.example/contexts/1",
            replies={"id": NOTE_ID + "/replies", "type": "Collection", "first": {"type": "CollectionPage"}},
            tag=[
                {
                    "type": "Mention",
                    "href": "https://local.example/users/alice",
                    "name": "@alice@local.example",
                },
                {"type": "Hashtag", "href": "https://remote.example/tags/cats", "name": "#cats"},
                {
                    "type": "Emoji",
                    "name": ":blob:",
                    "icon": {"type": "Image", "url": "https://remote.example/e.png"},
                },
                {"type": "Mention", "name": "@nohref"},
                "garbage",
            ],
            attachment=[
                {
                    "type": "Document",
                    "mediaType": "image/png",
                    "url": "https://remote.example/m/1.png",
                    "name": "alt text",
                    "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
                    "focalPoint": [0.5, -0.25],
                    "width": 640,
                    "height": 480,
                },
                {"type": "Document", "url": "javascript:alert(1)"},
            ],
        )
    )
    assert n.id == NOTE_ID and n.type == "Note" and n.attributed_to == ACTOR
    assert n.content == "<p>hello</p>" and n.language == "de"
    assert n.summary == "cw" and n.sensitive is True
    assert n.in_reply_to == "https://local.example/users/alice/statuses/9"
    assert n.published == datetime.datetime(2026, 8, 1, 12, tzinfo=datetime.UTC)
    assert n.updated == datetime.datetime(2026, 8, 2, 12, tzinfo=datetime.UTC)
    assert n.url == "https://remote.example/@bob/1"
    assert n.to == [AS_PUBLIC] and n.cc == [ACTOR + "/followers"]
    assert n.context == "https://remote.example/contexts/1" and n.replies == NOTE_ID + "/replies"
    assert [(t.type, t.name, t.href) for t in n.tags[:2]] == [
        ("Mention", "@alice@local.example", "https://local.example/users/alice"),
        ("Hashtag", "cats", "https://remote.example/tags/cats"),
    ]
    assert n.tags[2].type == "Emoji" and n.tags[2].icon_url == "https://remote.example/e.png"
    assert len(n.tags) == 3
    (a,) = n.attachments
    assert (a.url, a.media_type, a.name, a.focal_point, a.width) == (
        "https://remote.example/m/1.png",
        "image/png",
        "alt text",
        (0.5, -0.25),
        640,
    )
    assert a.blurhash and a.blurhash.startswith("UBL")


def test_parse_note_scalar_shapes_and_content_map_only():
    n = parse_note(
        {
            "id": NOTE_ID,
            "type": "Note",
            "attributedTo": [{"type": "Person", "id": ACTOR}],
            "contentMap": {"fr": "<p>salut</p>"},
            "to": "Public",
            "cc": ACTOR + "/followers",
            "tag": {"type": "Hashtag", "name": "#solo"},
            "attachment": {
                "type": "Image",
                "url": {"type": "Link", "href": "https://r.example/i.jpg", "mediaType": "image/jpeg"},
            },
            "url": [
                {"type": "Link", "mediaType": "video/mp4", "href": "https://r.example/v.mp4"},
                {"type": "Link", "mediaType": "text/html", "href": "https://r.example/v"},
            ],
            "inReplyTo": {"id": "https://x.example/1", "type": "Note"},
            "summary": "",
        }
    )
    assert n.content == "<p>salut</p>" and n.language == "fr"
    assert n.attributed_to == ACTOR
    assert n.to == [AS_PUBLIC] and n.cc == [ACTOR + "/followers"]
    assert [(t.type, t.name) for t in n.tags] == [("Hashtag", "solo")]
    assert n.attachments[0].url == "https://r.example/i.jpg" and n.attachments[0].media_type == "image/jpeg"
    assert n.url == "https://r.example/v"
    assert n.in_reply_to == "https://x.example/1"
    assert n.summary is None and n.sensitive is False


def test_parse_note_peertube_attributed_to_prefers_person():
    n = parse_note(
        note(
            type="Video",
            name="A video",
            content=None,
            attributedTo=[
                {"type": "Group", "id": "https://pt.example/c/chan"},
                {"type": "Person", "id": "https://pt.example/a/bob"},
            ],
        )
    )
    assert n.attributed_to == "https://pt.example/a/bob" and n.name == "A video" and n.content == ""


def test_parse_question():
    n = parse_note(
        note(
            type="Question",
            anyOf=[
                {"type": "Note", "name": "yes", "replies": {"type": "Collection", "totalItems": 3}},
                {"type": "Note", "name": "no", "replies": {"totalItems": True}},
                {"type": "Note"},
            ],
            endTime="2026-08-03T00:00:00Z",
            votersCount=4,
        )
    )
    assert n.poll_multiple is True and n.poll_voters_count == 4
    assert [(o.name, o.votes) for o in n.poll_options or []] == [("yes", 3), ("no", 0)]
    assert n.poll_end_time == datetime.datetime(2026, 8, 3, tzinfo=datetime.UTC)
    single = parse_note(note(type="Question", oneOf=[{"name": "a"}]))
    assert single.poll_multiple is False and single.poll_options and single.poll_options[0].name == "a"
    assert parse_note(note()).poll_options is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": "Person"},
        {"type": None},
        {"attributedTo": None},
        {"attributedTo": "bob"},
        {"id": None},
        {"id": "urn:uuid:1"},
    ],
)
def test_parse_note_garbage(overrides):
    with pytest.raises(InvalidObject):
        parse_note(note(**overrides))


def test_parse_note_ignores_bad_optional_fields():
    n = parse_note(
        note(
            inReplyTo="not a url",
            url=5,
            tag=[{"type": "Mention", "href": "javascript:x"}],
            attachment=[{"type": "Document", "url": "https://r.example/a", "focalPoint": [5, 5]}],
            sensitive="yes",
            published="2026-13-40",
        )
    )
    assert n.in_reply_to is None and n.url is None and n.tags == []
    assert n.attachments[0].focal_point is None
    assert n.sensitive is False and n.published is None


# --------------------------------------------------------------------------- actors


def actor(**overrides):
    doc = {
        "@context": ACTOR_CONTEXT,
        "id": ACTOR,
        "type": "Person",
        "preferredUsername": "bob",
        "name": "Bob",
        "summary": "<p>bio</p>",
        "inbox": ACTOR + "/inbox",
        "outbox": ACTOR + "/outbox",
        "followers": ACTOR + "/followers",
        "following": ACTOR + "/following",
        "featured": ACTOR + "/collections/featured",
        "endpoints": {"sharedInbox": "https://remote.example/inbox"},
        "publicKey": {"id": ACTOR + "#main-key", "owner": ACTOR, "publicKeyPem": PEM},
        "manuallyApprovesFollowers": True,
        "discoverable": True,
        "icon": {"type": "Image", "mediaType": "image/png", "url": "https://remote.example/a.png"},
        "image": {"type": "Image", "url": "https://remote.example/h.png"},
        "url": "https://remote.example/@bob",
        "published": "2020-01-01T00:00:00Z",
        "attachment": [
            {
                "type": "PropertyValue",
                "name": "Web",
                "value": "<a href='https://bob.example'>bob.example</a>",
            },
            {"type": "IdentityProof", "name": "x"},
        ],
        "alsoKnownAs": ["https://old.example/users/bob"],
        "movedTo": "https://new.example/users/bob",
        "tag": [{"type": "Emoji", "name": ":blob:", "icon": {"url": "https://remote.example/e.png"}}],
    }
    doc.update(overrides)
    return doc


def test_parse_actor_mastodon_shape():
    a = parse_actor(actor())
    assert (a.id, a.type, a.preferred_username, a.name) == (ACTOR, "Person", "bob", "Bob")
    assert a.inbox == ACTOR + "/inbox" and a.shared_inbox == "https://remote.example/inbox"
    assert a.outbox == ACTOR + "/outbox" and a.followers == ACTOR + "/followers"
    assert a.following == ACTOR + "/following" and a.featured == ACTOR + "/collections/featured"
    assert a.public_key_id == ACTOR + "#main-key" and a.public_key_pem == PEM
    assert a.manually_approves_followers and a.discoverable
    assert a.icon_url == "https://remote.example/a.png" and a.image_url == "https://remote.example/h.png"
    assert a.url == "https://remote.example/@bob"
    assert a.published == datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    assert a.fields == [("Web", "<a href='https://bob.example'>bob.example</a>")]
    assert a.also_known_as == ["https://old.example/users/bob"]
    assert a.moved_to == "https://new.example/users/bob"
    assert [e.name for e in a.emojis] == [":blob:"]


def test_parse_actor_lenient_shapes():
    a = parse_actor(
        actor(
            type="Service",
            publicKey=[
                {"id": "https://evil.example/k", "owner": "https://evil.example/u", "publicKeyPem": PEM},
                {"id": ACTOR + "#k2", "publicKeyPem": PEM},
            ],
            icon=[{"type": "Image", "url": [{"href": "https://r.example/i.webp"}]}],
            followers={"id": ACTOR + "/followers", "type": "OrderedCollection", "totalItems": 3},
            alsoKnownAs="https://old.example/users/bob",
            endpoints="garbage",
            manuallyApprovesFollowers="true",
            attachment={"type": "PropertyValue", "name": "a", "value": "b"},
        )
    )
    assert a.type == "Service"
    assert a.public_key_id == ACTOR + "#k2"  # the key owned by someone else is ignored
    assert len(a.public_keys) == 1
    assert a.icon_url == "https://r.example/i.webp"
    assert a.followers == ACTOR + "/followers"
    assert a.also_known_as == ["https://old.example/users/bob"]
    assert a.shared_inbox is None and a.manually_approves_followers is False
    assert a.fields == [("a", "b")]


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": "Note"},
        {"preferredUsername": None},
        {"preferredUsername": ""},
        {"inbox": None},
        {"inbox": "/relative/inbox"},
        {"id": "acct:bob@remote.example"},
    ],
)
def test_parse_actor_garbage(overrides):
    with pytest.raises(InvalidObject):
        parse_actor(actor(**overrides))


@pytest.mark.parametrize("username", [None, "", 5])
def test_parse_actor_without_username_when_allowed(username):
    parsed = parse_actor(actor(preferredUsername=username), require_username=False)
    assert parsed.preferred_username is None and parsed.inbox == ACTOR + "/inbox"
    with pytest.raises(InvalidObject):  # still an actor: no inbox is no actor
        parse_actor(actor(preferredUsername=username, inbox=None), require_username=False)


def test_parse_public_key_shapes():
    key = parse_public_key(actor(), ACTOR + "#main-key")
    assert key.owner == ACTOR and key.pem == PEM and key.owner_confirmed
    # GoToSocial-style stub actor returned for a separate key URL.
    stub = {
        "id": ACTOR,
        "type": "Person",
        "publicKey": {"id": ACTOR + "/main-key", "owner": ACTOR, "publicKeyPem": PEM},
    }
    assert parse_public_key(stub, ACTOR + "/main-key").owner_confirmed
    # A standalone key document: owner must still be confirmed by the server.
    key_doc = {"id": ACTOR + "/key", "owner": ACTOR, "publicKeyPem": PEM}
    k = parse_public_key(key_doc, ACTOR + "/key")
    assert k.owner == ACTOR and not k.owner_confirmed
    with pytest.raises(InvalidObject):
        parse_public_key(key_doc, ACTOR + "/other-key")
    with pytest.raises(InvalidObject):
        parse_public_key(actor(publicKey=None), ACTOR + "#main-key")
    with pytest.raises(InvalidObject):
        parse_public_key("nope", ACTOR + "#main-key")


def test_url_checks_and_depth_agree_with_urlsplit_and_a_plain_walk():
    """is_http_url and host_of read the usual URL shape themselves (a regular expression) and hand
    anything else to urlsplit; _check_depth recurses. On random mixes of schemes, user parts, hosts,
    ports and paths (unicode spaces and brackets among them), and random nested documents, they answer
    what urlsplit and the plain stack walk they replaced answer."""
    import random
    import re

    from federation import models as ap

    def reference_is_http_url(v):  # is_http_url as it was: every URL through urlsplit
        if not isinstance(v, str) or len(v) > ap.MAX_URL_LENGTH or not v.startswith(("https://", "http://")):
            return False
        return re.search(r"\s", v) is None and ap._has_host(v)

    reference_host_of = ap._split_host  # host_of as it was, and as it still is for other URLs

    def reference_depth_ok(doc, limit=ap.MAX_DEPTH):
        stack = [(doc, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > limit:
                return False
            if isinstance(node, dict):
                stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
            elif isinstance(node, list):
                stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
        return True

    rng = random.Random(7)
    schemes = ["https://", "http://", "HTTPS://", "ftp://", "https:/", ""]
    users = ["", "", "", "bob@", "a:b@", "@"]
    hosts = ["example.org", "Example.ORG", "a-b.c_d", "127.0.0.1", "[::1]", "[::1", "x%41y", "", ".", "ex ample",
             "exämple.org", "host\u00a0name", "h!$&'()*+,;=~"]
    ports = ["", "", ":443", ":80", ":8080", ":0", ":00443", ":65535", ":65536", ":99999", ":", ":12ab", ":123456"]
    paths = ["", "/", "/users/a", "/a b", "/a\u2003b", "?q=1", "#frag", "/p?x#y", "/\u00e9t\u00e9", "/tab\t", "/[x]", "@x"]
    for _ in range(6000):
        url = rng.choice(schemes) + rng.choice(users) + rng.choice(hosts) + rng.choice(ports) + rng.choice(paths)
        assert ap.is_http_url(url) == reference_is_http_url(url), url
        ap._host_of.cache_clear()
        assert ap.host_of(url) == reference_host_of(url), url

    def random_doc(depth):
        if depth == 0 or rng.random() < 0.3:
            return rng.choice([1, "x", None, True, 2.5])
        if rng.random() < 0.5:
            return [random_doc(depth - 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}": random_doc(depth - 1) for i in range(rng.randint(0, 3))}

    def nested(levels):  # exactly this many levels of objects and arrays, with random siblings
        doc = random_doc(2) if levels == 0 else None
        for _ in range(levels):
            doc = rng.choice([[random_doc(1), doc], {"a": doc, "b": random_doc(1)}])
        return doc

    docs = [random_doc(rng.randint(1, 30)) for _ in range(2000)]
    docs += [nested(n) for n in range(18, 30) for _ in range(5)]
    assert any(not reference_depth_ok(d) for d in docs) and any(reference_depth_ok(d) for d in docs)
    for doc in docs:
        try:
            ap._check_depth(doc)
            ok = True
        except ap.InvalidObject:
            ok = False
        assert ok == reference_depth_ok(doc)
