"""SCIM 2.0 through plain HTTP, with the requests Microsoft Entra ID and Okta send (shapes from their
provisioning documentation): create, filter, patch, deactivate (tokens revoked, a WebSocket stream
closed), reactivate, groups carrying roles, delete (a federated follower's instance receives the
Delete of the actor), and bad input answered in SCIM's error format."""

from __future__ import annotations

import asyncio

import aiohttp
import requests

from tests.federation_e2e.conftest import FED_ENV, wait_for
from tests.server.test_access_revocation import closed_within, open_stream, verify

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_ENV = {"CROSSTALK_SCIM_ENABLED": "true", "CROSSTALK_SCIM_ADMIN_GROUPS": "Crosstalk Admins"}


class Scim:
    def __init__(self, instance, token: str) -> None:
        self.base = f"{instance.base_url}/scim/v2"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})

    def __call__(self, method: str, path: str, body: dict | None = None, **params: str) -> requests.Response:
        return self.session.request(method, self.base + path, json=body, params=params or None, timeout=10)


def scim_client(instance, name: str = "entra") -> Scim:
    token = instance.cli("admin", "scim-token", "create", name).stdout.strip()
    return Scim(instance, token)


def entra_user(user_name: str, external_id: str, **extra: object) -> dict:
    """Entra ID's create request (its default attribute mappings)."""
    return {"schemas": [USER, ENTERPRISE], "externalId": external_id, "userName": user_name, "active": True,
            "displayName": "Bjorn Jensen", "title": "Engineer",
            "emails": [{"primary": True, "type": "work", "value": user_name}],
            "meta": {"resourceType": "User"}, "name": {"formatted": "Bjorn Jensen", "familyName": "Jensen",
                                                       "givenName": "Bjorn"},
            ENTERPRISE: {"department": "Platform", "manager": {"value": ""}}, **extra}


def okta_user(login: str) -> dict:
    return {"schemas": [USER], "userName": login, "name": {"givenName": "Ola", "familyName": "Okta"},
            "emails": [{"primary": True, "value": login, "type": "work"}], "displayName": "Ola Okta",
            "locale": "en-US", "externalId": "00u1abcdEFGHijkl0h7", "groups": [], "password": "never-stored-1!",
            "active": True}


def test_entra_provisioning_filter_patch_and_errors(make_instance):
    instance = make_instance("a", env=SCIM_ENV)
    scim = scim_client(instance)
    assert scim("GET", "/ServiceProviderConfig").json()["patch"]["supported"] is True
    assert {r["id"] for r in scim("GET", "/ResourceTypes").json()["Resources"]} == {"User", "Group"}
    assert ENTERPRISE in {s["id"] for s in scim("GET", "/Schemas").json()["Resources"]}
    # Entra looks the user up first, then creates it.
    missing = scim("GET", "/Users", filter='userName eq "bjensen@contoso.com"')
    assert missing.status_code == 200 and missing.json()["totalResults"] == 0
    created = scim("POST", "/Users", entra_user("bjensen@contoso.com", "bjensen"))
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"].startswith("application/scim+json")
    user = created.json()
    assert created.headers["Location"] == user["meta"]["location"]
    assert user["userName"] == "bjensen@contoso.com" and user["active"] is True
    assert user[ENTERPRISE]["department"] == "Platform" and user["nickName"] == "bjensen"
    uid = user["id"]
    found = scim("GET", "/Users", filter='externalId eq "bjensen"', attributes="userName").json()
    assert found["totalResults"] == 1 and found["Resources"][0] == {"id": uid, "userName": "bjensen@contoso.com",
                                                                     "schemas": [USER, ENTERPRISE],
                                                                     "meta": user["meta"]}
    # Profile fields from the enterprise extension, on the Mastodon account.
    account = requests.get(f"{instance.base_url}/api/v1/accounts/{uid}", timeout=10).json()
    assert {f["name"]: f["value"] for f in account["fields"]} == {"Department": "Platform", "Title": "Engineer"}
    # Entra's capitalised ops, a filtered email path and a flattened extension path.
    patched = scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "title", "value": "Principal Engineer"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "bjorn.jensen@contoso.com"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Research"}]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Principal Engineer" and patched.json()[ENTERPRISE]["department"] == "Research"
    assert patched.json()["emails"][0]["value"] == "bjorn.jensen@contoso.com"
    # Paging: count=0 gives only the total.
    scim("POST", "/Users", entra_user("second@contoso.com", "second"))
    page = scim("GET", "/Users", startIndex="2", count="1").json()
    assert page["totalResults"] == 2 and page["startIndex"] == 2 and page["itemsPerPage"] == 1
    assert scim("GET", "/Users", count="0").json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                                                       "totalResults": 2, "startIndex": 1, "itemsPerPage": 0,
                                                       "Resources": []}
    # Bad input, each in SCIM's error format with the right scimType.
    def error(answer: requests.Response, status: int, scim_type: str | None) -> None:
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["schemas"] == [ERROR] and body["status"] == str(status) and body.get("scimType") == scim_type

    error(scim("POST", "/Users", entra_user("BJensen@contoso.com", "dup")), 409, "uniqueness")
    error(scim("GET", "/Users", filter='userName eq'), 400, "invalidFilter")
    error(scim("GET", "/Users", filter='password eq "x"'), 400, "invalidFilter")
    error(scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "id", "value": "1"}]}), 400, "mutability")
    error(scim("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "favouriteColour", "value": "red"}]}), 400, "invalidPath")
    error(scim("POST", "/Users", {**entra_user("typed@contoso.com", "t"), "active": 7}), 400, "invalidValue")
    error(scim("POST", "/Users", {"schemas": [USER], "userName": ["not", "a", "string"]}), 400, "invalidValue")
    error(scim("GET", "/Users/123"), 404, None)
    assert requests.get(f"{scim.base}/Users", timeout=10, headers={"Authorization": "Bearer wrong"}).status_code == 401
    # Nothing half-written: still two users, the refused ones absent.
    assert scim("GET", "/Users").json()["totalResults"] == 2
    log = instance.cli("admin", "audit-log", "--actor", "scim:entra", "--json").stdout
    assert '"action":"scim.user.create"' in log and '"action":"scim.user.patch"' in log
    assert "never-stored" not in log


async def test_deactivation_revokes_tokens_and_closes_streams_and_reactivation_restores(make_instance):
    instance = make_instance("a", env=SCIM_ENV)
    scim = scim_client(instance, "okta")
    # Okta: the pre-create look-up, then the create (which carries a password we never keep).
    assert (await asyncio.to_thread(scim, "GET", "/Users", filter='userName eq "ola@example.com"',
                                    startIndex="1", count="100")).json()["totalResults"] == 0
    created = await asyncio.to_thread(scim, "POST", "/Users", okta_user("ola@example.com"))
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    username = created.json()["nickName"]
    token = instance.token(username, "read write")
    assert verify(instance, token) == 200
    async with aiohttp.ClientSession() as session:
        ws = await open_stream(session, instance, token)
        # Okta deactivates with a no-path replace.
        answer = await asyncio.to_thread(scim, "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "value": {"active": False}}]})
        assert answer.status_code == 200 and answer.json()["active"] is False, answer.text
        elapsed = await closed_within(ws, 3.0)
        assert elapsed < 1.5, elapsed
    assert verify(instance, token) == 401
    assert "suspended=True" in instance.cli("admin", "account", "show", username).stdout
    # Entra's soft delete sends a string boolean; reactivation works the same way.
    back = await asyncio.to_thread(scim, "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "True"}]})
    assert back.status_code == 200 and back.json()["active"] is True, back.text
    assert verify(instance, instance.token(username, "read")) == 200
    log = instance.cli("admin", "audit-log", "--action", "account.", "--json").stdout
    assert '"action":"account.suspend"' in log and '"action":"account.unsuspend"' in log


def test_groups_carry_roles_with_entra_and_okta_member_patches(make_instance):
    instance = make_instance("a", env=SCIM_ENV)
    scim = scim_client(instance)
    one = scim("POST", "/Users", entra_user("one@contoso.com", "one")).json()["id"]
    two = scim("POST", "/Users", entra_user("two@contoso.com", "two")).json()["id"]
    group = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "Crosstalk Admins", "externalId": "g-1",
                                     "members": []})
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    added = scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": one}, {"value": two}]}]})
    assert added.status_code == 200 and len(added.json()["members"]) == 2
    users = instance.cli("admin", "list-users").stdout
    assert users.count(" admin ") == 2, users
    # Entra removes a member with a value list; Okta with a filtered path.
    scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": one}]}]})
    okta = scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{two}"]'}]})
    assert okta.status_code == 200 and okta.json()["members"] == []
    assert " admin " not in instance.cli("admin", "list-users").stdout
    # Okta renames with a no-path replace holding the id.
    renamed = scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Platform Team"}}]})
    assert renamed.json()["displayName"] == "Platform Team"
    listed = scim("GET", "/Groups", filter='displayName eq "platform team"', excludedAttributes="members").json()
    assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]
    assert scim("DELETE", f"/Groups/{gid}").status_code == 204
    assert scim("GET", f"/Groups/{gid}").status_code == 404


def test_delete_reaches_a_federated_followers_instance(make_instance):
    a = make_instance("a", env={**FED_ENV, **SCIM_ENV})
    b = make_instance("b", env=dict(FED_ENV))
    scim = scim_client(a)
    created = scim("POST", "/Users", entra_user("leaver@contoso.com", "leaver")).json()
    handle = f"{created['nickName']}@{a.domain}"
    b.create_user("bob")
    bob = b.api("bob")
    target = bob.account_lookup(handle) if False else bob.account_search(handle, resolve=True)[0]
    bob.account_follow(target["id"])
    wait_for(lambda: bob.account_relationships(target["id"])[0]["following"])
    assert scim("DELETE", f"/Users/{created['id']}").status_code == 204
    # B receives the Delete of the actor and removes the account and the follow.
    wait_for(lambda: not bob.account_relationships(target["id"])[0]["following"], timeout=30)
    assert requests.get(f"{a.base_url}/users/{created['nickName']}", timeout=10,
                        headers={"Accept": "application/activity+json"}).status_code == 410
    assert scim("GET", f"/Users/{created['id']}").status_code == 404
