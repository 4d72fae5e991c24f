"""Sign-in: failed attempts are throttled per account and per address (the right password does not get
through once the limit is reached), every attempt costs exactly one scrypt run whether or not the user
exists, and scrypt never runs on the event loop. Also the login form's escaping."""

from __future__ import annotations

import html
import re
import threading

import pytest
import requests

from server.app import create_app
from server.http.base import STATE
from server.services import accounts as account_service
from server.services import secrets as secrets_service
from server.settings import load_settings
from tests.conftest import authorize_in_browser

PASSWORD = "correct horse battery"
OOB = "urn:ietf:wg:oauth:2.0:oob"


def _app(base: str, name: str = "client") -> dict:
    return requests.post(f"{base}/api/v1/apps", data={"client_name": name, "redirect_uris": OOB,
                                                      "scopes": "read write"}, timeout=10).json()


def _password_grant(base: str, app: dict, username: str, password: str, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{base}/oauth/token", headers=headers or {}, timeout=30, data={
        "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "username": username, "password": password, "scope": "read"})


def test_failed_sign_ins_are_throttled_per_account(make_instance):
    inst = make_instance("per-account", env={"CROSSTALK_PASSWORD_GRANT": "true",
                                             "CROSSTALK_RATE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT": "5"})
    inst.create_user("alice", PASSWORD)
    inst.create_user("bob", PASSWORD)
    base = inst.base_url
    app = _app(base)
    # Successful sign-ins are not failures: they never use up the budget.
    for _ in range(7):
        assert _password_grant(base, app, "alice", PASSWORD).status_code == 200
    wrong = [_password_grant(base, app, "alice" if n % 2 else "alice@example.test", "guess").status_code
             for n in range(5)]
    assert wrong == [400] * 5, "username and e-mail are the same account"
    refused = _password_grant(base, app, "alice", PASSWORD)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] and int(refused.headers["Retry-After"]) > 0
    # The login form says so too, without looking at the password.
    auth_url = f"{base}/oauth/authorize?" + requests.compat.urlencode(
        {"client_id": app["client_id"], "redirect_uri": OOB, "response_type": "code", "scope": "read"})
    with pytest.raises(AssertionError, match="429|Too many"):
        authorize_in_browser(base, auth_url, "alice", PASSWORD)
    # Other accounts are not locked out.
    assert _password_grant(base, app, "bob", PASSWORD).status_code == 200


def test_failed_sign_ins_are_throttled_per_address(make_instance):
    inst = make_instance("per-address", env={"CROSSTALK_PASSWORD_GRANT": "true",
                                             "CROSSTALK_RATE_LIMIT_SIGN_IN_FAILURES_PER_ADDRESS": "5",
                                             "CROSSTALK_HTTP_TRUSTED_PROXIES": "127.0.0.1/32"})
    inst.create_user("carol", PASSWORD)
    base = inst.base_url
    app = _app(base)
    attacker = {"X-Forwarded-For": "198.51.100.66"}
    # Spraying guesses over many (unknown) names from one address...
    codes = [_password_grant(base, app, f"user{n}", "guess", attacker).status_code for n in range(5)]
    assert codes == [400] * 5
    assert _password_grant(base, app, "carol", PASSWORD, attacker).status_code == 429
    # ...is stopped at that address, and only there.
    assert _password_grant(base, app, "carol", PASSWORD, {"X-Forwarded-For": "198.51.100.67"}).status_code == 200


def test_forty_wrong_passwords_then_the_right_one_is_refused(make_instance):
    """The probe from the issue, with Mastodon's default limits."""
    inst = make_instance("probe", env={"CROSSTALK_PASSWORD_GRANT": "true",
                                       "CROSSTALK_RATE_LIMIT_SIGN_IN_FAILURES_PER_ADDRESS": "25",
                                       "CROSSTALK_RATE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT": "25"})
    inst.create_user("dave", PASSWORD)
    app = _app(inst.base_url)
    codes = [_password_grant(inst.base_url, app, "dave", f"guess {n}").status_code for n in range(40)]
    assert codes[:25] == [400] * 25 and set(codes[25:]) == {429}
    assert _password_grant(inst.base_url, app, "dave", PASSWORD).status_code == 429


class CountingScrypt:
    """Stands in for cryptography's Scrypt in server.services.secrets and records each run's thread."""

    runs: list[str] = []

    def __init__(self, **kwargs: object) -> None:
        self._real = REAL_SCRYPT(**kwargs)

    def derive(self, key: bytes) -> bytes:
        CountingScrypt.runs.append(threading.current_thread().name)
        return self._real.derive(key)

    def verify(self, key: bytes, expected: bytes) -> None:
        CountingScrypt.runs.append(threading.current_thread().name)
        self._real.verify(key, expected)


REAL_SCRYPT = secrets_service.Scrypt


async def test_unknown_and_known_users_cost_one_scrypt_run_off_the_event_loop(aiohttp_client, tmp_path, monkeypatch):
    settings = load_settings(env={"CROSSTALK_DOMAIN": "example.test", "CROSSTALK_DATA_DIR": str(tmp_path),
                                  "CROSSTALK_PASSWORD_GRANT": "true", "CROSSTALK_RATE_LIMIT_ENABLED": "false"})
    app = create_app(settings)
    client = await aiohttp_client(app)
    state = app[STATE]
    await account_service.create_user(state, "erin", "erin@example.test", PASSWORD)
    registered = await (await client.post("/api/v1/apps", data={"client_name": "c", "redirect_uris": OOB,
                                                                 "scopes": "read"})).json()
    monkeypatch.setattr(secrets_service, "Scrypt", CountingScrypt)
    loop_thread = threading.current_thread().name

    async def attempt(username: str, password: str) -> tuple[int, list[str]]:
        CountingScrypt.runs = []
        r = await client.post("/oauth/token", data={
            "grant_type": "password", "client_id": registered["client_id"], "client_secret": registered["client_secret"],
            "username": username, "password": password, "scope": "read"})
        return r.status, CountingScrypt.runs

    for username, password, status in [("nobody", "guess", 400), ("erin", "guess", 400), ("erin", PASSWORD, 200)]:
        got, runs = await attempt(username, password)
        assert got == status
        assert len(runs) == 1, (username, runs)  # the same work whether the user exists or not
        assert loop_thread not in runs, "scrypt ran on the event loop"


def test_login_form_escapes_what_it_shows(instance):
    base = instance.base_url
    app = _app(base, name='Evil <img src=x onerror=alert(1)> "app"')
    auth_url = f"{base}/oauth/authorize?" + requests.compat.urlencode({
        "client_id": app["client_id"], "redirect_uri": OOB, "response_type": "code", "scope": "read",
        "state": '"><script>alert(2)</script>'})
    page = requests.get(auth_url, timeout=10)
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>" not in page.text
    assert "Evil &lt;img src=x onerror=alert(1)&gt; &#34;app&#34;" in page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert html.unescape(fields["state"]) == '"><script>alert(2)</script>'
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
    bad = requests.get(f"{base}/oauth/authorize?client_id=%3Cb%3Enope&redirect_uri={OOB}", timeout=10)
    assert bad.status_code == 400 and "<b>" not in bad.text
