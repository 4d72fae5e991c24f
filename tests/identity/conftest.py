"""A real OpenID provider on loopback (PyPI's oidc-provider-mock: discovery, RS256 JWKS, code flow,
userinfo and end-session) and a browser played with requests."""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import Instance, free_port

CLIENT_ID = "crosstalk-test"
CLIENT_SECRET = "client-secret-for-tests-only"


class Provider:
    """oidc-provider-mock in a thread of the test process. Any client id works; `set_user` puts the
    claims a person will have at their next sign-in."""

    def __init__(self) -> None:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback
        import oidc_provider_mock
        import werkzeug.serving

        self.app = oidc_provider_mock.app(require_nonce=True)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.server = werkzeug.serving.make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        self.requests: list[str] = []
        self.app.before_request(self._note)

    def _note(self) -> None:
        import flask
        self.requests.append(flask.request.path)

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        answer = requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        assert answer.status_code == 204, answer.text

    def rotate_keys(self) -> None:
        """A new signing key, as providers rotate theirs: tokens from now on name a key we never saw."""
        import flask
        from authlib import jose
        with self.app.test_request_context("/"):
            self.app.preprocess_request()
            flask.g.oidc_provider_mock_storage.jwk = jose.RSAKey.generate_key(is_private=True)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    yield p
    p.close()


def sso_env(provider: Provider, tmp_path: Path, **extra: str) -> dict[str, str]:
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    return {"CROSSTALK_OIDC_ENABLED": "true", "CROSSTALK_OIDC_ISSUER": provider.issuer,
            "CROSSTALK_OIDC_CLIENT_ID": CLIENT_ID, "CROSSTALK_OIDC_CLIENT_SECRET_FILE": str(secret_file), **extra}


def hidden_fields(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}


class Browser:
    """A person's browser: follows redirects by hand so each hop can be checked."""

    def __init__(self, instance: Instance, provider: Provider) -> None:
        self.instance = instance
        self.provider = provider
        self.session = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, timeout=10, allow_redirects=False)

    def sign_in_at_provider(self, sso_start: str, sub: str) -> requests.Response:
        """From our /auth/oidc/start to the provider (where the person picks `sub`) and back to our
        callback; returns the callback's answer."""
        to_provider = self.get(sso_start)
        assert to_provider.status_code == 302, to_provider.text
        authorize_url = to_provider.headers["Location"]
        assert authorize_url.startswith(self.provider.issuer), authorize_url
        back = self.session.post(authorize_url, data={"sub": sub}, timeout=10, allow_redirects=False)
        assert back.status_code == 302, back.text
        callback = back.headers["Location"]
        assert callback.startswith(f"{self.instance.base_url}/auth/oidc/callback?"), callback
        return self.get(callback)

    def authorize(self, auth_url: str, sub: str) -> str:
        """The whole Mastodon OAuth authorize flow through single sign-on; returns the OOB code."""
        page = self.get(auth_url)
        assert page.status_code == 200, page.text
        match = re.search(r'<form method="get" action="/auth/oidc/start"[^>]*>'
                          r'<input type="hidden" name="return_to" value="([^"]*)">', page.text)
        assert match, page.text
        return_to = html.unescape(match.group(1))
        answer = self.sign_in_at_provider(
            f"{self.instance.base_url}/auth/oidc/start?return_to={requests.utils.quote(return_to, safe='')}", sub)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert urlsplit(location).path == urlsplit(return_to).path and query_of(location) == query_of(return_to)
        return self.approve(self.instance.base_url + location)

    def approve(self, authorize_page: str) -> str:
        consent = self.get(authorize_page)
        assert consent.status_code == 200 and 'name="decision"' in consent.text, consent.text
        assert 'name="password"' not in consent.text  # signed in already: only the approval is left
        fields = hidden_fields(consent.text)
        fields["decision"] = "approve"
        done = self.session.post(f"{self.instance.base_url}/oauth/authorize", data=fields, timeout=10,
                                 allow_redirects=False)
        assert done.status_code == 200, done.text
        code = re.search(r'<code id="authorization-code">([^<]+)</code>', done.text)
        assert code, done.text
        return code.group(1)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
