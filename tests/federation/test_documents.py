import datetime

import msgspec
import pytest

from federation.documents import (
    Attachment,
    Hashtag,
    Mention,
    activity,
    format_datetime,
    host_meta_xrd,
    instance_actor_username,
    nodeinfo,
    nodeinfo_links,
    note_object,
    ordered_collection,
    ordered_collection_page,
    parse_webfinger_resource,
    person_actor,
    tombstone,
    webfinger_jrd,
)
from federation.models import AS_PUBLIC, parse_actor, parse_note

BASE = "https://local.example"
ALICE = BASE + "/users/alice"


def test_webfinger_jrd():
    jrd = webfinger_jrd("alice", "local.example", ALICE, BASE + "/@alice")
    assert jrd["subject"] == "acct:alice@local.example"
    assert jrd["aliases"] == [BASE + "/@alice", ALICE]
    rels = {link["rel"]: link for link in jrd["links"]}
    assert rels["self"] == {"rel": "self", "type": "application/activity+json", "href": ALICE}
    assert rels["http://webfinger.net/rel/profile-page"]["href"] == BASE + "/@alice"
    assert (
        rels["http://ostatus.org/schema/1.0/subscribe"]["template"]
        == BASE + "/authorize_interaction?uri={uri}"
    )


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("acct:alice@local.example", ("acct", "alice")),
        ("acct:alice@LOCAL.example", ("acct", "alice")),
        ("acct:alice%40local.example", ("acct", "alice")),
        ("alice@local.example", ("acct", "alice")),
        ("@alice@local.example", ("acct", "alice")),
        ("acct:alice@www.local.example", ("acct", "alice")),
        (ALICE, ("url", ALICE)),
        (BASE + "/@alice", ("url", BASE + "/@alice")),
        ("https://www.local.example/@alice", ("url", "https://www.local.example/@alice")),
        ("acct:bob@remote.example", None),
        ("https://remote.example/users/bob", None),
    ],
)
def test_parse_webfinger_resource(resource, expected):
    assert parse_webfinger_resource(resource, "local.example", web_domain="www.local.example") == expected


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "alice",
        "acct:",
        "acct:@local.example",
        "acct:alice@",
        "a b@local.example",
        "https://",
        "acct:a@b@local.example",
    ],
)
def test_parse_webfinger_resource_bad(resource):
    with pytest.raises(ValueError):
        parse_webfinger_resource(resource, "local.example")


def test_instance_actor_username_never_holds_a_colon():
    assert instance_actor_username("social.example") == "social.example"  # Mastodon's acct:<domain>@<domain>
    assert instance_actor_username("127.0.0.1:8080") == "127.0.0.1.8080"
    assert instance_actor_username("Social.Example:443") == "social.example.443"
    assert ":" not in instance_actor_username("[::1]:8080")


def test_parse_webfinger_resource_instance_actor_with_a_port():
    domain = "127.0.0.1:8080"
    assert parse_webfinger_resource(f"acct:{domain}@{domain}", domain) == ("acct", domain)
    assert parse_webfinger_resource(f"acct:127.0.0.1.8080@{domain}", domain) == ("acct", "127.0.0.1.8080")
    with pytest.raises(ValueError):  # a ':' only where the user part is the domain itself
        parse_webfinger_resource(f"acct:alice:1@{domain}", domain)


def test_note_replies_may_embed_the_collection():
    replies = ordered_collection(ALICE + "/statuses/1/replies", 0,
                                 first=ordered_collection_page(ALICE + "/statuses/1/replies?page=true",
                                                               ALICE + "/statuses/1/replies", []))
    note = note_object(id=ALICE + "/statuses/1", url=ALICE + "/statuses/1", attributed_to=ALICE, to=[AS_PUBLIC],
                       cc=[], content="<p>hi</p>", published=0, replies=replies)
    assert "@context" not in note["replies"] and note["replies"]["first"]["orderedItems"] == []


def test_host_meta_and_nodeinfo_links():
    xrd = host_meta_xrd(BASE + "/")
    assert (
        'rel="lrdd"' in xrd and 'template="https://local.example/.well-known/webfinger?resource={uri}"' in xrd
    )
    links = nodeinfo_links(BASE)["links"]
    assert [link["href"] for link in links] == [BASE + "/nodeinfo/2.0", BASE + "/nodeinfo/2.1"]
    assert links[0]["rel"] == "http://nodeinfo.diaspora.software/ns/schema/2.0"


def test_nodeinfo_versions():
    args = dict(
        software_version="0.1.0",
        users_total=10,
        users_active_month=5,
        users_active_halfyear=7,
        local_posts=100,
        open_registrations=False,
        metadata={"nodeName": "Crosstalk"},
    )
    v20 = nodeinfo("2.0", **args, repository="https://git.example/crosstalk")
    assert v20["version"] == "2.0" and v20["software"] == {"name": "crosstalk", "version": "0.1.0"}
    assert v20["protocols"] == ["activitypub"] and v20["openRegistrations"] is False
    assert v20["usage"] == {"users": {"total": 10, "activeMonth": 5, "activeHalfyear": 7}, "localPosts": 100}
    assert v20["metadata"] == {"nodeName": "Crosstalk"}
    v21 = nodeinfo(
        "2.1", **args, repository="https://git.example/crosstalk", homepage="https://crosstalk.example"
    )
    assert v21["software"]["repository"] == "https://git.example/crosstalk"
    assert v21["software"]["homepage"] == "https://crosstalk.example"
    with pytest.raises(ValueError):
        nodeinfo("1.0", **args)  # type: ignore[arg-type]


def test_person_actor_round_trips_through_reader():
    doc = person_actor(
        id=ALICE,
        username="alice",
        display_name="Alice",
        summary_html="<p>hi</p>",
        inbox=ALICE + "/inbox",
        outbox=ALICE + "/outbox",
        followers=ALICE + "/followers",
        following=ALICE + "/following",
        featured=ALICE + "/collections/featured",
        shared_inbox=BASE + "/inbox",
        public_key_pem="-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n",
        url=BASE + "/@alice",
        published=datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC),
        manually_approves_followers=True,
        discoverable=True,
        icon_url=BASE + "/a.png",
        icon_media_type="image/png",
        image_url=BASE + "/h.jpg",
        fields=[("Site", '<a href="https://a.example">a.example</a>')],
    )
    msgspec.json.encode(doc)
    assert doc["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert doc["publicKey"] == {
        "id": ALICE + "#main-key",
        "owner": ALICE,
        "publicKeyPem": doc["publicKey"]["publicKeyPem"],
    }
    assert doc["published"] == "2026-01-02T03:04:05Z"
    assert doc["icon"] == {"type": "Image", "url": BASE + "/a.png", "mediaType": "image/png"}
    assert doc["attachment"] == [
        {"type": "PropertyValue", "name": "Site", "value": '<a href="https://a.example">a.example</a>'}
    ]
    a = parse_actor(doc)
    assert (a.preferred_username, a.shared_inbox, a.manually_approves_followers) == (
        "alice",
        BASE + "/inbox",
        True,
    )
    assert a.public_key_id == ALICE + "#main-key" and a.image_url == BASE + "/h.jpg"
    app = person_actor(
        id=BASE + "/actor",
        username="local.example",
        display_name="",
        summary_html="",
        inbox=BASE + "/actor/inbox",
        outbox=BASE + "/actor/outbox",
        followers=BASE + "/actor/followers",
        following=BASE + "/actor/following",
        featured=BASE + "/actor/featured",
        shared_inbox=None,
        public_key_pem="k",
        url=BASE + "/about",
        published=0,
        actor_type="Application",
    )
    assert app["type"] == "Application" and app["endpoints"] == {} and "icon" not in app
    assert app["published"] == "1970-01-01T00:00:00Z"


def test_note_object_round_trips_through_reader():
    doc = note_object(
        id=ALICE + "/statuses/1",
        url=BASE + "/@alice/1",
        attributed_to=ALICE,
        to=[AS_PUBLIC],
        cc=[ALICE + "/followers", "https://remote.example/users/bob"],
        content="<p>hi @bob #cats</p>",
        published=1_780_000_000,
        language="en",
        summary="cw",
        sensitive=True,
        in_reply_to="https://remote.example/users/bob/statuses/9",
        updated=datetime.datetime(2026, 8, 1, 12, 0),
        mentions=[Mention("https://remote.example/users/bob", "@bob@remote.example")],
        hashtags=[Hashtag("cats", BASE + "/tags/cats")],
        attachments=[
            Attachment(
                url=BASE + "/m/1.png",
                media_type="image/png",
                name="alt",
                blurhash="UBL_",
                focal_point=(0.1, -0.2),
                width=10,
                height=20,
            )
        ],
        replies=ALICE + "/statuses/1/replies",
        context=BASE + "/contexts/1",
    )
    msgspec.json.encode(doc)
    assert doc["type"] == "Note" and doc["contentMap"] == {"en": "<p>hi @bob #cats</p>"}
    assert doc["updated"] == "2026-08-01T12:00:00Z"
    assert doc["tag"] == [
        {"type": "Mention", "href": "https://remote.example/users/bob", "name": "@bob@remote.example"},
        {"type": "Hashtag", "href": BASE + "/tags/cats", "name": "#cats"},
    ]
    assert doc["attachment"][0] == {
        "type": "Document",
        "mediaType": "image/png",
        "url": BASE + "/m/1.png",
        "name": "alt",
        "blurhash": "UBL_",
        "focalPoint": [0.1, -0.2],
        "width": 10,
        "height": 20,
    }
    n = parse_note(doc)
    assert n.to == [AS_PUBLIC] and n.language == "en" and n.sensitive and n.summary == "cw"
    assert n.context == BASE + "/contexts/1" and n.replies == ALICE + "/statuses/1/replies"
    assert n.attachments[0].focal_point == (0.1, -0.2)
    plain = note_object(
        id=ALICE + "/statuses/2",
        url=BASE + "/@alice/2",
        attributed_to=ALICE,
        to=[],
        cc=[],
        content="x",
        published="2026-08-01T00:00:00Z",
    )
    assert (
        "updated" not in plain
        and "contentMap" not in plain
        and plain["tag"] == []
        and plain["attachment"] == []
    )
    assert plain["summary"] is None and plain["inReplyTo"] is None


def test_activity_and_collections():
    note = note_object(
        id=ALICE + "/statuses/1",
        url="u",
        attributed_to=ALICE,
        to=[AS_PUBLIC],
        cc=[],
        content="x",
        published=0,
    )
    act = activity("Create", ALICE + "/statuses/1/activity", ALICE, note, to=[AS_PUBLIC], cc=[], published=0)
    assert act["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert "@context" not in act["object"] and "@context" in note  # caller's dict untouched
    assert act["to"] == [AS_PUBLIC] and act["published"] == "1970-01-01T00:00:00Z"
    follow = activity("Follow", ALICE + "#follows/1", ALICE, "https://remote.example/users/bob")
    assert follow["object"] == "https://remote.example/users/bob" and "to" not in follow
    delete = activity(
        "Delete", ALICE + "/statuses/1#delete", ALICE, tombstone(ALICE + "/statuses/1"), to=[AS_PUBLIC]
    )
    assert delete["object"] == {"id": ALICE + "/statuses/1", "type": "Tombstone"}

    coll = ordered_collection(ALICE + "/outbox", 42, first=ALICE + "/outbox?page=true")
    assert coll == {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": ALICE + "/outbox",
        "type": "OrderedCollection",
        "totalItems": 42,
        "first": ALICE + "/outbox?page=true",
    }
    inline = ordered_collection(ALICE + "/featured", 1, items=[note])
    assert inline["orderedItems"][0]["id"] == note["id"] and "@context" not in inline["orderedItems"][0]
    page = ordered_collection_page(
        ALICE + "/outbox?page=2", ALICE + "/outbox", [act], next=ALICE + "/outbox?page=3"
    )
    assert page["type"] == "OrderedCollectionPage" and page["partOf"] == ALICE + "/outbox"
    assert page["next"] == ALICE + "/outbox?page=3" and "prev" not in page
    assert "@context" not in page["orderedItems"][0]


def test_format_datetime():
    assert (
        format_datetime(
            datetime.datetime(2026, 1, 1, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
        )
        == "2026-01-01T00:00:00Z"
    )
    assert format_datetime(0.9) == "1970-01-01T00:00:00Z"
