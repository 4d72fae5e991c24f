"""FederationClient against local aiohttp servers.  Only 127.0.0.0/8 is ever contacted;
names like peer.test resolve through an injected fake getaddrinfo, never real DNS."""

import asyncio
import json
import socket

import msgspec
import pytest
from aiohttp import web

from federation.client import (
    ALLOWED_PRIVATE_SETTING,
    DeliveryOutcome,
    EgressDenied,
    FederationClient,
    FetchError,
    classify_delivery_status,
    is_restricted_address,
)
from federation.signatures import SignatureError, parse_signed_request, verify_signed_request

KEY_ID = "https://local.example/users/alice#main-key"
AS_JSON = "application/activity+json"
BODY = b'{"@context":"https://www.w3.org/ns/activitystreams","type":"Follow"}'


class Sink:
    """A fake peer that checks every signature it receives with our own verifier."""

    def __init__(self, public_pem: str) -> None:
        self.pub = public_pem
        self.seen: list[dict] = []

    async def _verify(self, request: web.Request) -> tuple[str | None, bytes]:
        body = await request.read() if request.can_read_body else None
        entry = {"method": request.method, "path": request.path_qs, "headers": dict(request.headers)}
        self.seen.append(entry)
        try:
            sr = parse_signed_request(request.method, request.path_qs, request.headers, body, scheme="http")
            verify_signed_request(sr, self.pub)
        except SignatureError as e:
            entry["error"] = e.reason
            return None, body or b""
        entry["scheme"] = sr.scheme
        return sr.scheme, body or b""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/actor", self.actor)
        app.router.add_get("/redirect/{n}", self.redirect)
        app.router.add_get("/redirect-to", self.redirect_to)
        app.router.add_get("/mismatch", self.mismatch)
        app.router.add_get("/big", self.big)
        app.router.add_get("/big-chunked", self.big_chunked)
        app.router.add_get("/typed/{kind}", self.typed)
        app.router.add_get("/missing", self.missing)
        app.router.add_get("/strict-9421", self.strict_9421)
        app.router.add_post("/status/{code}", self.status)
        app.router.add_post("/picky", self.picky)
        app.router.add_post("/slow", self.slow)
        app.router.add_get("/.well-known/webfinger", self.webfinger)
        return app

    def _doc(self, request: web.Request, path: str = "/actor") -> web.Response:
        doc = {"id": f"http://{request.host}{path}", "type": "Person", "preferredUsername": "bob"}
        return web.json_response(doc, content_type=AS_JSON)

    async def actor(self, request: web.Request) -> web.Response:
        scheme, _ = await self._verify(request)
        if scheme is None:
            return web.json_response({"error": "bad signature"}, status=401)
        return self._doc(request)

    async def redirect(self, request: web.Request) -> web.Response:
        scheme, _ = await self._verify(request)
        if scheme is None:
            return web.Response(status=401)
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/redirect/{n - 1}" if n > 0 else "/actor")

    async def redirect_to(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path_qs})
        raise web.HTTPFound(request.query["url"])

    async def mismatch(self, request: web.Request) -> web.Response:
        await self._verify(request)
        return web.json_response(
            {"id": "https://elsewhere.example/actor", "type": "Person"}, content_type=AS_JSON
        )

    async def big(self, request: web.Request) -> web.Response:
        await self._verify(request)
        doc = {"id": f"http://{request.host}/big", "padding": "x" * (1024 * 1024 + 10)}
        return web.json_response(doc, content_type=AS_JSON)

    async def big_chunked(self, request: web.Request) -> web.StreamResponse:
        await self._verify(request)
        resp = web.StreamResponse(headers={"Content-Type": AS_JSON})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"id": "http://%s/big-chunked", "padding": "' % request.host.encode())
        for _ in range(20):
            await resp.write(b"x" * 65536)
        await resp.write(b'"}')
        return resp

    async def typed(self, request: web.Request) -> web.Response:
        await self._verify(request)
        kinds = {
            "html": "text/html",
            "ld": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
            "ld-noprofile": "application/ld+json",
            "json": "application/json",
            "activity-charset": "application/activity+json; charset=utf-8",
        }
        doc = json.dumps({"id": f"http://{request.host}{request.path}"})
        return web.Response(text=doc, headers={"Content-Type": kinds[request.match_info["kind"]]})

    async def missing(self, request: web.Request) -> web.Response:
        await self._verify(request)
        return web.Response(status=404)

    async def strict_9421(self, request: web.Request) -> web.Response:
        scheme, _ = await self._verify(request)
        if scheme != "rfc9421":
            return web.Response(status=401)
        return self._doc(request, "/strict-9421")

    async def status(self, request: web.Request) -> web.Response:
        scheme, body = await self._verify(request)
        assert scheme is not None and body == BODY
        assert request.headers["Content-Type"] == AS_JSON
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def picky(self, request: web.Request) -> web.Response:
        scheme, _ = await self._verify(request)
        return web.Response(status=202 if scheme == "rfc9421" else 401)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(status=202)

    async def webfinger(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path_qs, "query": request.query_string})
        host = request.host
        if request.query.get("resource") != f"acct:alice@{host}":
            return web.Response(status=404)
        jrd = {
            "subject": f"acct:alice@{host}",
            "links": [
                {
                    "rel": "http://webfinger.net/rel/profile-page",
                    "type": "text/html",
                    "href": f"http://{host}/@alice",
                },
                {"rel": "self", "type": AS_JSON, "href": f"http://{host}/users/alice"},
            ],
        }
        return web.json_response(jrd, content_type="application/jrd+json")


@pytest.fixture
async def make_client():
    clients: list[FederationClient] = []

    def make(allowed=("127.0.0.0/8",), **kw) -> FederationClient:
        kw.setdefault("allow_http", True)
        kw.setdefault("default_scheme", "http")
        kw.setdefault("timeout", 5.0)
        c = FederationClient("crosstalk-test/1.0", allowed_private_networks=list(allowed), **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
async def sink(keypair, aiohttp_server):
    s = Sink(keypair[1])
    s.server = await aiohttp_server(s.app())
    s.base = f"http://127.0.0.1:{s.server.port}"
    return s


def fake_dns(table: dict[str, list[str]]):
    async def getaddrinfo(host, port, *, type=0, family=0, **_):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "not in the fake table")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in table[host]]

    return getaddrinfo


# --------------------------------------------------------------------------- fetch


async def test_signed_fetch(client, sink, keypair):
    doc = await client.fetch(sink.base + "/actor", key_id=KEY_ID, private_key_pem=keypair[0])
    assert doc["id"] == sink.base + "/actor"
    (req,) = sink.seen
    assert req["scheme"] == "cavage" and "error" not in req
    assert req["headers"]["Accept"].startswith("application/activity+json, application/ld+json; profile=")
    assert req["headers"]["User-Agent"] == "crosstalk-test/1.0"
    assert 'headers="(request-target) host date"' in req["headers"]["Signature"]


async def test_fetch_signs_query_string(client, sink, keypair):
    await client.fetch(sink.base + "/typed/ld?page=true&a=%20b", key_id=KEY_ID, private_key_pem=keypair[0])
    assert sink.seen[0]["path"] == "/typed/ld?page=true&a=%20b" and sink.seen[0]["scheme"] == "cavage"


async def test_fetch_double_knocks_on_401(client, sink, keypair):
    doc = await client.fetch(sink.base + "/strict-9421", key_id=KEY_ID, private_key_pem=keypair[0])
    assert doc["id"].endswith("/strict-9421")
    assert [r.get("scheme") for r in sink.seen] == ["cavage", "rfc9421"]
    assert client.signature_format_for(f"127.0.0.1:{sink.server.port}") == "rfc9421"


async def test_redirects_followed_up_to_three(client, sink, keypair):
    doc = await client.fetch(sink.base + "/redirect/2", key_id=KEY_ID, private_key_pem=keypair[0])
    assert doc["id"] == sink.base + "/actor"
    assert [r["path"] for r in sink.seen] == ["/redirect/2", "/redirect/1", "/redirect/0", "/actor"]
    assert all(r.get("scheme") == "cavage" for r in sink.seen)  # every hop re-signed for its own URL


async def test_four_redirects_is_an_error(client, sink, keypair):
    with pytest.raises(FetchError, match="redirects"):
        await client.fetch(sink.base + "/redirect/3", key_id=KEY_ID, private_key_pem=keypair[0])
    assert len(sink.seen) == 4  # the 4th redirect target is never requested


async def test_id_host_mismatch(client, sink, keypair):
    with pytest.raises(FetchError, match="not on 127.0.0.1"):
        await client.fetch(sink.base + "/mismatch", key_id=KEY_ID, private_key_pem=keypair[0])


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_over_one_megabyte_is_cut_off(client, sink, keypair, path):
    with pytest.raises(FetchError, match="larger than"):
        await client.fetch(sink.base + path, key_id=KEY_ID, private_key_pem=keypair[0])


@pytest.mark.parametrize(
    ("kind", "ok"),
    [("html", False), ("ld-noprofile", False), ("ld", True), ("json", True), ("activity-charset", True)],
)
async def test_content_types(client, sink, keypair, kind, ok):
    url = sink.base + "/typed/" + kind
    if ok:
        assert (await client.fetch(url, key_id=KEY_ID, private_key_pem=keypair[0]))["id"] == url
    else:
        with pytest.raises(FetchError, match="content type"):
            await client.fetch(url, key_id=KEY_ID, private_key_pem=keypair[0])


async def test_http_error_status(client, sink, keypair):
    with pytest.raises(FetchError) as info:
        await client.fetch(sink.base + "/missing", key_id=KEY_ID, private_key_pem=keypair[0])
    assert info.value.status == 404


async def test_fetch_connection_refused(client, keypair):
    port = free_port()
    with pytest.raises(FetchError):
        await client.fetch(f"http://127.0.0.1:{port}/actor", key_id=KEY_ID, private_key_pem=keypair[0])


# --------------------------------------------------------------------------- deliver


@pytest.mark.parametrize(
    ("code", "result", "attempts"),
    [
        (202, "ok", 1),
        (200, "ok", 1),
        (400, "final", 2),
        (401, "retry", 2),
        (404, "final", 1),
        (408, "retry", 1),
        (410, "gone", 1),
        (422, "final", 1),
        (429, "retry", 1),
        (500, "retry", 1),
        (501, "final", 1),
        (503, "retry", 1),
    ],
)
async def test_delivery_outcomes(make_client, sink, keypair, code, result, attempts):
    client = make_client()
    outcome = await client.deliver(
        sink.base + f"/status/{code}", BODY, key_id=KEY_ID, private_key_pem=keypair[0]
    )
    await client.close()
    assert isinstance(outcome, DeliveryOutcome)
    assert (outcome.status, outcome.result) == (code, result)
    assert len(sink.seen) == attempts  # 400/401 get one RFC 9421 retry (the sink rejects it too)
    if result != "ok":
        assert outcome.error and str(code) in outcome.error
    # Both knocks failing teaches nothing; a cavage success is remembered.
    expected = "cavage" if result == "ok" else None
    assert client.signature_format_for(f"127.0.0.1:{sink.server.port}") == expected


def test_classify_delivery_status():
    assert [classify_delivery_status(s) for s in (201, 302, 403, 405, 413, 502)] == [
        "ok",
        "retry",
        "final",
        "final",
        "final",
        "retry",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_delivery_connection_refused_is_retry(client, keypair):
    outcome = await client.deliver(
        f"http://127.0.0.1:{free_port()}/inbox", BODY, key_id=KEY_ID, private_key_pem=keypair[0]
    )
    assert outcome.result == "retry" and outcome.status is None and outcome.error


async def test_delivery_timeout_is_retry(make_client, sink, keypair):
    client = make_client(timeout=0.2)
    outcome = await client.deliver(sink.base + "/slow", BODY, key_id=KEY_ID, private_key_pem=keypair[0])
    await client.close()
    assert outcome.result == "retry" and outcome.status is None


async def test_double_knock_learns_rfc9421(make_client, sink, keypair):
    learned: list[tuple[str, str]] = []
    client = make_client(on_signature_format=lambda host, fmt: learned.append((host, fmt)))
    host = f"127.0.0.1:{sink.server.port}"
    first = await client.deliver(sink.base + "/picky", BODY, key_id=KEY_ID, private_key_pem=keypair[0])
    assert (first.status, first.result, first.signature_format) == (202, "ok", "rfc9421")
    assert [r["scheme"] for r in sink.seen] == ["cavage", "rfc9421"]
    assert "error" in sink.seen[0] or sink.seen[0]["scheme"] == "cavage"
    assert client.signature_format_for(host) == "rfc9421" and learned == [(host, "rfc9421")]
    # The second delivery goes straight to RFC 9421.
    second = await client.deliver(sink.base + "/picky", BODY, key_id=KEY_ID, private_key_pem=keypair[0])
    assert second.result == "ok" and len(sink.seen) == 3 and sink.seen[2]["scheme"] == "rfc9421"
    assert client.signature_formats == {host: "rfc9421"}
    await client.close()


async def test_preloaded_signature_format(make_client, sink, keypair):
    client = make_client()
    client.preload_signature_formats({f"127.0.0.1:{sink.server.port}": "rfc9421", "x.example": "bogus"})
    outcome = await client.deliver(sink.base + "/picky", BODY, key_id=KEY_ID, private_key_pem=keypair[0])
    await client.close()
    assert outcome.result == "ok" and [r["scheme"] for r in sink.seen] == ["rfc9421"]
    assert client.signature_format_for("x.example") is None


# --------------------------------------------------------------------------- webfinger


async def test_webfinger_and_resolve_acct(client, sink):
    host = f"127.0.0.1:{sink.server.port}"
    jrd = await client.webfinger(f"acct:alice@{host}")
    assert jrd["subject"] == f"acct:alice@{host}"
    assert sink.seen[0]["query"] == f"resource=acct:alice@{host}"  # not percent-encoded, as Mastodon sends it
    assert await client.resolve_acct(f"@alice@{host}") == f"http://{host}/users/alice"
    with pytest.raises(FetchError) as info:
        await client.resolve_acct(f"nobody@{host}")
    assert info.value.status == 404
    for bad in ("alice", "alice@", "@host", "a/b@host", "alice@exa mple"):
        with pytest.raises(FetchError):
            await client.webfinger(bad)


# --------------------------------------------------------------------------- egress


@pytest.fixture
async def sink2(keypair, aiohttp_server):
    s = Sink(keypair[1])
    s.server = await aiohttp_server(s.app(), host="127.0.0.2")
    s.base = f"http://127.0.0.2:{s.server.port}"
    return s


async def test_egress_refuses_unlisted_loopback(make_client, sink2, keypair):
    client = make_client(allowed=["127.0.0.1/32"])
    with pytest.raises(EgressDenied, match=ALLOWED_PRIVATE_SETTING):
        await client.fetch(sink2.base + "/actor", key_id=KEY_ID, private_key_pem=keypair[0])
    outcome = await client.deliver(
        sink2.base + "/status/202", BODY, key_id=KEY_ID, private_key_pem=keypair[0]
    )
    assert outcome.result == "final" and ALLOWED_PRIVATE_SETTING in (outcome.error or "")
    with pytest.raises(EgressDenied):
        await client.webfinger(f"alice@127.0.0.2:{sink2.server.port}")
    await client.close()
    assert sink2.seen == []  # refused before any connection


async def test_egress_allowlisted_network_works(make_client, sink2, keypair):
    client = make_client(allowed=["127.0.0.0/8"])
    doc = await client.fetch(sink2.base + "/actor", key_id=KEY_ID, private_key_pem=keypair[0])
    await client.close()
    assert doc["id"] == sink2.base + "/actor" and len(sink2.seen) == 1


async def test_egress_default_denies_loopback(make_client, sink, keypair):
    client = make_client(allowed=[])
    with pytest.raises(EgressDenied, match=ALLOWED_PRIVATE_SETTING):
        await client.fetch(sink.base + "/actor", key_id=KEY_ID, private_key_pem=keypair[0])
    await client.close()
    assert sink.seen == []


async def test_egress_checks_redirect_hops(make_client, sink, sink2, keypair):
    client = make_client(allowed=["127.0.0.1/32"])
    with pytest.raises(EgressDenied):
        await client.fetch(
            sink.base + "/redirect-to?url=" + sink2.base + "/actor", key_id=KEY_ID, private_key_pem=keypair[0]
        )
    await client.close()
    assert len(sink.seen) == 1 and sink2.seen == []


async def test_egress_resolved_names_are_checked(make_client, sink2, keypair):
    dns = fake_dns({"peer.test": ["127.0.0.2"]})
    denied = make_client(allowed=["127.0.0.1/32"], getaddrinfo=dns)
    with pytest.raises(EgressDenied, match=ALLOWED_PRIVATE_SETTING):
        await denied.fetch(
            f"http://peer.test:{sink2.server.port}/actor", key_id=KEY_ID, private_key_pem=keypair[0]
        )
    await denied.close()
    assert sink2.seen == []
    allowed = make_client(allowed=["127.0.0.0/8"], getaddrinfo=dns)
    doc = await allowed.fetch(
        f"http://peer.test:{sink2.server.port}/actor", key_id=KEY_ID, private_key_pem=keypair[0]
    )
    await allowed.close()
    assert doc["id"] == f"http://peer.test:{sink2.server.port}/actor"
    assert sink2.seen[0]["headers"]["Host"] == f"peer.test:{sink2.server.port}"


def _port_free_on_both(first: str, second: str) -> int:
    """A port no socket holds on either address: the kernel picks one for `second`, and it
    is kept only when `first` has it free too (another test's server may hold it there)."""
    for _ in range(50):
        with socket.socket() as on_second, socket.socket() as on_first:
            on_second.bind((second, 0))
            port = on_second.getsockname()[1]
            try:
                on_first.bind((first, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no port free on both {first} and {second}")


async def test_egress_dials_only_the_checked_address(make_client, keypair, aiohttp_server):
    """A name resolving to both a refused and an allowed address: only the allowed one is dialled."""
    good, bad = Sink(keypair[1]), Sink(keypair[1])
    port = _port_free_on_both("127.0.0.1", "127.0.0.2")
    good_server = await aiohttp_server(good.app(), port=port)
    await aiohttp_server(bad.app(), host="127.0.0.2", port=port)
    client = make_client(
        allowed=["127.0.0.1/32"], getaddrinfo=fake_dns({"mixed.test": ["127.0.0.2", "127.0.0.1"]})
    )
    for _ in range(3):
        await client.fetch(
            f"http://mixed.test:{good_server.port}/actor", key_id=KEY_ID, private_key_pem=keypair[0]
        )
    await client.close()
    assert len(good.seen) == 3 and bad.seen == []


async def test_plain_http_refused_unless_allowed(make_client, sink, keypair):
    client = make_client(allow_http=False)
    with pytest.raises(EgressDenied, match="http"):
        await client.fetch(sink.base + "/actor", key_id=KEY_ID, private_key_pem=keypair[0])
    outcome = await client.deliver(sink.base + "/status/202", BODY, key_id=KEY_ID, private_key_pem=keypair[0])
    await client.close()
    assert outcome.result == "final" and sink.seen == []


@pytest.mark.parametrize(
    ("address", "restricted"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("ff02::1", True),
        ("192.0.2.1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
    ],
)
def test_restricted_addresses(address, restricted):
    import ipaddress

    assert is_restricted_address(ipaddress.ip_address(address)) is restricted


def test_outcome_encodes():
    assert msgspec.json.decode(msgspec.json.encode(DeliveryOutcome(status=202, result="ok"))) == {
        "status": 202,
        "result": "ok",
        "error": None,
        "signature_format": None,
    }


@pytest.mark.parametrize("host", ["2130706434", "127.0.0.2.", "0x7f000002", "[::ffff:127.0.0.2]"])
async def test_egress_odd_address_spellings(make_client, sink2, keypair, host):
    client = make_client(allowed=["127.0.0.1/32"])
    with pytest.raises(FetchError):
        await client.fetch(
            f"http://{host}:{sink2.server.port}/actor", key_id=KEY_ID, private_key_pem=keypair[0]
        )
    outcome = await client.deliver(
        f"http://{host}:{sink2.server.port}/status/202", BODY, key_id=KEY_ID, private_key_pem=keypair[0]
    )
    assert outcome.result == "final"
    await client.close()
    assert sink2.seen == []


async def test_unusable_urls(client, keypair):
    for url in ("http://[::1", "ftp://127.0.0.1/x", "not a url", "http://user:pw@127.0.0.1/x"):
        with pytest.raises(FetchError):
            await client.fetch(url, key_id=KEY_ID, private_key_pem=keypair[0])
        outcome = await client.deliver(url, BODY, key_id=KEY_ID, private_key_pem=keypair[0])
        assert outcome.result == "final" and outcome.status is None


async def test_bad_redirect_location(client, sink, keypair):
    with pytest.raises(FetchError):
        await client.fetch(
            sink.base + "/redirect-to?url=http://[::1", key_id=KEY_ID, private_key_pem=keypair[0]
        )
