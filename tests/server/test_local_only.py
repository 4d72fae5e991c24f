"""Local-only posts are for the signed-in users of this instance: no read path shows them to a caller
without a user token (anonymous, an invalid token, an app-only token), and every one shows them to a
signed-in local user."""

from __future__ import annotations

import requests


def _app_token(base: str) -> str:
    app = requests.post(f"{base}/api/v1/apps", data={"client_name": "reader", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                                                      "scopes": "read"}, timeout=10).json()
    token = requests.post(f"{base}/oauth/token", data={"grant_type": "client_credentials", "client_id": app["client_id"],
                                                       "client_secret": app["client_secret"], "scope": "read"},
                          timeout=10).json()
    return token["access_token"]


def test_local_only_posts_are_never_shown_without_a_user_token(instance):
    base = instance.base_url
    instance.create_user("alice")
    instance.create_user("bob")
    alice = {"Authorization": f"Bearer {instance.token('alice')}"}
    bob = {"Authorization": f"Bearer {instance.token('bob')}"}

    def post(status: str, **extra: object) -> dict:
        r = requests.post(f"{base}/api/v1/statuses", json={"status": status, **extra}, headers=alice, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    everyone = post("for everyone #lunch")
    inside = post("inside only #lunch", local_only=True,
                  poll={"options": ["soup", "salad"], "expires_in": 3600})
    reply = post("a local-only reply", in_reply_to_id=everyone["id"], local_only=True)
    reply_to_inside = post("replies to local-only posts stay inside", in_reply_to_id=inside["id"])
    assert inside["local_only"] and reply["local_only"] and reply_to_inside["local_only"]
    assert requests.post(f"{base}/api/v1/statuses/{inside['id']}/pin", headers=alice, timeout=10).status_code == 200
    account_id = everyone["account"]["id"]
    hidden = {inside["id"], reply["id"], reply_to_inside["id"]}

    listings = [
        "/api/v1/timelines/public", "/api/v1/timelines/public?local=true", "/api/v1/timelines/tag/lunch",
        "/api/v1/timelines/tag/lunch?local=true", f"/api/v1/accounts/{account_id}/statuses",
        f"/api/v1/accounts/{account_id}/statuses?pinned=true", f"/api/v1/accounts/{account_id}/statuses?tagged=lunch",
    ]
    singles = [f"/api/v1/statuses/{inside['id']}", f"/api/v1/statuses/{reply['id']}",
               f"/api/v1/statuses/{inside['id']}/context", f"/api/v1/statuses/{inside['id']}/favourited_by",
               f"/api/v1/statuses/{inside['id']}/reblogged_by", f"/api/v1/polls/{inside['poll']['id']}"]
    searches = [inside["url"], inside["uri"], reply["url"]]

    outsiders = {"anonymous": {}, "invalid token": {"Authorization": "Bearer not-a-token"},
                 "app-only token": {"Authorization": f"Bearer {_app_token(base)}"}}
    for who, headers in outsiders.items():
        for path in listings:
            r = requests.get(base + path, headers=headers, timeout=10)
            if who == "invalid token":
                assert r.status_code == 401, (who, path, r.status_code)
                continue
            assert r.status_code == 200, (who, path, r.text)
            shown = {s["id"] for s in r.json()}
            assert not shown & hidden, (who, path)
            if "pinned" not in path:
                assert everyone["id"] in shown or "local=true" not in path and "tag" not in path, (who, path)
        for path in singles:
            r = requests.get(base + path, headers=headers, timeout=10)
            assert r.status_code in (401, 404), (who, path, r.status_code, r.text)
        context = requests.get(f"{base}/api/v1/statuses/{everyone['id']}/context", headers=headers, timeout=10)
        if who != "invalid token":
            assert context.status_code == 200 and context.json()["descendants"] == [], (who, context.text)
        for url in searches:
            r = requests.get(f"{base}/api/v2/search", params={"q": url}, headers=headers, timeout=10)
            assert r.status_code == 401 or r.json()["statuses"] == [], (who, url, r.text)

    # Every one of those read paths shows them to a signed-in user of this instance.
    for path in listings[:-1]:
        shown = {s["id"] for s in requests.get(base + path, headers=bob, timeout=10).json()}
        assert inside["id"] in shown, path
    for path in singles:
        assert requests.get(base + path, headers=bob, timeout=10).status_code == 200, path
    descendants = requests.get(f"{base}/api/v1/statuses/{everyone['id']}/context", headers=bob, timeout=10).json()
    assert [s["id"] for s in descendants["descendants"]] == [reply["id"]]
    found = requests.get(f"{base}/api/v2/search", params={"q": inside["url"]}, headers=bob, timeout=10).json()
    assert [s["id"] for s in found["statuses"]] == [inside["id"]]

    # The HTML page and the ActivityPub document already refused them; they still do.
    assert requests.get(inside["url"], timeout=10).status_code == 404
    assert requests.get(inside["uri"], headers={"Accept": "application/activity+json"}, timeout=10).status_code in (401, 404)
