"""A fake remote fediverse on loopback for the federation benchmarks: one aiohttp process listening on
several 127.0.0.1 ports (each port is a distinct host to the instance). It serves actor documents
with their public keys (so an instance can fetch a sender's key once) and answers every inbox POST
with 202, counting them per host, inbox and activity (so that an activity sent twice to one inbox
shows), and verifying every Nth signature with the sender's public key (federation.signatures, the
same checks the instance applies).

    python bench/sink.py --ports 19001,19002 [--actors actors.json] [--verify-key key.pem --verify-every 20]

GET /_stats (any port) answers the counters as JSON; POST /_reset zeroes them.

It speaks HTTP/1.1 itself on asyncio protocols (keep-alive, Content-Length bodies) instead of through a
web framework: on these two-core machines the fake remote servers share the cores with the instance
being measured, and a framework's request handling cost several times what counting a POST needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs

from multidict import CIMultiDict

if __package__ in (None, ""):  # `python bench/sink.py`: federation/ lives at the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from federation.signatures import SignatureError, parse_signed_request, verify_signed_request  # noqa: E402


class Sink:
    def __init__(self, actors: dict[str, str], verify_pem: str | None, verify_every: int) -> None:
        self.actors = actors  # username → public key PEM
        self.verify_pem = verify_pem
        self.verify_every = max(1, verify_every)
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.last_new_at: float | None = None  # the last time an inbox got an activity it had not had yet
        self.by_host: Counter[str] = Counter()
        self.inboxes: Counter[str] = Counter()
        self.types: Counter[str] = Counter()
        self.activities: Counter[str] = Counter()  # activity id → inboxes it reached
        self.pairs: Counter[tuple[str, str]] = Counter()  # (inbox, activity id) → times received
        self.verified = 0
        self.verify_failed = 0
        self.failures: list[str] = []
        self.actor_fetches = 0

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], host: str,
               body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        path, _, query = target.partition("?")
        if method == "POST" and (path == "/inbox" or (path.startswith("/users/") and path.endswith("/inbox"))):
            self.inbox(method, target, path, headers, host, body)
            return 202, "", b""
        if method == "GET" and path.startswith("/users/") and path.count("/") == 2:
            return self.actor(path.removeprefix("/users/"), host)
        if method == "GET" and path == "/.well-known/webfinger":
            return self.webfinger(query, host)
        if method == "GET" and path == "/_stats":
            return 200, "application/json", json.dumps(self.stats()).encode()
        if method == "POST" and path == "/_reset":
            self.reset()
            return 200, "application/json", b'{"ok": true}'
        return 404, "text/plain", b"not found"

    def actor(self, name: str, host: str) -> tuple[int, str, bytes]:
        pem = self.actors.get(name)
        if pem is None:
            return 404, "text/plain", b"not found"
        self.actor_fetches += 1
        uri = f"http://{host}/users/{name}"
        doc = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": uri, "type": "Person", "preferredUsername": name, "name": name.title(),
            "inbox": f"{uri}/inbox", "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
            "following": f"{uri}/following", "endpoints": {"sharedInbox": f"http://{host}/inbox"},
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": pem},
        }
        return 200, "application/activity+json", json.dumps(doc).encode()

    def webfinger(self, query: str, host: str) -> tuple[int, str, bytes]:
        """As every real server: the instance shows a sender under its name only once WebFinger confirms it."""
        resource = parse_qs(query).get("resource", [""])[0]
        name, _, at = resource.removeprefix("acct:").rpartition("@")
        if name not in self.actors or at != host:
            return 404, "text/plain", b"not found"
        return 200, "application/jrd+json", json.dumps({"subject": f"acct:{name}@{host}", "links": [
            {"rel": "self", "type": "application/activity+json", "href": f"http://{host}/users/{name}"}]}).encode()

    def inbox(self, method: str, target: str, path: str, headers: list[tuple[str, str]], host: str,
              body: bytes) -> None:
        now = time.monotonic()
        self.received += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.by_host[host] += 1
        inbox = f"{host}{path}"
        self.inboxes[inbox] += 1
        try:
            activity = json.loads(body)
            self.types[str(activity.get("type"))] += 1
            activity_id = str(activity.get("id"))
        except (ValueError, AttributeError):
            self.types["(not json)"] += 1
            activity_id = "(not json)"
        self.activities[activity_id] += 1
        pair = (inbox, activity_id)
        self.pairs[pair] += 1
        if self.pairs[pair] == 1:
            self.last_new_at = now
        if self.verify_pem is not None and self.received % self.verify_every == 1 % self.verify_every:
            try:
                signed = parse_signed_request(method, target, CIMultiDict(headers), body, scheme="http",
                                              authority=host)
                verify_signed_request(signed, self.verify_pem)
                self.verified += 1
            except SignatureError as exc:
                self.verify_failed += 1
                if len(self.failures) < 5:
                    self.failures.append(str(exc))

    def stats(self) -> dict[str, object]:
        return {
            "received": self.received, "first_at": self.first_at, "last_at": self.last_at,
            "last_new_at": self.last_new_at,
            "hosts": len(self.by_host), "distinct_inboxes": len(self.inboxes),
            "max_per_inbox": max(self.inboxes.values(), default=0), "types": dict(self.types),
            "activities": dict(self.activities.most_common(5)),
            "duplicates": sum(n - 1 for n in self.pairs.values()),
            "duplicated": [f"{inbox} {activity} x{n}" for (inbox, activity), n in self.pairs.items() if n > 1][:5],
            "verified": self.verified, "verify_failed": self.verify_failed, "failures": self.failures,
            "actor_fetches": self.actor_fetches,
        }


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}
MAX_BODY = 2 * 1024 * 1024


class SinkConnection(asyncio.Protocol):
    """One client connection: requests one after another (keep-alive), each with a Content-Length body."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
                headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
                found = {name.lower(): value for name, value in headers}
                if "transfer-encoding" in found:  # the instance's client always sends a length
                    raise ValueError("chunked bodies are not supported here")
                length = int(found.get("content-length", "0"))
                if not 0 <= length <= MAX_BODY:
                    raise ValueError("bad Content-Length")
            except ValueError as exc:
                self.respond(400, "text/plain", str(exc).encode(), close=True)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            status, content_type, payload = self.sink.handle(method, target, headers, found.get("host", ""), body)
            self.respond(status, content_type, payload, close=found.get("connection", "").lower() == "close")

    def respond(self, status: int, content_type: str, payload: bytes, *, close: bool) -> None:
        assert self.transport is not None
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Length: {len(payload)}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        if close:
            head += "Connection: close\r\n"
        self.transport.write(head.encode() + b"\r\n" + payload)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(ports: list[int], sink: Sink) -> None:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda: SinkConnection(sink), "127.0.0.1", port, backlog=1024,
                                        reuse_address=True) for port in ports]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", required=True, help="comma-separated ports on 127.0.0.1")
    parser.add_argument("--actors", help="JSON file {username: public key PEM} of the actors to serve")
    parser.add_argument("--verify-key", help="PEM public key the POSTed signatures must verify with")
    parser.add_argument("--verify-every", type=int, default=20, help="verify one POST in this many")
    args = parser.parse_args()
    actors = json.loads(Path(args.actors).read_text()) if args.actors else {}
    verify_pem = Path(args.verify_key).read_text() if args.verify_key else None
    sink = Sink(actors, verify_pem, args.verify_every)
    ports = [int(p) for p in args.ports.split(",") if p.strip()]
    try:
        import uvloop
        uvloop.run(serve(ports, sink))
    except ImportError:
        asyncio.run(serve(ports, sink))


if __name__ == "__main__":
    main()
