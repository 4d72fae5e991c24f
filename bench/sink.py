"""A fake remote fediverse on loopback for the federation benchmarks: one aiohttp process listening on
several 127.0.0.1 ports (each port is a distinct host to the instance). It serves actor documents
with their public keys (so an instance can fetch a sender's key once) and answers every inbox POST
with 202, counting them per host, inbox and activity (so that an activity sent twice to one inbox
shows), and verifying every Nth signature with the sender's public key (federation.signatures, the
same checks the instance applies).

    python bench/sink.py --ports 19001,19002 [--actors actors.json] [--verify-key key.pem --verify-every 20]

GET /_stats (any port) answers the counters as JSON; POST /_reset zeroes them.
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

from aiohttp import web

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

    async def actor(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        pem = self.actors.get(name)
        if pem is None:
            raise web.HTTPNotFound()
        self.actor_fetches += 1
        uri = f"http://{request.host}/users/{name}"
        doc = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": uri, "type": "Person", "preferredUsername": name, "name": name.title(),
            "inbox": f"{uri}/inbox", "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
            "following": f"{uri}/following", "endpoints": {"sharedInbox": f"http://{request.host}/inbox"},
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": pem},
        }
        return web.json_response(doc, content_type="application/activity+json")

    async def webfinger(self, request: web.Request) -> web.Response:
        """As every real server: the instance shows a sender under its name only once WebFinger confirms it."""
        name, _, host = request.query.get("resource", "").removeprefix("acct:").rpartition("@")
        if name not in self.actors or host != request.host:
            raise web.HTTPNotFound()
        return web.json_response({"subject": f"acct:{name}@{host}", "links": [
            {"rel": "self", "type": "application/activity+json", "href": f"http://{host}/users/{name}"}]},
            content_type="application/jrd+json")

    async def inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.monotonic()
        self.received += 1
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.by_host[request.host] += 1
        self.inboxes[f"{request.host}{request.path}"] += 1
        try:
            activity = json.loads(body)
            self.types[str(activity.get("type"))] += 1
            activity_id = str(activity.get("id"))
        except (ValueError, AttributeError):
            self.types["(not json)"] += 1
            activity_id = "(not json)"
        self.activities[activity_id] += 1
        pair = (f"{request.host}{request.path}", activity_id)
        self.pairs[pair] += 1
        if self.pairs[pair] == 1:
            self.last_new_at = now
        if self.verify_pem is not None and self.received % self.verify_every == 1 % self.verify_every:
            try:
                signed = parse_signed_request(request.method, request.path_qs, request.headers, body, scheme="http",
                                              authority=request.host)
                verify_signed_request(signed, self.verify_pem)
                self.verified += 1
            except SignatureError as exc:
                self.verify_failed += 1
                if len(self.failures) < 5:
                    self.failures.append(str(exc))
        return web.Response(status=202)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "received": self.received, "first_at": self.first_at, "last_at": self.last_at,
            "last_new_at": self.last_new_at,
            "hosts": len(self.by_host), "distinct_inboxes": len(self.inboxes),
            "max_per_inbox": max(self.inboxes.values(), default=0), "types": dict(self.types),
            "activities": dict(self.activities.most_common(5)),
            "duplicates": sum(n - 1 for n in self.pairs.values()),
            "duplicated": [f"{inbox} {activity} x{n}" for (inbox, activity), n in self.pairs.items() if n > 1][:5],
            "verified": self.verified, "verify_failed": self.verify_failed, "failures": self.failures,
            "actor_fetches": self.actor_fetches,
        })

    async def reset_handler(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def serve(ports: list[int], sink: Sink) -> None:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_get("/_stats", sink.stats)
    app.router.add_post("/_reset", sink.reset_handler)
    app.router.add_get("/users/{name}", sink.actor)
    app.router.add_get("/.well-known/webfinger", sink.webfinger)
    app.router.add_post("/users/{name}/inbox", sink.inbox)
    app.router.add_post("/inbox", sink.inbox)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


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
