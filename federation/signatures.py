"""HTTP Signatures: draft-cavage (what most of the fediverse speaks) and RFC 9421.

Signing returns the headers to add to an outgoing request.  Verification is split in
two so the server can look up (and, on failure, refetch once) the signer's public key
asynchronously between the steps:

    sr = parse_signed_request(method, path_qs, headers, body)   # cheap checks, no key needed
    pem = await keys.get(sr.key_id)
    verify_signed_request(sr, pem)                               # RSA verify, raises SignatureError

Everything here is synchronous and CPU-bound but fast (one RSA verify is ~30 µs), except
`generate_rsa_keypair`, which takes tens of milliseconds and belongs in an executor.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import re
import time
from collections.abc import Mapping
from email.utils import formatdate, parsedate_to_datetime
from functools import cache, lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

__all__ = [
    "SignatureError",
    "SignedRequest",
    "generate_rsa_keypair",
    "load_private_key",
    "load_public_key",
    "sign_cavage",
    "sign_rfc9421",
    "PreparedSignature",
    "prepare_cavage",
    "prepare_rfc9421",
    "rsa_sign",
    "rsa_sign_many",
    "parse_signed_request",
    "verify_signed_request",
    "body_digest_header",
    "content_digest_header",
    "FUTURE_SKEW",
    "CLOCK_SKEW_MARGIN",
]

# Mastodon's window (app/lib/signed_request.rb): a signature is valid from `created` until
# `expires` (default created+5 min, capped at created+12 h), with a 1 h clock-skew margin
# on both sides: effectively -65 min ... +60 min around now.
CLOCK_SKEW_MARGIN = 3600.0
FUTURE_SKEW = 3600.0
DEFAULT_VALIDITY = 300.0
MAX_VALIDITY = 12 * 3600.0



@cache
def _crypto() -> SimpleNamespace:
    """The parts of the cryptography package used here, imported on the first key used: a process
    that neither signs nor verifies (an idle server, a CLI command) does not load it."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
    return SimpleNamespace(InvalidSignature=InvalidSignature, serialization=serialization, ed25519=ed25519,
                           rsa=rsa, pkcs1=padding.PKCS1v15(), sha256=hashes.SHA256())
_RFC9421_LABEL = "sig1"


class SignatureError(Exception):
    """A request signature is missing, malformed, outside the time window or wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignedRequest(msgspec.Struct, frozen=True):
    """A structurally valid signed request, waiting for its key to be verified.

    `candidates` are the signing strings / signature bases to try in order (cavage GETs
    with a query string get a second, query-less candidate for legacy peers).
    """

    key_id: str
    scheme: Literal["cavage", "rfc9421"]
    algorithm: str
    covered: tuple[str, ...]
    created: float
    signature: bytes
    candidates: tuple[bytes, ...]


# --------------------------------------------------------------------------- keys


def generate_rsa_keypair() -> tuple[str, str]:
    """Generate an RSA-2048 keypair: (private PEM PKCS#8, public PEM SPKI).

    Synchronous and CPU-heavy (~50 ms): run it in an executor, never on the event loop,
    e.g. ``await loop.run_in_executor(None, generate_rsa_keypair)``.
    """
    c = _crypto()
    serialization = c.serialization
    key = c.rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private_pem, public_pem


@lru_cache(maxsize=256)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parse a PEM private key, cached: PEM parsing costs far more than signing."""
    c = _crypto()
    key = c.serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, c.rsa.RSAPrivateKey):
        raise TypeError("only RSA private keys can sign HTTP requests")
    return key


@lru_cache(maxsize=8192)
def _load_public_key_cached(pem: str) -> rsa.RSAPublicKey | ed25519.Ed25519PublicKey:
    c = _crypto()
    key = c.serialization.load_pem_public_key(pem.strip().encode("ascii"))
    if not isinstance(key, c.rsa.RSAPublicKey | c.ed25519.Ed25519PublicKey):
        raise ValueError("unsupported public key type")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey | ed25519.Ed25519PublicKey:
    """Parse a peer's PEM public key (RSA or Ed25519), LRU-cached; raises SignatureError."""
    try:
        return _load_public_key_cached(pem)
    except (ValueError, TypeError, UnicodeError) as e:
        raise SignatureError(f"unusable public key: {e}") from None


# --------------------------------------------------------------------------- helpers


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def body_digest_header(body: bytes) -> str:
    """Value of the legacy `Digest` header (RFC 3230) Mastodon requires on POSTs."""
    return "SHA-256=" + _b64(hashlib.sha256(body).digest())


def content_digest_header(body: bytes) -> str:
    """Value of the RFC 9530 `Content-Digest` header."""
    return "sha-256=:" + _b64(hashlib.sha256(body).digest()) + ":"


@lru_cache(maxsize=4096)
def _split_url(url: str) -> tuple[str, str, str]:
    """(scheme, Host header value, path?query) the way the request will go on the wire."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    path_qs = parts.path or "/"
    if parts.query:
        path_qs += "?" + parts.query
    return scheme, host, path_qs


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup; repeated fields (multidicts) are joined with ", "."""
    getall = getattr(headers, "getall", None)
    if getall is not None:
        values = getall(name, None)
        if not values:
            return None
        return ", ".join(v.strip() for v in values)
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v.strip()
        return None
    return value.strip()


_IMF_RE = re.compile(r"^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _parse_http_date(value: str) -> float:
    # Fast path for IMF-fixdate (what everyone sends); email.utils for the obsolete forms.
    m = _IMF_RE.match(value)
    if m and m.group(2) in _MONTHS:
        d, mon, y, hh, mm, ss = m.groups()
        try:
            return float(calendar.timegm((int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss), 0, 0, 0)))
        except (ValueError, OverflowError):
            pass
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        raise SignatureError(f"invalid Date header: {value!r}") from None


def _check_time_window(created: float, expires: float | None, now: float) -> None:
    if created > now + FUTURE_SKEW:
        raise SignatureError("signature date is too far in the future")
    if expires is None:
        expires = created + DEFAULT_VALIDITY
    expires = min(expires, created + MAX_VALIDITY)
    if now > expires + CLOCK_SKEW_MARGIN:
        raise SignatureError("signature has expired")


def _b64decode(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} is not valid base64") from None
    if not raw:
        raise SignatureError(f"{what} is empty")
    return raw


# --------------------------------------------------------------------------- signing


class PreparedSignature(msgspec.Struct):
    """A request signature made up to the private-key operation: `message` is what the key signs
    (the cavage signing string or the RFC 9421 signature base), `headers` the headers to add besides
    the signature itself. `finish(signature)` gives every header to add. Preparing is cheap and done
    where the request is made; the RSA operation (`rsa_sign`) may run elsewhere (another process)."""

    headers: dict[str, str]
    message: bytes
    signature_header: str  # the header that carries the signature; its value is
    before: str  # this, the base64 signature,
    after: str  # and this

    def finish(self, signature: bytes) -> dict[str, str]:
        out = dict(self.headers)
        out[self.signature_header] = self.before + _b64(signature) + self.after
        return out


def rsa_sign(private_key_pem: str, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (both formats' algorithm) over `message`: the one costly step."""
    c = _crypto()
    return load_private_key(private_key_pem).sign(message, c.pkcs1, c.sha256)


def rsa_sign_many(items: list[tuple[str, bytes]]) -> list[bytes]:
    """`rsa_sign` for each (private PEM, message): one hand-over to a signing process for many."""
    return [rsa_sign(pem, message) for pem, message in items]


_DIGESTS: dict[bytes, str] = {}
_DIGESTS_MAX = 64


def _sha256_b64(body: bytes) -> str:
    """Base64 SHA-256 of a body, remembered for the last few bodies: one activity goes to many inboxes,
    and its digest is the same for each of them."""
    found = _DIGESTS.get(body)
    if found is None:
        found = _b64(hashlib.sha256(body).digest())
        if len(_DIGESTS) >= _DIGESTS_MAX:
            _DIGESTS.clear()
        _DIGESTS[body] = found
    return found


_date_cache: tuple[int, str] = (0, "")


def _http_date(now: float | None) -> str:
    """IMF-fixdate of `now` (default: the current time), formatted once per second."""
    global _date_cache
    second = int(now if now is not None else time.time())
    if _date_cache[0] != second or not _date_cache[1]:
        _date_cache = (second, formatdate(second, usegmt=True))
    return _date_cache[1]


def prepare_cavage(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    *,
    now: float | None = None,
) -> PreparedSignature:
    """`sign_cavage` up to the private-key operation."""
    if '"' in key_id:
        raise ValueError("keyId must not contain quotes")
    method_l = method.lower()
    _, host, path_qs = _split_url(url)
    given = _lower_keys(headers)
    date = given.get("date") or _http_date(now)
    out = {"Date": date, "Host": host}
    signing = f"(request-target): {method_l} {path_qs}\nhost: {host}\ndate: {date}"
    names = "(request-target) host date"
    if body is not None or method_l == "post":
        content_type = given.get("content-type")
        if content_type is None:
            raise ValueError("a signed POST needs a Content-Type header")
        digest = _sha256_b64(body or b"")
        out["Digest"] = "SHA-256=" + digest
        out["Content-Digest"] = "sha-256=:" + digest + ":"
        signing += f"\ndigest: SHA-256={digest}\ncontent-type: {content_type}"
        names += " digest content-type"
    return PreparedSignature(out, signing.encode("utf-8"), "Signature",
                             f'keyId="{key_id}",algorithm="rsa-sha256",headers="{names}",signature="', '"')


def sign_cavage(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key_pem: str,
    *,
    now: float | None = None,
) -> dict[str, str]:
    """Sign a request the way Mastodon does (draft-cavage-12, rsa-sha256).

    `headers` are the request's other headers (a POST must include Content-Type).
    Returns the headers to add: Date, Host, Signature, and for bodies Digest and
    Content-Digest.  `now` (unix time) is for tests.
    """
    prepared = prepare_cavage(method, url, headers, body, key_id, now=now)
    return prepared.finish(rsa_sign(private_key_pem, prepared.message))


def prepare_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    *,
    now: float | None = None,
) -> PreparedSignature:
    """`sign_rfc9421` up to the private-key operation."""
    method_u = method.upper()
    scheme, host, path_qs = _split_url(url)
    ts = int(now if now is not None else time.time())
    given = _lower_keys(headers)
    out = {"Date": given.get("date") or _http_date(ts), "Host": host}
    components: list[tuple[str, str]] = [
        ("@method", method_u),
        ("@target-uri", f"{scheme}://{host}{path_qs}"),
    ]
    if body is not None or method_u == "POST":
        digest = _sha256_b64(body or b"")
        out["Content-Digest"] = "sha-256=:" + digest + ":"
        out["Digest"] = "SHA-256=" + digest
        components.append(("content-digest", out["Content-Digest"]))
    params = " ".join(_sf_string(name) for name, _ in components)
    sig_params = f'({params});created={ts};keyid={_sf_string(key_id)};alg="rsa-v1_5-sha256"'
    base = "".join(f'"{name}": {value}\n' for name, value in components)
    base += f'"@signature-params": {sig_params}'
    out["Signature-Input"] = f"{_RFC9421_LABEL}={sig_params}"
    return PreparedSignature(out, base.encode("utf-8"), "Signature", f"{_RFC9421_LABEL}=:", ":")


def sign_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key_pem: str,
    *,
    now: float | None = None,
) -> dict[str, str]:
    """Sign a request per RFC 9421 (label sig1, rsa-v1_5-sha256), as Mastodon 4.5+ accepts.

    Covers ("@method" "@target-uri") and, for bodies, "content-digest".  Returns the
    headers to add: Date, Host, Signature-Input, Signature, and for bodies Content-Digest
    and the legacy Digest.
    """
    prepared = prepare_rfc9421(method, url, headers, body, key_id, now=now)
    return prepared.finish(rsa_sign(private_key_pem, prepared.message))


# --------------------------------------------------------------------------- verification


def parse_signed_request(
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: float | None = None,
    *,
    scheme: str = "https",
    authority: str | None = None,
) -> SignedRequest:
    """Check an incoming request's signature structure, digest and time window.

    `headers` must be case-insensitive (aiohttp's CIMultiDictProxy is).  `scheme` and
    `authority` (default: the Host header) rebuild RFC 9421's @target-uri; pass the
    public scheme when running behind a TLS-terminating proxy.  Raises SignatureError.
    The returned SignedRequest still has to go through `verify_signed_request`.
    """
    now = time.time() if now is None else now
    if _get_header(headers, "signature-input") is not None:
        return _parse_rfc9421(method, path_qs, headers, body, now, scheme, authority)
    raw = _get_header(headers, "signature")
    if raw is None:
        auth = _get_header(headers, "authorization")
        if auth is not None and auth[:10].lower() == "signature ":
            raw = auth[10:]
    if raw is None:
        raise SignatureError("request is not signed")
    return _parse_cavage(method, path_qs, headers, body, now, raw)


def verify_signed_request(sr: SignedRequest, public_key_pem: str) -> None:
    """Verify the signature with the signer's public key; raises SignatureError on mismatch."""
    key = load_public_key(public_key_pem)
    c = _crypto()
    invalid = c.InvalidSignature
    if isinstance(key, c.rsa.RSAPublicKey):
        if sr.algorithm == "ed25519":
            raise SignatureError("signature algorithm does not match the key type")
        for candidate in sr.candidates:
            try:
                key.verify(sr.signature, candidate, c.pkcs1, c.sha256)
                return
            except invalid:
                continue
    else:
        if sr.algorithm not in ("hs2019", "ed25519"):
            raise SignatureError("signature algorithm does not match the key type")
        ed_key = cast("ed25519.Ed25519PublicKey", key)
        for candidate in sr.candidates:
            try:
                ed_key.verify(sr.signature, candidate)
                return
            except invalid:
                continue
    raise SignatureError("signature does not match the key")


_CAVAGE_PARAM_RE = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^",\s]*))\s*(?:,|$)')


def _parse_cavage_params(raw: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos, n = 0, len(raw)
    while pos < n:
        m = _CAVAGE_PARAM_RE.match(raw, pos)
        if m is None or m.end() == pos:
            raise SignatureError("malformed Signature header")
        name = m.group(1)
        if name in params:
            raise SignatureError(f"duplicate Signature parameter {name}")
        params[name] = m.group(2) if m.group(2) is not None else m.group(3)
        pos = m.end()
    return params


def _check_sha256_digest(value: str, body: bytes) -> None:
    offered: dict[str, str] = {}
    for part in value.split(","):
        alg, sep, digest = part.strip().partition("=")
        if sep:
            offered[alg.lower()] = digest.strip()
    if "sha-256" not in offered:
        algs = ", ".join(offered) or "none"
        raise SignatureError(f"Digest must use SHA-256 (offered: {algs})")
    if offered["sha-256"] != _b64(hashlib.sha256(body).digest()):
        raise SignatureError("Digest does not match the body")


def _int_param(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value.split(".", 1)[0])  # some peers send fractional seconds
    except ValueError:
        raise SignatureError(f"invalid {name} parameter") from None


def _parse_cavage(
    method: str, path_qs: str, headers: Mapping[str, str], body: bytes | None, now: float, raw: str
) -> SignedRequest:
    params = _parse_cavage_params(raw)
    key_id = params.get("keyId")
    sig_b64 = params.get("signature")
    if not key_id:
        raise SignatureError("Signature has no keyId")
    if not sig_b64:
        raise SignatureError("Signature has no signature value")
    algorithm = (params.get("algorithm") or "hs2019").lower()
    if algorithm not in ("rsa-sha256", "hs2019"):
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    default_headers = "(created)" if algorithm == "hs2019" else "date"
    covered = tuple((params.get("headers") or default_headers).lower().split())
    if not covered:
        raise SignatureError("Signature covers no headers")
    cov = set(covered)
    if "date" not in cov and "(created)" not in cov:
        raise SignatureError("Signature must cover date or (created)")
    if "(request-target)" not in cov and "digest" not in cov:
        raise SignatureError("Signature must cover (request-target) or digest")
    method_l = method.lower()
    if method_l == "get" and "host" not in cov:
        raise SignatureError("a signed GET must cover host")
    if method_l == "post" and "digest" not in cov:
        raise SignatureError("a signed POST must cover digest")

    created_param = _int_param(params.get("created"), "created")
    expires_param = _int_param(params.get("expires"), "expires")
    lines: list[str] = []
    rt_index = -1
    for name in covered:
        if name == "(request-target)":
            rt_index = len(lines)
            lines.append(f"(request-target): {method_l} {path_qs}")
        elif name == "(created)":
            if created_param is None:
                raise SignatureError("(created) is covered but the created parameter is missing")
            lines.append(f"(created): {created_param}")
        elif name == "(expires)":
            if expires_param is None:
                raise SignatureError("(expires) is covered but the expires parameter is missing")
            lines.append(f"(expires): {expires_param}")
        else:
            value = _get_header(headers, name)
            if value is None:
                raise SignatureError(f"signed header {name!r} is missing")
            lines.append(f"{name}: {value}")

    if "digest" in cov:
        _check_sha256_digest(_get_header(headers, "digest") or "", body or b"")

    # Only trust time values the signature covers: an unsigned `expires` could
    # otherwise stretch a captured signature's replay window to 12 h.
    if "(created)" in cov:
        created = float(created_param)  # type: ignore[arg-type]
    else:
        created = _parse_http_date(_get_header(headers, "date") or "")
    expires = float(expires_param) if "(expires)" in cov and expires_param is not None else None
    _check_time_window(created, expires, now)

    signature = _b64decode(sig_b64, "signature")
    candidates = ["\n".join(lines).encode("utf-8")]
    # Legacy peers sign (request-target) without the query string (mastodon#31994).
    if rt_index >= 0 and "?" in path_qs:
        lines[rt_index] = f"(request-target): {method_l} {path_qs.split('?', 1)[0]}"
        candidates.append("\n".join(lines).encode("utf-8"))
    return SignedRequest(
        key_id=key_id,
        scheme="cavage",
        algorithm=algorithm,
        covered=covered,
        created=created,
        signature=signature,
        candidates=tuple(candidates),
    )


def _check_content_digest(value: str, body: bytes) -> None:
    m = _FAST_DIGEST_RE.fullmatch(value)
    if m is not None:  # the usual single sha-256 member
        if _b64decode(m.group(1), "Content-Digest") != hashlib.sha256(body).digest():
            raise SignatureError("Content-Digest does not match the body")
        return
    try:
        members = _SFParser(value).dictionary()
    except SignatureError:
        raise SignatureError("malformed Content-Digest header") from None
    checked = False
    for alg, (digest, _params) in members.items():
        if alg == "sha-256":
            fn = hashlib.sha256
        elif alg == "sha-512":
            fn = hashlib.sha512
        else:
            continue
        if not isinstance(digest, bytes) or digest != fn(body).digest():
            raise SignatureError("Content-Digest does not match the body")
        checked = True
    if not checked:
        raise SignatureError("Content-Digest must use sha-256 or sha-512")


def _parse_rfc9421(
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: float,
    scheme: str,
    authority: str | None,
) -> SignedRequest:
    raw_input = _get_header(headers, "signature-input") or ""
    raw_sigs = _get_header(headers, "signature")
    if raw_sigs is None:
        raise SignatureError("Signature-Input without Signature")
    label, components, params, sig_params = _parse_signature_input(raw_input)
    sig_label, sig_value = _parse_signature_value(raw_sigs)
    if label != sig_label:
        raise SignatureError("Signature and Signature-Input labels differ")

    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("Signature-Input has no keyid")
    created = params.get("created")
    if type(created) is not int:
        raise SignatureError("Signature-Input has no integer created parameter")
    expires = params.get("expires")
    if expires is not None and type(expires) is not int:
        raise SignatureError("invalid expires parameter")
    alg = params.get("alg", "rsa-v1_5-sha256")
    if alg not in ("rsa-v1_5-sha256", "ed25519"):
        raise SignatureError(f"unsupported signature algorithm {alg!r}")

    host = authority if authority is not None else _get_header(headers, "host")
    path, _, query = path_qs.partition("?")
    covered: list[str] = []
    lines: list[str] = []
    for item, item_params in components:
        if not isinstance(item, str) or isinstance(item, _Token):
            raise SignatureError("component identifiers must be strings")
        if item_params:
            raise SignatureError(f"unsupported parameters on component {item!r}")
        if item != item.lower():
            raise SignatureError(f"component {item!r} is not lowercase")
        if item in covered:
            raise SignatureError(f"component {item!r} is covered twice")
        if item == "@method":
            value = method.upper()
        elif item in ("@target-uri", "@authority"):
            if not host:
                raise SignatureError("no Host to rebuild the target URI")
            value = f"{scheme}://{host.lower()}{path_qs}" if item == "@target-uri" else host.lower()
        elif item == "@scheme":
            value = scheme
        elif item == "@path":
            value = path or "/"
        elif item == "@query":
            value = "?" + query
        elif item == "@request-target":
            value = path_qs
        elif item.startswith("@"):
            raise SignatureError(f"unsupported derived component {item!r}")
        else:
            header_value = _get_header(headers, item)
            if header_value is None:
                raise SignatureError(f"covered header {item!r} is missing")
            value = header_value
        if "\n" in value or "\r" in value:
            raise SignatureError(f"component {item!r} contains a newline")
        covered.append(item)
        lines.append(f"{_sf_string(item)}: {value}")

    cov = set(covered)
    if "@method" not in cov:
        raise SignatureError("signature must cover @method")
    target_ok = "@target-uri" in cov or (
        "@authority" in cov
        and ("@request-target" in cov or ("@path" in cov and ("@query" in cov or not query)))
    )
    if not target_ok:
        raise SignatureError("signature must cover @target-uri")
    if method.upper() == "POST" and "content-digest" not in cov:
        raise SignatureError("a signed POST must cover content-digest")
    if "content-digest" in cov:
        _check_content_digest(_get_header(headers, "content-digest") or "", body or b"")

    _check_time_window(float(created), float(expires) if expires is not None else None, now)
    lines.append(f'"@signature-params": {sig_params}')
    return SignedRequest(
        key_id=key_id,
        scheme="rfc9421",
        algorithm=alg,
        covered=tuple(covered),
        created=float(created),
        signature=sig_value,
        candidates=("\n".join(lines).encode("utf-8"),),
    )


# --------------------------------------------------------------------------- structured fields
# A small RFC 8941 parser/serialiser: enough for Signature-Input, Signature and
# Content-Digest.  Kept in-house so the runtime doesn't depend on a test-only package.


class _Token(str):
    """An sf-token (serialised bare), as opposed to an sf-string."""


_KEY_RE = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN_RE = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_STRING_RE = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"')
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

_Params = dict[str, Any]
_UNESCAPE_RE = re.compile(r"\\(.)")
_NUMBER_RE = re.compile(r"-?\d{1,15}(\.\d{1,3})?")


class _SFParser:
    __slots__ = ("s", "i", "n")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0
        self.n = len(s)

    def _fail(self, what: str) -> SignatureError:
        return SignatureError(f"malformed structured header: {what} at offset {self.i}")

    def _skip(self, chars: str) -> None:
        while self.i < self.n and self.s[self.i] in chars:
            self.i += 1

    def dictionary(self) -> dict[str, tuple[Any, _Params]]:
        out: dict[str, tuple[Any, _Params]] = {}
        self._skip(" ")
        while self.i < self.n:
            key = self._key()
            if self.i < self.n and self.s[self.i] == "=":
                self.i += 1
                member = self._item_or_inner_list()
            else:
                member = (True, self._params())
            if key in out:
                raise self._fail(f"duplicate key {key!r}")
            out[key] = member
            self._skip(" \t")
            if self.i >= self.n:
                return out
            if self.s[self.i] != ",":
                raise self._fail("expected ','")
            self.i += 1
            self._skip(" \t")
            if self.i >= self.n:
                raise self._fail("trailing comma")
        return out

    def _item_or_inner_list(self) -> tuple[Any, _Params]:
        if self.i < self.n and self.s[self.i] == "(":
            self.i += 1
            items: list[tuple[Any, _Params]] = []
            while True:
                self._skip(" ")
                if self.i >= self.n:
                    raise self._fail("unterminated inner list")
                if self.s[self.i] == ")":
                    self.i += 1
                    return items, self._params()
                items.append((self._bare_item(), self._params()))
                if self.i < self.n and self.s[self.i] not in " )":
                    raise self._fail("expected ' ' or ')'")
        return self._bare_item(), self._params()

    def _params(self) -> _Params:
        params: _Params = {}
        while self.i < self.n and self.s[self.i] == ";":
            self.i += 1
            self._skip(" ")
            key = self._key()
            value: Any = True
            if self.i < self.n and self.s[self.i] == "=":
                self.i += 1
                value = self._bare_item()
            params[key] = value
        return params

    def _key(self) -> str:
        m = _KEY_RE.match(self.s, self.i)
        if m is None:
            raise self._fail("expected a key")
        self.i = m.end()
        return m.group()

    def _bare_item(self) -> Any:
        if self.i >= self.n:
            raise self._fail("expected an item")
        c = self.s[self.i]
        if c == '"':
            return self._string()
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise self._fail("unterminated byte sequence")
            chunk = self.s[self.i + 1 : end]
            if not set(chunk) <= _B64_CHARS:
                raise self._fail("invalid byte sequence")
            self.i = end + 1
            try:
                return base64.b64decode(chunk + "=" * (-len(chunk) % 4))
            except (binascii.Error, ValueError):
                raise self._fail("invalid base64") from None
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise self._fail("invalid boolean")
            self.i += 2
            return flag == "1"
        if c == "-" or c.isdigit():
            return self._number()
        m = _TOKEN_RE.match(self.s, self.i)
        if m is not None:
            self.i = m.end()
            return _Token(m.group())
        raise self._fail("unexpected character")

    def _string(self) -> str:
        m = _STRING_RE.match(self.s, self.i)
        if m is None:
            raise self._fail("invalid string")
        self.i = m.end()
        value = m.group(1)
        return _UNESCAPE_RE.sub(r"\1", value) if "\\" in value else value

    def _number(self) -> int | float:
        m = _NUMBER_RE.match(self.s, self.i)
        if m is None:
            raise self._fail("invalid number")
        self.i = m.end()
        return float(m.group()) if m.group(1) else int(m.group())


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sf_bare(value: Any) -> str:
    if isinstance(value, _Token):
        return str(value)
    if isinstance(value, str):
        return _sf_string(value)
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}.0"
    if isinstance(value, bytes):
        return ":" + _b64(value) + ":"
    raise SignatureError("unserialisable structured value")


def _sf_params(params: _Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_sf_bare(v)}" for k, v in params.items())


def _sf_inner_list(items: list[tuple[Any, _Params]], params: _Params) -> str:
    inner = " ".join(_sf_bare(v) + _sf_params(p) for v, p in items)
    return f"({inner}){_sf_params(params)}"


# Fast paths for the canonical shapes every implementation emits, e.g.
#   sig1=("@method" "@target-uri" "content-digest");created=1;keyid="…";alg="rsa-v1_5-sha256"
# Only canonically serialised input matches, so the raw text *is* the signature-params
# serialisation; anything else goes through the general structured-field parser.
_FAST_INPUT_RE = re.compile(
    r'([a-z*][a-z0-9_.*-]*)=(\((?:"[ !#-\[\]-~]*"(?: "[ !#-\[\]-~]*")*)?\)'
    r'(?:;[a-z*][a-z0-9_.*-]*=(?:"[ !#-\[\]-~]*"|-?[0-9]{1,15}))*)'
)
_FAST_COMPONENT_RE = re.compile(r'"([^"]*)"')
_FAST_PARAM_RE = re.compile(r';([a-z*][a-z0-9_.*-]*)=(?:"([^"]*)"|(-?[0-9]+))')
_FAST_SIG_RE = re.compile(r"([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]+=*):")
_FAST_DIGEST_RE = re.compile(r"sha-256=:([A-Za-z0-9+/]+=*):")


def _parse_signature_input(raw: str) -> tuple[str, list[tuple[Any, _Params]], _Params, str]:
    """(label, components, params, serialised signature-params) of the single signature."""
    m = _FAST_INPUT_RE.fullmatch(raw)
    if m is not None:
        inner, _, param_text = m.group(2).partition(")")
        params: _Params = {}
        for pm in _FAST_PARAM_RE.finditer(param_text):
            params[pm.group(1)] = pm.group(2) if pm.group(2) is not None else int(pm.group(3))
        components: list[tuple[Any, _Params]] = [(c, {}) for c in _FAST_COMPONENT_RE.findall(inner)]
        return m.group(1), components, params, m.group(2)
    inputs = _SFParser(raw).dictionary()
    if len(inputs) != 1:
        raise SignatureError("exactly one RFC 9421 signature is supported")
    label, (members, params) = next(iter(inputs.items()))
    if not isinstance(members, list):
        raise SignatureError("Signature-Input member must be an inner list")
    return label, members, params, _sf_inner_list(members, params)


def _parse_signature_value(raw: str) -> tuple[str, bytes]:
    m = _FAST_SIG_RE.fullmatch(raw)
    if m is not None:
        return m.group(1), _b64decode(m.group(2), "signature")
    sigs = _SFParser(raw).dictionary()
    if len(sigs) != 1:
        raise SignatureError("exactly one RFC 9421 signature is supported")
    label, (value, _) = next(iter(sigs.items()))
    if not isinstance(value, bytes) or not value:
        raise SignatureError("Signature member must be a byte sequence")
    return label, value
