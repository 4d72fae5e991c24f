import pytest

from federation.addressing import (
    VISIBILITIES,
    address_for_visibility,
    inboxes_for,
    visibility_from_addressing,
)
from federation.models import AS_PUBLIC

FOLLOWERS = "https://local.example/users/alice/followers"
MENTIONS = ["https://remote.example/users/bob", "https://other.example/users/carol"]


def test_mastodon_table():
    assert address_for_visibility("public", FOLLOWERS, MENTIONS) == ([AS_PUBLIC], [FOLLOWERS, *MENTIONS])
    assert address_for_visibility("unlisted", FOLLOWERS, MENTIONS) == ([FOLLOWERS], [AS_PUBLIC, *MENTIONS])
    assert address_for_visibility("private", FOLLOWERS, MENTIONS) == ([FOLLOWERS], MENTIONS)
    assert address_for_visibility("direct", FOLLOWERS, MENTIONS) == (MENTIONS, [])


@pytest.mark.parametrize(
    ("visibility", "mentions"),
    [(v, m) for v in VISIBILITIES for m in ([], MENTIONS) if v != "direct" or m],  # a DM needs recipients
)
def test_round_trip(visibility, mentions):
    to, cc = address_for_visibility(visibility, FOLLOWERS, mentions)
    assert visibility_from_addressing(to, cc, FOLLOWERS) == visibility


def test_duplicate_mentions_collapse():
    to, cc = address_for_visibility("public", FOLLOWERS, [MENTIONS[0], MENTIONS[0]])
    assert cc == [FOLLOWERS, MENTIONS[0]]


def test_unknown_visibility():
    with pytest.raises(ValueError):
        address_for_visibility("limited", FOLLOWERS, [])


@pytest.mark.parametrize("public", [AS_PUBLIC, "as:Public", "Public"])
def test_classification_accepts_public_forms(public):
    assert visibility_from_addressing([public], [], FOLLOWERS) == "public"
    assert visibility_from_addressing([FOLLOWERS], [public], FOLLOWERS) == "unlisted"


def test_classification_edge_cases():
    # Followers in cc only still means followers-only for us (Mastodon: direct).
    assert visibility_from_addressing(MENTIONS, [FOLLOWERS], FOLLOWERS) == "private"
    assert visibility_from_addressing([FOLLOWERS], [], None) == "direct"
    assert visibility_from_addressing([], [], FOLLOWERS) == "direct"
    assert visibility_from_addressing(iter([AS_PUBLIC]), iter([]), FOLLOWERS) == "public"


def test_inboxes_for_prefers_shared_and_dedupes():
    recipients = [
        ("https://a.example/users/1/inbox", "https://a.example/inbox"),
        ("https://a.example/users/2/inbox", "https://a.example/inbox"),
        ("https://gts.example/users/x/inbox", None),  # GoToSocial: no shared inbox
        ("https://gts.example/users/x/inbox", None),
        ("https://b.example/users/3/inbox", ""),
    ]
    assert inboxes_for(recipients) == [
        "https://a.example/inbox",
        "https://gts.example/users/x/inbox",
        "https://b.example/users/3/inbox",
    ]
    assert inboxes_for([]) == []
