"""Search (statuses by full text, accounts, hashtags) through Mastodon.py and plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import Instance

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    inst = Instance(tmp_path_factory.mktemp("search") / "a", {})
    inst.start()
    yield inst
    inst.dispose()


@pytest.fixture(scope="module")
def users(instance: Instance) -> dict[str, Any]:
    for name in ("alice", "bob", "carol", "dave"):
        instance.create_user(name, PASSWORD)
    return {name: instance.api(name) for name in ("alice", "bob", "carol", "dave")}


def status_ids(api: Any, q: str, **kwargs: Any) -> list[str]:
    return [s["id"] for s in api.search_v2(q, result_type="statuses", **kwargs)["statuses"]]


def test_full_text_search_respects_visibility(instance, users):
    alice, bob, carol, dave = users["alice"], users["bob"], users["carol"], users["dave"]
    carol.account_follow(bob.me()["id"])
    public = bob.status_post("The quarterly budget spreadsheet is ready for review")
    private = bob.status_post("Secret budget numbers for the board", visibility="private")
    direct = bob.status_post("@alice let us talk about the budget privately", visibility="direct")
    cafe = bob.status_post("Meeting at the Café Zoë on Friday", spoiler_text="Lunch plans")

    # alice does not follow bob: the public post and the one mentioning her, never the followers-only one.
    assert set(status_ids(alice, "budget")) == {public["id"], direct["id"]}
    # carol follows bob: public and followers-only, not the direct message to alice.
    assert set(status_ids(carol, "budget")) == {public["id"], private["id"]}
    assert set(status_ids(bob, "budget")) == {public["id"], private["id"], direct["id"]}
    assert status_ids(dave, "budget") == [public["id"]]

    # Diacritics and case do not matter; the content warning is searched too.
    assert status_ids(dave, "cafe zoe") == [cafe["id"]]
    assert status_ids(dave, "LUNCH") == [cafe["id"]]
    # Phrases, exclusions, and the rendered result's shape.
    assert status_ids(carol, '"quarterly budget"') == [public["id"]]
    assert status_ids(carol, "budget -spreadsheet") == [private["id"]]
    found = alice.search_v2("spreadsheet", result_type="statuses")["statuses"][0]
    assert found["account"]["acct"] == "bob" and "spreadsheet" in found["content"]

    # Edits and deletions reach the index.
    bob.status_update(public["id"], "The yearly forecast spreadsheet is ready for review")
    assert status_ids(dave, "budget") == []
    assert status_ids(dave, "forecast") == [public["id"]]
    bob.status_delete(public["id"])
    assert status_ids(dave, "forecast") == []

    # Blocking hides the blocked account's posts; account_id narrows to one author.
    carol.account_block(bob.me()["id"])
    assert status_ids(carol, "budget") == []
    carol.account_unblock(bob.me()["id"])
    own = carol.status_post("my own budget note")
    assert status_ids(carol, "budget", account_id=carol.me()["id"]) == [own["id"]]
    assert set(status_ids(carol, "budget")) == {own["id"]}  # unblocking did not restore the follow

    # The index still matches the statuses table after the edits and deletions (FTS5's own check; on
    # PostgreSQL, every stored document equals the one computed from the row now).
    if instance.on_postgres:
        assert instance.sql("SELECT count(*) FROM statuses WHERE search_document IS DISTINCT FROM"
                            " crosstalk_search_document(source_text, spoiler_text)") == [(0,)]
    else:
        instance.sql("INSERT INTO status_search (status_search, rank) VALUES ('integrity-check', 1)")

    # Anonymous callers get no statuses and may not resolve or page.
    anon = requests.get(f"{instance.base_url}/api/v2/search", params={"q": "budget"}, timeout=10)
    assert anon.status_code == 200 and anon.json()["statuses"] == []
    for extra in ({"resolve": "true"}, {"offset": "5"}):
        answer = requests.get(f"{instance.base_url}/api/v2/search", params={"q": "budget", **extra}, timeout=10)
        assert answer.status_code == 401, answer.text


def test_ranking_paging_and_links(instance, users):
    bob, dave = users["bob"], users["dave"]
    long_one = bob.status_post("kiwi " + " ".join(f"word{i}" for i in range(40)))
    strong = bob.status_post("kiwi kiwi kiwi smoothie")
    weak = bob.status_post("a kiwi in a fruit salad with apples and pears")
    assert status_ids(dave, "kiwi") == [strong["id"], weak["id"], long_one["id"]]
    assert status_ids(dave, "kiwi", limit=2) == [strong["id"], weak["id"]]
    assert status_ids(dave, "kiwi", offset=2) == [long_one["id"]]

    # A pasted link to a post or profile finds it.
    by_url = dave.search_v2(strong["url"], resolve=False)
    assert [s["id"] for s in by_url["statuses"]] == [strong["id"]]
    by_uri = dave.search_v2(strong["uri"], resolve=False)
    assert [s["id"] for s in by_uri["statuses"]] == [strong["id"]]
    profile = dave.search_v2(bob.me()["url"], resolve=False)
    assert [a["acct"] for a in profile["accounts"]] == ["bob"] and profile["statuses"] == []


def test_query_syntax_never_errors(instance, users):
    auth = {"Authorization": f"Bearer {users['alice'].access_token}"}
    users["bob"].status_post("syntax check: apples AND oranges (fresh)")
    queries = ['"', '""', "*", "apples*", "(apples", "apples AND", "AND", "OR apples", "NOT", "-", "-apples",
               "a:b", "text:apples", "^apples", "NEAR(apples oranges)", '"unbalanced', "'", "\\", "%", "_",
               "apples + oranges", "{apples}", "apples;DROP TABLE statuses", "\x00", "🍎", "a" * 2000,
               " ".join(["apples"] * 100)]
    for q in queries:
        for version in ("v1", "v2"):
            answer = requests.get(f"{instance.base_url}/api/{version}/search", params={"q": q}, headers=auth,
                                  timeout=10)
            assert answer.status_code == 200, (q, answer.status_code, answer.text)
            assert set(answer.json()) == {"accounts", "statuses", "hashtags"}
    found = requests.get(f"{instance.base_url}/api/v2/search", params={"q": "(apples AND oranges*"},
                         headers=auth, timeout=10).json()
    assert len(found["statuses"]) == 1
    missing = requests.get(f"{instance.base_url}/api/v2/search", headers=auth, timeout=10)
    assert missing.status_code == 400 and missing.json()["error"]
    wrong = requests.get(f"{instance.base_url}/api/v2/search", params={"q": "x", "type": "posts"}, headers=auth,
                         timeout=10)
    assert wrong.status_code == 422


def test_accounts_and_hashtags(instance, users):
    alice, bob, dave = users["alice"], users["bob"], users["dave"]
    alice.account_update_credentials(display_name="Alice Liddell", fields=[("Department", "Procurement")])
    by_field = dave.search_v2("procure", result_type="accounts")["accounts"]
    assert [a["acct"] for a in by_field] == ["alice"]
    assert [a["acct"] for a in dave.account_search("liddell")] == ["alice"]
    assert [a["acct"] for a in dave.account_search("ali")] == ["alice"]
    assert [a["acct"] for a in dave.account_search(f"@alice@{instance.domain}")] == ["alice"]
    assert dave.account_search("nobody-here") == []
    assert dave.account_search("alice", following=True) == []
    dave.account_follow(alice.me()["id"])
    assert [a["acct"] for a in dave.account_search("alice", following=True)] == ["alice"]

    bob.status_post("Kick-off for #BudgetPlanning2025 and #budget")
    tags = dave.search_v2("budgetp", result_type="hashtags")["hashtags"]
    assert [t["name"] for t in tags] == ["BudgetPlanning2025"]
    assert tags[0]["url"] == f"{instance.base_url}/tags/budgetplanning2025"
    assert int(tags[0]["history"][0]["uses"]) == 1 and tags[0]["following"] is False
    names = [t["name"] for t in dave.search_v2("budget", result_type="hashtags")["hashtags"]]
    assert names == ["budget", "BudgetPlanning2025"]
    # A hashtag nobody has used yet is offered, so it can be opened and followed.
    fresh = dave.search_v2("#brandnewtag", result_type="hashtags")["hashtags"]
    assert [t["name"] for t in fresh] == ["brandnewtag"] and fresh[0]["id"] is None
    assert [t["name"] for t in dave.search_v2("#budgetp")["hashtags"]] == ["budgetp", "BudgetPlanning2025"]
    assert dave.search_v2("brandnewtag")["hashtags"] == []

    # v1 is an alias of v2, hashtags included as entities.
    anon = requests.get(f"{instance.base_url}/api/v1/search", params={"q": "procurement"}, timeout=10).json()
    assert [a["acct"] for a in anon["accounts"]] == ["alice"]
    both = requests.get(f"{instance.base_url}/api/v1/search", params={"q": "budgetplanning"}, timeout=10).json()
    assert both["hashtags"][0]["name"] == "BudgetPlanning2025" and "following" not in both["hashtags"][0]


def test_random_queries_never_error(instance, users):
    """Fuzz: whatever people type (quotes, operators, control characters, scripts), search answers."""
    import random
    auth = {"Authorization": f"Bearer {users['carol'].access_token}"}
    users["bob"].status_post('fuzz target: "quoted" words, -dashes, a:b (parens) ünïcödé 数据 😀')
    alphabet = (list('"\'-*()[]{}:^~+&|!<>=@#%_\\/.,;?$') + [" ", " ", " ", "\t", "\n", "\x00", "\x7f", "\u200b"]
                + list("abcxyzAND OR NOT NEAR") + list("éüßøñ数据😀") + ["&&", "||", "!!", "<->", ":*", "\"\""])
    rng = random.Random(20240611)
    session = requests.Session()
    for _ in range(150):
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        answer = session.get(f"{instance.base_url}/api/v2/search", params={"q": q, "type": "statuses"},
                             headers=auth, timeout=10)
        assert answer.status_code == 200, (q, answer.status_code, answer.text)
        assert set(answer.json()) == {"accounts", "statuses", "hashtags"}
    # The odd characters are searchable text where they are words.
    found = session.get(f"{instance.base_url}/api/v2/search", params={"q": 'ünïcödé "a:b" -zzz', "type": "statuses"},
                        headers=auth, timeout=10).json()
    assert len(found["statuses"]) == 1
