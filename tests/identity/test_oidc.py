"""Single sign-on against a real OpenID provider on loopback, driven by Mastodon.py and a browser
played with requests: first sign-in creates the account with profile fields from the claims, groups
make admins (and demote at the next sign-in), passwords can be switched off, logout reaches the
provider's end-session endpoint, and bad answers are refused cleanly."""

from __future__ import annotations

import re

import requests
from mastodon import Mastodon, MastodonAPIError, MastodonIllegalArgumentError

from tests.identity.conftest import Browser, query_of, sso_env

ALICE = {"preferred_username": "alice.smith@example.com", "name": "Alice Smith", "email": "alice@example.com",
         "email_verified": True, "department": "Engineering", "job_title": "Staff Engineer",
         "groups": ["everyone", "crosstalk-admins"]}


def _app(instance) -> tuple[str, str]:
    return Mastodon.create_app("sso tests", api_base_url=instance.base_url, scopes=["read", "write", "admin:read"])


def _log_in(instance, provider, sub: str) -> Mastodon:
    client_id, client_secret = _app(instance)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=instance.base_url)
    code = Browser(instance, provider).authorize(api.auth_request_url(scopes=["read", "write", "admin:read"]), sub)
    api.log_in(code=code, scopes=["read", "write", "admin:read"])
    return api


def test_first_sign_in_creates_the_account_and_groups_give_and_take_the_admin_role(make_instance, provider, tmp_path):
    instance = make_instance("a", env=sso_env(provider, tmp_path, CROSSTALK_OIDC_ADMIN_GROUPS="crosstalk-admins"))
    provider.set_user("sub-alice", ALICE)
    api = _log_in(instance, provider, "sub-alice")
    me = api.account_verify_credentials()
    assert me["username"] == "alice_smith"  # derived from preferred_username: the part before @, dots → _
    assert me["display_name"] == "Alice Smith"
    fields = {f["name"]: f["value"] for f in me["fields"]}
    assert fields == {"Department": "Engineering", "Title": "Staff Engineer"}
    assert requests.get(f"{instance.base_url}/api/v1/admin/accounts", timeout=10,
                        headers={"Authorization": f"Bearer {api.access_token}"}).status_code == 200
    users = instance.cli("admin", "list-users").stdout
    assert re.search(r"alice_smith\s+alice@example.com\s+admin", users), users

    # Removed from the admin group, with a new department: the next sign-in demotes and refreshes.
    provider.set_user("sub-alice", {**ALICE, "groups": ["everyone"], "department": "Sales"})
    again = _log_in(instance, provider, "sub-alice")
    me2 = again.account_verify_credentials()
    assert me2["id"] == me["id"]  # the same account: linked by (issuer, subject)
    assert {f["name"]: f["value"] for f in me2["fields"]}["Department"] == "Sales"
    assert requests.get(f"{instance.base_url}/api/v1/admin/accounts", timeout=10,
                        headers={"Authorization": f"Bearer {again.access_token}"}).status_code == 403
    assert re.search(r"alice_smith\s+alice@example.com\s+user", instance.cli("admin", "list-users").stdout)
    log = instance.cli("admin", "audit-log", "--json").stdout
    assert '"action":"account.role"' in log and '"action":"login.success"' in log and '"action":"sso.link"' in log

    # A second person whose name clashes gets a number added.
    provider.set_user("sub-other", {**ALICE, "email": "other@example.com", "groups": []})
    other = _log_in(instance, provider, "sub-other").account_verify_credentials()
    assert other["username"] == "alice_smith2"


def test_local_passwords_off_leaves_only_single_sign_on(make_instance, provider, tmp_path):
    instance = make_instance("a", env=sso_env(provider, tmp_path, CROSSTALK_AUTH_LOCAL_PASSWORDS="false",
                                              CROSSTALK_PASSWORD_GRANT="true"))
    instance.create_user("carol")
    client_id, client_secret = _app(instance)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=instance.base_url)
    try:
        api.log_in("carol@example.test", "correct horse battery", scopes=["read"])
        raise AssertionError("the password grant must be refused")
    except (MastodonAPIError, MastodonIllegalArgumentError) as exc:
        assert "unsupported_grant_type" in str(exc) or "disabled" in str(exc)
    page = requests.get(api.auth_request_url(scopes=["read"]), timeout=10).text
    assert 'id="sso-sign-in"' in page and 'name="password"' not in page  # one button, no password form
    provider.set_user("sub-dave", {"preferred_username": "dave", "email": "dave@example.com"})
    code = Browser(instance, provider).authorize(api.auth_request_url(scopes=["read"]), "sub-dave")
    api.log_in(code=code, scopes=["read"])
    assert api.account_verify_credentials()["username"] == "dave"


def test_logout_reaches_the_providers_end_session_endpoint(make_instance, provider, tmp_path):
    instance = make_instance("a", env=sso_env(provider, tmp_path))
    provider.set_user("sub-erin", {"preferred_username": "erin", "email": "erin@example.com"})
    browser = Browser(instance, provider)
    answer = browser.sign_in_at_provider(f"{instance.base_url}/auth/oidc/start?return_to=/oauth/authorize", "sub-erin")
    assert answer.status_code == 302 and "crosstalk_session" in browser.session.cookies
    out = browser.get(f"{instance.base_url}/auth/sign_out")
    assert out.status_code == 302
    end_session = out.headers["Location"]
    assert end_session.startswith(f"{provider.issuer}/oauth2/end_session?")
    assert query_of(end_session)["post_logout_redirect_uri"] == f"{instance.base_url}/auth/signed_out"
    confirm = browser.get(end_session)
    assert confirm.status_code == 200 and "/oauth2/end_session" in provider.requests
    assert "crosstalk_session" not in browser.session.cookies


def test_replayed_or_forged_answers_and_a_provider_that_is_down_are_refused_cleanly(make_instance, provider, tmp_path):
    instance = make_instance("a", env=sso_env(provider, tmp_path))
    provider.set_user("sub-fay", {"preferred_username": "fay", "email": "fay@example.com"})
    browser = Browser(instance, provider)
    to_provider = browser.get(f"{instance.base_url}/auth/oidc/start")
    back = browser.session.post(to_provider.headers["Location"], data={"sub": "sub-fay"}, timeout=10,
                                allow_redirects=False)
    callback = back.headers["Location"]
    # A state that was never issued: refused before the code is even looked at.
    forged = callback.replace(f"state={query_of(callback)['state']}", "state=forged")
    refused = browser.get(forged)
    assert refused.status_code == 403 and "expired or was already used" in refused.text
    assert browser.get(callback).status_code == 302  # the real answer signs in
    replay = browser.get(callback)  # the same answer again: its state was used up
    assert replay.status_code == 403 and "Sign-in refused" in replay.text
    # The provider rotates its signing key: the next sign-in still works (the new key set is fetched).
    provider.rotate_keys()
    assert Browser(instance, provider).sign_in_at_provider(f"{instance.base_url}/auth/oidc/start", "sub-fay"
                                                           ).status_code == 302
    log = instance.cli("admin", "audit-log", "--action", "login.failure", "--json").stdout
    assert "unknown, expired or reused state" in log
    # The provider goes away: a clear page, not a 500.
    provider.close()
    started = requests.get(f"{instance.base_url}/auth/oidc/start", timeout=30, allow_redirects=False)
    assert started.status_code == 302  # the discovery document is cached; the provider is not asked yet
    back = query_of(started.headers["Location"])
    down = requests.get(f"{instance.base_url}/auth/oidc/callback", params={"state": back["state"], "code": "x"},
                        timeout=30, allow_redirects=False)
    assert down.status_code == 502 and "cannot be reached" in down.text


def test_xtalk_login_goes_through_single_sign_on(make_instance, provider, tmp_path):
    from tests.cli.conftest import Xtalk
    instance = make_instance("a", env=sso_env(provider, tmp_path, CROSSTALK_AUTH_LOCAL_PASSWORDS="false"))
    provider.set_user("sub-gil", {"preferred_username": "gil", "email": "gil@example.com", "name": "Gil"})
    xtalk = Xtalk(tmp_path / "xdg")
    proc = xtalk.popen("login", instance.base_url, "--name", "work", stdin=-1, stdout=-1, stderr=-1)
    try:
        url = ""
        while not url:
            line = proc.stderr.readline()
            assert line, "xtalk ended before printing an address"
            if "/oauth/authorize?" in line:
                url = line.strip()
        code = Browser(instance, provider).authorize(url, "sub-gil")
        proc.stdin.write(code + "\n")
        proc.stdin.close()
        out = proc.stdout.read()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert f"Logged in as @gil@{instance.domain}" in out
    assert xtalk("whoami").stdout.startswith(f"@gil@{instance.domain}")


def test_a_token_refresh_asks_the_provider_again_for_groups(make_instance, provider, tmp_path):
    """Groups are re-checked at every Crosstalk token refresh, not only at sign-in: the provider's
    refresh token (kept sealed from the sign-in) gets the person's current groups."""
    instance = make_instance("a", env=sso_env(provider, tmp_path, CROSSTALK_OIDC_ADMIN_GROUPS="crosstalk-admins",
                                              CROSSTALK_OIDC_ALLOWED_GROUPS="everyone"))
    provider.set_user("sub-alice", ALICE)
    client_id, client_secret = _app(instance)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=instance.base_url)
    code = Browser(instance, provider).authorize(api.auth_request_url(scopes=["read", "write", "admin:read"]),
                                                 "sub-alice")
    token_url = f"{instance.base_url}/oauth/token"
    app = {"client_id": client_id, "client_secret": client_secret}
    first = requests.post(token_url, timeout=10, data={**app, "grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}).json()
    sealed = instance.sql("SELECT sealed FROM identity_refresh_tokens")
    assert len(sealed) == 1 and sealed[0][0] and "refresh" not in sealed[0][0]

    def admin_status(access_token: str) -> int:
        return requests.get(f"{instance.base_url}/api/v1/admin/accounts", timeout=10,
                            headers={"Authorization": f"Bearer {access_token}"}).status_code

    assert admin_status(first["access_token"]) == 200
    # Taken out of the admin group at the provider: the next refresh demotes, no new sign-in needed.
    provider.set_user("sub-alice", {**ALICE, "groups": ["everyone"], "department": "Sales"})
    second = requests.post(token_url, timeout=10, data={**app, "grant_type": "refresh_token",
                                                        "refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    assert admin_status(second.json()["access_token"]) == 403
    me = Mastodon(access_token=second.json()["access_token"], api_base_url=instance.base_url).me()
    assert {f["name"]: f["value"] for f in me["fields"]}["Department"] == "Sales"
    # Out of the allowed groups: the refresh is refused and the account is shut off.
    provider.set_user("sub-alice", {**ALICE, "groups": []})
    third = requests.post(token_url, timeout=10, data={**app, "grant_type": "refresh_token",
                                                       "refresh_token": second.json()["refresh_token"]})
    assert third.status_code == 400 and third.json()["error"] == "invalid_grant"
    assert requests.get(f"{instance.base_url}/api/v1/accounts/verify_credentials", timeout=10,
                        headers={"Authorization": f"Bearer {second.json()['access_token']}"}).status_code == 401
    log = instance.cli("admin", "audit-log", "--json").stdout
    assert '"action":"account.role"' in log and '"action":"account.suspend"' in log
    assert first["refresh_token"] not in log and second.json()["refresh_token"] not in log
