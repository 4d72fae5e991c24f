"""Several real instances federating over loopback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

FED_ENV = {
    # Open federation among the test's own loopback instances (the boundary's allowlist default is
    # exercised in test_boundary.py).
    "CROSSTALK_FEDERATION_MODE": "blocklist",
    "CROSSTALK_FEDERATION_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
    "CROSSTALK_FEDERATION_RETRY_SCALE": "0.02",
}


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture
def pair(make_instance):
    """Two federating instances with alice on A and bob on B."""
    a = make_instance("a", env=dict(FED_ENV))
    b = make_instance("b", env=dict(FED_ENV))
    a.create_user("alice")
    b.create_user("bob")
    return a, b


class FakeActor:
    """A minimal remote server on loopback: serves one actor document and records what is POSTed to
    its inbox. Used to talk to an instance with requests signed by independent libraries."""

    def __init__(self, username: str = "mallory") -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from federation.signatures import generate_rsa_keypair
        from tests.conftest import free_port

        self.private_pem, self.public_pem = generate_rsa_keypair()
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.host}"
        self.uri = f"{self.base}/users/{username}"
        self.key_id = f"{self.uri}#main-key"
        self.received: list[tuple[dict[str, str], bytes, str]] = []
        self.document = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.uri, "type": "Person", "preferredUsername": username, "name": username.title(),
            "inbox": f"{self.uri}/inbox", "outbox": f"{self.uri}/outbox", "followers": f"{self.uri}/followers",
            "publicKey": {"id": self.key_id, "owner": self.uri, "publicKeyPem": self.public_pem},
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                import json
                from urllib.parse import parse_qs, urlsplit
                path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
                found: tuple[dict[str, Any], str] | None = None
                if path == f"/users/{username}":
                    found = fake.document, "application/activity+json"
                elif path == "/.well-known/webfinger" and query.get("resource") == [f"acct:{username}@{fake.host}"]:
                    # We show an actor under its preferredUsername only when WebFinger confirms it.
                    found = {"subject": f"acct:{username}@{fake.host}",
                             "links": [{"rel": "self", "type": "application/activity+json", "href": fake.uri}]}, \
                        "application/jrd+json"
                if found is not None:
                    body = json.dumps(found[0]).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", found[1])
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                fake.received.append(({k: v for k, v in self.headers.items()}, body, self.path))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_actor():
    actor = FakeActor()
    yield actor
    actor.close()
