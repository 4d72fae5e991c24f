"""A loopback peer that federates the way GoToSocial documents and does (docs/federation/http_signatures.md
and access_control.md; internal/federation/dereferencing/account.go and finger.go, read in its source):

- the keyId is a separate URL, `/users/NAME/main-key`, which serves a stub of the actor (id, type,
  preferredUsername, publicKey; no inbox), without asking for a signature;
- every other GET (actors, posts, collections) must be signed, or it is answered 401;
- a signer is trusted only after its full actor was fetched (from `publicKey.owner` when the key URL
  served a stub) and its `preferredUsername` resolved through WebFinger on the actor's host, with a
  subject whose username is that preferredUsername and fits GoToSocial's username pattern (which never
  holds ':'); a signer that fails this gets 500, as GoToSocial answers;
- outgoing requests are signed draft-cavage, `algorithm="hs2019"`, with RSA-SHA256, by the user or by the
  instance account (named after the host, as GoToSocial names it).

Signatures are made and checked with the independent `httpsig` library, not with our own code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpsig
import requests
from httpsig.utils import parse_signature_header

from federation.signatures import generate_rsa_keypair
from tests.conftest import free_port

AS2 = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# GoToSocial's regexes.MentionName, which it applies to WebFinger subjects: letters, digits, '.', '-'
# and '_' in the username; the domain may carry a port.
GTS_NAMESTRING = re.compile(r"^@([\w.\-]+)(?:@([\w.\-:]+))?$")


class Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PeerActor:
    """One account on the peer. `preferred_username=None` leaves it out of the actor document;
    `webfinger=False` keeps it out of WebFinger; `key_stub=False` puts the key in the actor
    document under `#main-key` instead of a separate key URL."""

    def __init__(self, base: str, path: str, preferred_username: str | None, *, webfinger: bool = True,
                 key_stub: bool = True, actor_type: str = "Person") -> None:
        self.private_pem, self.public_pem = generate_rsa_keypair()
        self.uri = base + path
        self.username = preferred_username
        self.webfinger = webfinger and preferred_username is not None
        self.key_id = f"{self.uri}/main-key" if key_stub else f"{self.uri}#main-key"
        self.inbox = f"{self.uri}/inbox"
        self.type = actor_type

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "@context": ["https://w3id.org/security/v1", "https://www.w3.org/ns/activitystreams"],
            "id": self.uri, "type": self.type, "inbox": self.inbox, "outbox": f"{self.uri}/outbox",
            "followers": f"{self.uri}/followers", "following": f"{self.uri}/following",
            "featured": f"{self.uri}/collections/featured", "manuallyApprovesFollowers": False,
            "publicKey": {"id": self.key_id, "owner": self.uri, "publicKeyPem": self.public_pem},
            "url": self.uri,
        }
        if self.username is not None:
            doc["preferredUsername"] = self.username
        return doc

    def key_stub(self) -> dict[str, Any]:
        stub = {k: v for k, v in self.document().items() if k in ("@context", "id", "preferredUsername", "publicKey")}
        stub["type"] = self.type
        return stub


class GtsPeer:
    """Serves its actors and `documents` (path → AS2 document) on 127.0.0.1, checks every signed
    request as GoToSocial does, and records verified inbox deliveries in `received`."""

    def __init__(self, usernames: tuple[str, ...] = ("bob",)) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.host}"
        self.actors: dict[str, PeerActor] = {}
        self.users: dict[str, PeerActor] = {}
        self.instance = self.add_actor("/users/127.0.0.1", "127.0.0.1", actor_type="Application")
        for name in usernames:
            self.add_actor(f"/users/{name}", name)
        self.documents: dict[str, dict[str, Any]] = {}
        self.key_documents: dict[str, dict[str, Any]] = {}  # path → what to serve at a key URL instead of the stub
        self.slow_paths: dict[str, float] = {}  # path → seconds to wait before answering
        self.received: list[tuple[str, dict[str, Any]]] = []  # (inbox path, activity) of verified POSTs
        self.refusals: list[tuple[str, int, str]] = []  # (path, status, reason)
        self.served: list[tuple[str, str]] = []  # (path, signer actor URI) of signed GETs answered 200
        self.requested: list[str] = []  # every path asked for, as soon as the request arrives
        self._verified: dict[str, tuple[str, str]] = {}  # key id → (PEM, owner URI) of trusted signers
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                peer._handle(self, "GET", b"")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                peer._handle(self, "POST", body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_actor(self, path: str, preferred_username: str | None, **options: Any) -> PeerActor:
        actor = PeerActor(self.base, path, preferred_username, **options)
        self.actors[path] = actor
        if actor.webfinger:
            self.users[preferred_username] = actor  # type: ignore[index]
        return actor

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- serving -------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.requested.append(path)
        try:
            if path in self.slow_paths:
                time.sleep(self.slow_paths[path])
            if method == "GET" and path == "/.well-known/webfinger":
                status, doc, kind = self._webfinger(handler.path)
            elif method == "GET" and path in self.key_documents:
                status, doc, kind = 200, self.key_documents[path], AS2
            elif method == "GET" and path.endswith("/main-key") and path.removesuffix("/main-key") in self.actors:
                status, doc, kind = 200, self.actors[path.removesuffix("/main-key")].key_stub(), AS2
            elif method == "GET":
                signer = self._authenticate(handler, method, body)
                doc = self.actors[path].document() if path in self.actors else self.documents.get(path)
                status, kind = (200, AS2) if doc is not None else (404, "application/json")
                doc = doc if doc is not None else {"error": "not found"}
                if status == 200:
                    with self._lock:
                        self.served.append((handler.path, signer))
            else:
                status, doc, kind = self._inbox(handler, path, body)
        except Exception as exc:  # GoToSocial answers 500 to what it cannot handle
            refusal = exc if isinstance(exc, Refusal) else Refusal(500, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self.refusals.append((handler.path, refusal.status, refusal.reason))
            status, doc, kind = refusal.status, {"error": refusal.reason}, "application/json"
        raw = json.dumps(doc).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _webfinger(self, raw_path: str) -> tuple[int, dict[str, Any], str]:
        resource = parse_qs(urlsplit(raw_path).query).get("resource", [""])[0]
        user, _, host = resource.removeprefix("acct:").rpartition("@")
        actor = self.users.get(user)
        if host != self.host or actor is None or not actor.webfinger:
            return 404, {"error": "not found"}, "application/json"
        return 200, {"subject": f"acct:{user}@{self.host}", "aliases": [actor.uri],
                     "links": [{"rel": "self", "type": AS2, "href": actor.uri}]}, "application/jrd+json"

    def _inbox(self, handler: BaseHTTPRequestHandler, path: str, body: bytes) -> tuple[int, dict[str, Any], str]:
        if path not in {urlsplit(a.inbox).path for a in self.actors.values()}:
            return 404, {"error": "no such inbox"}, "application/json"
        if handler.headers.get("Content-Type", "").split(";")[0].strip() not in (AS2, "application/ld+json"):
            raise Refusal(406, "not an ActivityPub content type")
        signer = self._authenticate(handler, "POST", body)
        activity = json.loads(body)
        actor = activity.get("actor")
        if (actor.get("id") if isinstance(actor, dict) else actor) != signer:
            raise Refusal(401, "activity actor is not the signer")
        with self._lock:
            self.received.append((path, activity))
        return 202, {}, "application/json"

    # -- checking signers, as GoToSocial does ---------------------------------------------------------

    def _authenticate(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> str:
        """The signer's actor URI, or Refusal: 401 for a missing or bad signature, 500 for a signer
        that cannot be dereferenced and WebFingered."""
        header = handler.headers.get("Signature")
        if not header:
            raise Refusal(401, "request not signed")
        params = parse_signature_header(header)
        key_id = params.get("keyid", "")
        covered = params.get("headers", "").split()
        required = ["(request-target)", "host", "date"] + (["digest"] if method == "POST" else [])
        if not set(required) <= set(covered):
            raise Refusal(401, f"signature must cover {' '.join(required)}")
        if method == "POST":
            digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
            if handler.headers.get("Digest") != digest:
                raise Refusal(401, "digest does not match the body")
        pem, owner = self._signer_key(key_id)
        headers = {k: v for k, v in handler.headers.items()}
        if params.get("algorithm") == "hs2019":  # httpsig knows RSA-SHA256 under its old name only
            headers["Signature"] = header.replace('algorithm="hs2019"', 'algorithm="rsa-sha256"')
        for path in (handler.path, urlsplit(handler.path).path):  # with the query first, then without
            verifier = httpsig.HeaderVerifier(headers, pem, required_headers=required, method=method, path=path,
                                              sign_header="signature")
            if verifier.verify():
                return owner
        raise Refusal(401, "signature does not verify")

    def _signer_key(self, key_id: str) -> tuple[str, str]:
        with self._lock:
            known = self._verified.get(key_id)
        if known is not None:
            return known
        own = next((a for a in self.actors.values() if a.key_id == key_id), None)
        if own is not None:  # one of ours: known without asking anyone
            return own.public_pem, own.uri
        key_url = key_id.split("#", 1)[0]
        doc = self._dereference(key_url)
        key = doc.get("publicKey")
        if not isinstance(key, dict) or key.get("id") != key_id or not key.get("publicKeyPem"):
            raise Refusal(401, "keyId not found at its URL")
        owner = key.get("owner")
        if doc.get("id") != key_url or "inbox" not in doc:  # a stub: the full actor lives at the owner
            doc = self._dereference(owner)
            full_key = doc.get("publicKey") if isinstance(doc.get("publicKey"), dict) else {}
            if doc.get("id") != owner or full_key.get("id") != key_id or full_key.get("publicKeyPem") != key["publicKeyPem"]:
                raise Refusal(500, "the key's owner does not list the key")
        self._webfinger_check(doc)
        with self._lock:
            self._verified[key_id] = (key["publicKeyPem"], doc["id"])
        return key["publicKeyPem"], doc["id"]

    def _dereference(self, url: str) -> dict[str, Any]:
        response = self.get(url)
        if response.status_code != 200:
            raise Refusal(500, f"dereferencing {url} failed: HTTP {response.status_code}")
        return response.json()

    def _webfinger_check(self, actor: dict[str, Any]) -> None:
        """GoToSocial's enrichAccount for an account met by URI: WebFinger preferredUsername@host."""
        username = actor.get("preferredUsername")
        if not isinstance(username, str) or not username:
            raise Refusal(500, "actor has no preferredUsername")
        host = urlsplit(actor["id"]).netloc
        response = requests.get(f"http://{host}/.well-known/webfinger", params={"resource": f"acct:{username}@{host}"},
                                headers={"Accept": "application/jrd+json"}, timeout=10)
        if response.status_code != 200:
            raise Refusal(500, f"webfinger of {username}@{host} failed: HTTP {response.status_code}")
        jrd = response.json()
        match = GTS_NAMESTRING.match("@" + str(jrd.get("subject", "")).removeprefix("acct:").lstrip("@"))
        if match is None or match.group(1) != username:
            raise Refusal(500, f"webfinger subject {jrd.get('subject')!r} does not name {username!r}")
        if not any(link.get("rel") == "self" and link.get("type") in (AS2, 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"')
                   and str(link.get("href", "")).startswith(("http://", "https://")) for link in jrd.get("links", [])):
            raise Refusal(500, "webfinger has no ActivityPub self link")

    # -- sending -------------------------------------------------------------------------------------

    def _sign(self, actor: PeerActor, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        parts = urlsplit(url)
        names = ["(request-target)", "host", "date"] + (["digest"] if "Digest" in headers else [])
        headers = {**headers, "Host": parts.netloc, "Date": formatdate(usegmt=True)}
        signer = httpsig.HeaderSigner(actor.key_id, actor.private_pem, algorithm="rsa-sha256", headers=names,
                                      sign_header="signature")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        signed = dict(signer.sign(headers, method=method, path=path))
        signed["signature"] = signed["signature"].replace('algorithm="rsa-sha256"', 'algorithm="hs2019"')
        return signed

    def get(self, url: str, actor: PeerActor | None = None) -> requests.Response:
        """A signed GET, by the instance account unless another actor is given."""
        headers = self._sign(actor or self.instance, "GET", url, {"Accept": AS2})
        return requests.get(url, headers=headers, timeout=20)

    def signed_post(self, actor: PeerActor, url: str, activity: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of a signed POST, to send later."""
        body = json.dumps(activity).encode()
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        return body, self._sign(actor, "POST", url, {"Content-Type": AS2, "Digest": digest})

    def post(self, actor: PeerActor, url: str, activity: dict[str, Any]) -> requests.Response:
        body, headers = self.signed_post(actor, url, activity)
        return requests.post(url, data=body, headers=headers, timeout=20)

    def activities(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a for _, a in self.received if a.get("type") == kind]
