"""Outgoing federation HTTP: signed fetches, deliveries and WebFinger, with egress control.

One `FederationClient` wraps one aiohttp session.  Every connection goes through an
egress check: the host is resolved asynchronously, loopback/private/link-local/CGNAT/
ULA/multicast/reserved addresses are refused unless allow-listed, and the connector
dials only the addresses that passed (so DNS rebinding can't swap them afterwards).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from federation.http1 import ConnectionPool, resolver_for
from federation.models import host_of
from federation.signatures import PreparedSignature, prepare_cavage, prepare_rfc9421, rsa_sign

__all__ = [
    "ACCEPT_ACTIVITY",
    "ACTIVITY_CONTENT_TYPE",
    "ALLOWED_PRIVATE_SETTING",
    "DeliveryOutcome",
    "EgressDenied",
    "FederationClient",
    "FetchError",
    "classify_delivery_status",
    "egress_connector",
    "is_restricted_address",
    "literal_address_allowed",
]

ACCEPT_ACTIVITY = (
    'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
)
ACTIVITY_CONTENT_TYPE = "application/activity+json"
ALLOWED_PRIVATE_SETTING = "federation.allowed_private_addresses"
MAX_DOCUMENT_BYTES = 1024 * 1024  # Mastodon's cap on fetched documents and inbox bodies
MAX_REDIRECTS = 3  # Mastodon follows at most 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_AS_PROFILE = "https://www.w3.org/ns/activitystreams"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::\d{1,5})?$|^\[[0-9a-f:.]+\](?::\d{1,5})?$")

SignatureFormat = Literal["cavage", "rfc9421"]
GetAddrInfo = Callable[..., Awaitable[list[tuple[Any, ...]]]]
# The private-key operation of a signature, (private PEM, message) -> signature, made elsewhere (e.g.
# in a pool of signing processes); without one it is made in place.
RsaSigner = Callable[[str, bytes], Awaitable[bytes]]
_CHECKED_URLS_MAX = 8192


class _Inbox(msgspec.Struct, frozen=True):
    """An inbox URL that passed the egress check, taken apart for sending."""

    url: URL
    host: str  # host[:port] as `host_of` spells it (signature formats are known per host)
    scheme: str
    connect_host: str  # the name to resolve, or the IP literal to dial
    port: int
    literal: bool  # an IP literal (checked by `_check_url`), not a name for the guarded resolver
    path: str  # path?query, exactly as signed


class FetchError(Exception):
    """A fetch failed: HTTP error, bad content type, too large, id on another host..."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason if status is None else f"{reason} (HTTP {status})")
        self.reason = reason
        self.status = status


class EgressDenied(FetchError):
    """Refused before connecting: private/reserved address or disallowed scheme."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class DeliveryOutcome(msgspec.Struct):
    """Result of one delivery: `result` tells the queue what to do next.

    ok: delivered.  retry: try again later (5xx, 401/408/429, network errors, timeouts).
    final: give up (other 4xx, 501, refused by egress policy).  gone: 410, the inbox is gone.
    """

    status: int | None
    result: Literal["ok", "retry", "final", "gone"]
    error: str | None = None
    signature_format: SignatureFormat | None = None


def classify_delivery_status(status: int) -> Literal["ok", "retry", "final", "gone"]:
    """Mastodon's delivery_worker rules, with 410 split out as 'gone'."""
    if 200 <= status < 300:
        return "ok"
    if status == 410:
        return "gone"
    if status == 501 or (400 <= status < 500 and status not in (401, 408, 429)):
        return "final"
    return "retry"


def is_restricted_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast, unspecified,
    reserved, documentation...: anything that isn't a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return True
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return True
    return ip.is_private or ip.is_reserved or not ip.is_global


class _EgressPolicy:
    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = [ipaddress.ip_network(a.strip(), strict=False) for a in allowed]

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return True
        return not is_restricted_address(ip)

    @staticmethod
    def denied(host: str, addresses: Iterable[str]) -> EgressDenied:
        shown = ", ".join(sorted(set(addresses))[:4])
        return EgressDenied(
            f"refusing to connect to {host} ({shown}): private, loopback or reserved address; "
            f"list it in {ALLOWED_PRIVATE_SETTING} to allow it"
        )


class _GuardedResolver(AbstractResolver):
    """Resolves with loop.getaddrinfo and returns only addresses the policy allows; the
    connector then dials exactly these, so the checked address is the one used."""

    def __init__(self, policy: _EgressPolicy, getaddrinfo: GetAddrInfo | None = None) -> None:
        self._policy = policy
        self._getaddrinfo = getaddrinfo

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        gai = self._getaddrinfo or asyncio.get_running_loop().getaddrinfo
        infos = await gai(host, port, type=socket.SOCK_STREAM, family=family)
        results: list[ResolveResult] = []
        refused: list[str] = []
        for fam, _, proto, _, sockaddr in infos:
            if fam not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = str(sockaddr[0])
            if not self._policy.allows(address):
                refused.append(address)
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=int(sockaddr[1]) or port,
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            if refused:
                raise self._policy.denied(host, refused)
            raise OSError(f"could not resolve {host}")
        return results

    async def close(self) -> None:
        return None


def egress_connector(allowed_private_networks: Iterable[str] = (), *, limit: int = 256,
                     ssl: ssl_module.SSLContext | bool = True,
                     getaddrinfo: GetAddrInfo | None = None) -> aiohttp.TCPConnector:
    """A connector that dials only addresses the egress policy allows: names are resolved and
    checked by the guarded resolver (EgressDenied when every address is refused). IP literals skip
    the resolver: check them with `literal_address_allowed` before sending."""
    return aiohttp.TCPConnector(resolver=_GuardedResolver(_EgressPolicy(allowed_private_networks), getaddrinfo),
                                limit=limit, ttl_dns_cache=60, ssl=ssl)


def literal_address_allowed(host: str, allowed_private_networks: Iterable[str] = ()) -> bool | None:
    """For a host that is an IP literal: whether the policy allows it; None for a name."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return None
    return _EgressPolicy(allowed_private_networks).allows(bare)


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    mime, *rest = content_type.split(";")
    params = {}
    for p in rest:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return mime.strip().lower(), params


def _is_activity_type(content_type: str | None) -> bool:
    mime, params = _media_type(content_type)
    if mime in ("application/activity+json", "application/json"):
        return True
    return mime == "application/ld+json" and _AS_PROFILE in params.get("profile", "").split()


def _is_jrd_type(content_type: str | None) -> bool:
    return _media_type(content_type)[0] in ("application/jrd+json", "application/json")


def _other(fmt: SignatureFormat) -> SignatureFormat:
    return "rfc9421" if fmt == "cavage" else "cavage"


class FederationClient:
    """Outgoing federation requests over one aiohttp session (create it inside the loop).

    `allowed_private_networks`: CIDRs or addresses exempt from the private-address ban
    (the server's `federation.allowed_private_addresses` setting).  `allow_http` permits
    plain-http URLs at all; `scheme_for(host)` (default: always `default_scheme`) picks
    the scheme for WebFinger lookups.  `getaddrinfo` replaces DNS (tests, split DNS).
    `on_signature_format(host, fmt)` is called when a host's signature format is learned.
    """

    def __init__(
        self,
        user_agent: str,
        allowed_private_networks: Iterable[str] = (),
        allow_http: bool = False,
        timeout: float = 10.0,
        *,
        default_scheme: str = "https",
        scheme_for: Callable[[str], str] | None = None,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
        max_connections: int = 256,
        ssl: ssl_module.SSLContext | bool = True,
        getaddrinfo: GetAddrInfo | None = None,
        on_signature_format: Callable[[str, SignatureFormat], None] | None = None,
    ) -> None:
        self.user_agent = user_agent
        self.allow_http = allow_http
        self.timeout = timeout
        self.default_scheme = default_scheme
        self.max_document_bytes = max_document_bytes
        self._scheme_for = scheme_for
        self._allowed_private = list(allowed_private_networks)
        self._policy = _EgressPolicy(self._allowed_private)
        self._getaddrinfo = getaddrinfo
        self._ssl = ssl
        self._max_connections = max_connections
        self._formats: dict[str, SignatureFormat] = {}
        self._on_signature_format = on_signature_format
        self._session: aiohttp.ClientSession | None = None
        self._checked: dict[str, _Inbox] = {}  # inbox URL -> the checked URL taken apart, bounded
        self._deliveries: ConnectionPool | None = None  # keep-alive connections for deliveries

    # ---------------------------------------------------------------- session & policy

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = egress_connector(self._allowed_private, limit=self._max_connections, ssl=self._ssl,
                                         getaddrinfo=self._getaddrinfo)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": self.user_agent},
                trust_env=False,  # never route through an env-configured proxy unnoticed
            )
        return self._session

    def _delivery_pool(self) -> ConnectionPool:
        if self._deliveries is None:
            resolver = _GuardedResolver(self._policy, self._getaddrinfo)
            self._deliveries = ConnectionPool(resolver_for(resolver.resolve), ssl=self._ssl,
                                              limit=self._max_connections, seconds=self.timeout)
        return self._deliveries

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._deliveries is not None:
            self._deliveries.close()
            self._deliveries = None

    def _checked_inbox(self, inbox_url: str) -> _Inbox:
        """`_check_url` of an inbox URL, taken apart and remembered: one inbox takes many deliveries,
        and the policy of a client never changes. Only URLs that pass are remembered."""
        found = self._checked.get(inbox_url)
        if found is None:
            url = self._check_url(inbox_url)
            raw_host = url.raw_host or ""
            try:
                ipaddress.ip_address(raw_host.split("%", 1)[0])
                literal = True
            except ValueError:
                literal = False
                if raw_host.replace(".", "").isdigit():  # 2130706434, 127.1, 127.0.0.2.: as aiohttp, refused
                    raise ValueError(f"{raw_host} - is not a canonical IPv4 address") from None
            parts = urlsplit(str(url))
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            port = url.port or (443 if url.scheme == "https" else 80)
            found = _Inbox(url, host_of(str(url)), url.scheme, raw_host, port, literal, path)
            if len(self._checked) >= _CHECKED_URLS_MAX:
                self._checked.clear()
            self._checked[inbox_url] = found
        return found

    def _check_url(self, url: str | URL) -> URL:
        """Scheme check, plus the address check for IP literals: aiohttp's connector
        skips the resolver for those, so they are checked here, before connecting."""
        u = url if isinstance(url, URL) else URL(url)
        if u.scheme == "http" and not self.allow_http:
            raise EgressDenied(f"plain http is not allowed: {u.human_repr()}")
        if u.scheme not in ("http", "https") or not u.raw_host:
            raise EgressDenied(f"not an http(s) URL: {u.human_repr()}")
        if u.user is not None or u.password is not None:
            raise EgressDenied("URLs with credentials are not allowed")
        host = u.raw_host
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return u  # a name: checked by the resolver at connect time
        if not self._policy.allows(host):
            raise self._policy.denied(host, [host])
        return u

    # ---------------------------------------------------------------- signature formats

    def signature_format_for(self, host: str) -> SignatureFormat | None:
        """The signature format known to work for `host` (host[:port]), if any."""
        return self._formats.get(host.lower())

    def preload_signature_formats(self, formats: Mapping[str, str]) -> None:
        """Restore persisted host → "cavage"|"rfc9421" knowledge."""
        for host, fmt in formats.items():
            if fmt in ("cavage", "rfc9421"):
                self._formats[host.lower()] = fmt  # type: ignore[assignment]

    @property
    def signature_formats(self) -> dict[str, SignatureFormat]:
        return dict(self._formats)

    def _learn(self, host: str, fmt: SignatureFormat) -> None:
        if self._formats.get(host) != fmt:
            self._formats[host] = fmt
            if self._on_signature_format is not None:
                self._on_signature_format(host, fmt)

    # ---------------------------------------------------------------- low level

    async def _send(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        signer: tuple[str, str, SignatureFormat] | None,
        rsa: RsaSigner | None = None,
    ) -> aiohttp.ClientResponse:
        """Sign (if asked) and send one request without following redirects; `rsa` makes the
        private-key operation of the signature (e.g. in a process pool), else it is made here.
        `url` must have passed `_check_url`. The caller must release the response."""
        headers = dict(headers)
        if signer is not None:
            key_id, pem, fmt = signer
            prepare = prepare_cavage if fmt == "cavage" else prepare_rfc9421
            # Sign the exact URL aiohttp will put on the wire (yarl-normalised).
            prepared: PreparedSignature = prepare(method, str(url), headers, body, key_id)
            signature = rsa_sign(pem, prepared.message) if rsa is None else await rsa(pem, prepared.message)
            headers.update(prepared.finish(signature))
        return await self._get_session().request(
            method, url, headers=headers, data=body, allow_redirects=False
        )

    async def _read_limited(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.max_document_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise FetchError(f"response larger than {limit} bytes", resp.status)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise FetchError(f"response larger than {limit} bytes", resp.status)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _get_json(
        self,
        url: str,
        accept: str,
        type_ok: Callable[[str | None], bool],
        signer: tuple[str, str] | None,
    ) -> tuple[URL, dict[str, Any]]:
        """GET with manual redirects (each hop re-checked and re-signed); returns the
        final URL and the decoded JSON object."""
        try:
            current = self._check_url(url)
            for _ in range(MAX_REDIRECTS + 1):
                resp = await self._get_once(current, accept, signer)
                try:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise FetchError("redirect without Location", resp.status)
                        current = self._check_url(current.join(URL(location)))
                        continue
                    if not 200 <= resp.status < 300:
                        raise FetchError("request failed", resp.status)
                    if not type_ok(resp.headers.get("Content-Type")):
                        raise FetchError(
                            f"unexpected content type {resp.headers.get('Content-Type')!r}", resp.status
                        )
                    raw = await self._read_limited(resp)
                finally:
                    resp.release()
                try:
                    doc = msgspec.json.decode(raw)
                except msgspec.DecodeError:
                    raise FetchError("response is not valid JSON", resp.status) from None
                if not isinstance(doc, dict):
                    raise FetchError("response is not a JSON object", resp.status)
                return current, doc
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:  # ValueError: unparseable URL
            raise FetchError(f"{type(e).__name__}: {e}") from e
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _get_once(
        self, url: URL, accept: str, signer: tuple[str, str] | None
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": accept}
        if signer is None:
            return await self._send("GET", url, headers, None, None)
        host = host_of(str(url))
        known = self._formats.get(host)
        fmt: SignatureFormat = known or "cavage"
        resp = await self._send("GET", url, headers, None, (signer[0], signer[1], fmt))
        # Double-knock only on 401: some servers answer a bad GET signature with a stub
        # document instead, which is why cavage, the format everyone speaks, goes first.
        if resp.status == 401:
            resp.release()
            other = _other(fmt)
            resp = await self._send("GET", url, headers, None, (signer[0], signer[1], other))
            if 200 <= resp.status < 300:
                self._learn(host, other)
        return resp

    # ---------------------------------------------------------------- public API

    async def fetch(self, url: str, *, key_id: str, private_key_pem: str) -> dict[str, Any]:
        """Signed GET of an ActivityPub document.

        Raises FetchError (HTTP errors, non-AS2 content type, > 1 MB, > 3 redirects, or a
        document whose `id` is on another host than the URL finally fetched) or
        EgressDenied.
        """
        final, doc = await self._get_json(url, ACCEPT_ACTIVITY, _is_activity_type, (key_id, private_key_pem))
        doc_id = doc.get("id")
        if not isinstance(doc_id, str):
            raise FetchError("document has no id")
        if host_of(doc_id) != host_of(str(final)):
            raise FetchError(f"document id {doc_id!r} is not on {host_of(str(final))}")
        return doc

    async def deliver(
        self, inbox_url: str, body: bytes, *, key_id: str, private_key_pem: str, rsa: RsaSigner | None = None
    ) -> DeliveryOutcome:
        """Signed POST of an activity.  Never raises for delivery failures.

        Unknown hosts get draft-cavage first; on 400/401 the other format is tried once
        and remembered if it works (see signature_format_for / on_signature_format).
        `rsa`: where the private-key operation is made (a process pool keeps RSA off the event loop).
        """
        try:
            inbox = self._checked_inbox(inbox_url)
        except (EgressDenied, ValueError) as e:
            return DeliveryOutcome(status=None, result="final", error=str(e))
        host = inbox.host
        known = self._formats.get(host)
        fmt: SignatureFormat = known or "cavage"
        try:
            status, error = await self._post(inbox, body, key_id, private_key_pem, fmt, rsa)
            if status in (400, 401):
                other = _other(fmt)
                status2, error2 = await self._post(inbox, body, key_id, private_key_pem, other, rsa)
                if 200 <= status2 < 300:
                    self._learn(host, other)
                    return DeliveryOutcome(status=status2, result="ok", signature_format=other)
                if status2 not in (400, 401):  # otherwise report the preferred format's answer
                    status, error, fmt = status2, error2, other
            elif 200 <= status < 300:
                self._learn(host, fmt)
        except (EgressDenied, aiohttp.InvalidURL, ValueError) as e:
            # Policy refusals and unusable URLs won't get better by retrying.
            return DeliveryOutcome(status=None, result="final", error=str(e), signature_format=fmt)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return DeliveryOutcome(
                status=None, result="retry", error=f"{type(e).__name__}: {e}".strip(), signature_format=fmt
            )
        result = classify_delivery_status(status)
        return DeliveryOutcome(
            status=status, result=result, error=None if result == "ok" else error, signature_format=fmt
        )

    async def _post(
        self, inbox: _Inbox, body: bytes, key_id: str, pem: str, fmt: SignatureFormat, rsa: RsaSigner | None = None
    ) -> tuple[int, str]:
        """One signed POST over the lean HTTP/1.1 client (federation/http1.py): (status, error text)."""
        headers = {"User-Agent": self.user_agent, "Content-Type": ACTIVITY_CONTENT_TYPE, "Accept": ACCEPT_ACTIVITY}
        prepare = prepare_cavage if fmt == "cavage" else prepare_rfc9421
        prepared = prepare("POST", str(inbox.url), headers, body, key_id)
        signature = rsa_sign(pem, prepared.message) if rsa is None else await rsa(pem, prepared.message)
        headers.update(prepared.finish(signature))
        status, start = await self._delivery_pool().post(inbox.scheme, inbox.connect_host, inbox.port, inbox.literal,
                                                         inbox.path, headers, body)
        text = start.decode("utf-8", "replace").strip() if not 200 <= status < 300 else ""
        return status, f"HTTP {status}: {text}" if text else f"HTTP {status}"

    def _webfinger_url(self, acct: str) -> tuple[str, str, str]:
        value = acct.strip()
        if value.lower().startswith("acct:"):
            value = value[5:]
        value = value.removeprefix("@")
        user, sep, host = value.rpartition("@")
        host = host.lower()
        if not sep or not user or "@" in user or any(c.isspace() or c in "/?#:" for c in user):
            raise FetchError(f"not an account address: {acct!r}")
        if not _HOST_RE.match(host):
            raise FetchError(f"not an account address: {acct!r}")
        scheme = self._scheme_for(host) if self._scheme_for else self.default_scheme
        return scheme, user, host

    def webfinger_url(self, acct: str) -> str:
        """The URL `webfinger(acct)` requests; raises FetchError for something that is no account address."""
        scheme, user, host = self._webfinger_url(acct)
        return str(URL(f"{scheme}://{host}/.well-known/webfinger?resource=acct:{user}@{host}"))

    async def webfinger(self, acct: str) -> dict[str, Any]:
        """Look up `acct:user@host` (also `user@host`, `@user@host`); returns the JRD."""
        url = self.webfinger_url(acct)
        _, jrd = await self._get_json(url, "application/jrd+json, application/json", _is_jrd_type, None)
        return jrd

    async def resolve_acct(self, acct: str) -> str:
        """WebFinger an account and return its actor URL (the `self` link)."""
        jrd = await self.webfinger(acct)
        links = jrd.get("links")
        for link in links if isinstance(links, list) else []:
            if not isinstance(link, dict) or link.get("rel") != "self":
                continue
            href = link.get("href")
            if (
                _is_activity_type(link.get("type"))
                and isinstance(href, str)
                and href.startswith(("https://", "http://"))
            ):
                return href
        raise FetchError(f"no ActivityPub actor link for {acct}")
