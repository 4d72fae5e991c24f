"""The Web Push protocol: keys, encryption (RFC 8291), VAPID (RFC 8292) and the push services we may
reach (RFC 8030).

Encryption is http-ece's and VAPID signing py-vapid's (both from Mozilla's web-push-libs). A push
uses the standard `aes128gcm` encoding when the subscription says `standard`, and otherwise the
older `aesgcm` draft that Mastodon still sends to subscriptions made without it (the relays of
several apps only read that one). What an app needs to decrypt either is in the request: the body
alone for aes128gcm, the Encryption and Crypto-Key headers too for aesgcm.

Nothing here touches the database; the worker (server/workers/push.py) runs `prepare` off the event
loop and sends with `PushClient`.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import msgspec
from yarl import URL

# The cryptography package (with http_ece and py_vapid) is imported where a key is used, not at start:
# an instance that pushes nothing, or has not yet, does not carry it in memory.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

from federation.client import egress_connector, literal_address_allowed

TTL_SECONDS = 48 * 3600  # how long a push service may hold a push for an offline device (Mastodon's)
JWT_SECONDS = 12 * 3600  # RFC 8292: at most 24 hours
# One record of 4096 octets is what every push service must accept (RFC 8291 §4): the plaintext
# that fits in it after the aes128gcm header (86 octets), the delimiter and the tag.
MAX_PLAINTEXT = 4096 - 86 - 1 - 16
MAX_ENDPOINT_LENGTH = 2048
MAX_KEY_TEXT = 200  # generous for base64 of 65 octets
SEND_TIMEOUT = 10.0


class PushRefused(Exception):
    """An endpoint we will not send to: `reason` says why (for the client and the boundary log)."""

    def __init__(self, reason: str, host: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host


# -- base64, as clients send it -----------------------------------------------------------------------


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (apps send all four)."""
    cleaned = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)


def b64url(data: bytes, padded: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if padded else text.rstrip("=")


# -- subscription keys --------------------------------------------------------------------------------


def parse_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """The subscription's public key (a point on P-256) and auth secret (16 octets); ValueError with a
    reason for anything else."""
    if len(p256dh) > MAX_KEY_TEXT or len(auth) > MAX_KEY_TEXT:
        raise ValueError("subscription keys are too long")
    try:
        public, secret = b64decode(p256dh), b64decode(auth)
    except (binascii.Error, ValueError):
        raise ValueError("subscription keys must be base64") from None
    if len(public) != 65 or public[0] != 4:
        raise ValueError("keys[p256dh] must be an uncompressed P-256 public key (65 octets)")
    from cryptography.hazmat.primitives.asymmetric import ec
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        raise ValueError("keys[p256dh] is not a point on the P-256 curve") from None
    if len(secret) != 16:
        raise ValueError("keys[auth] must be 16 octets")
    return public, secret


# -- the instance's VAPID key -------------------------------------------------------------------------


class VapidKey(msgspec.Struct, frozen=True):
    private: str  # raw base64url of the 32-octet private scalar
    public: str  # raw base64url of the 65-octet public point

    @classmethod
    def generate(cls) -> VapidKey:
        from cryptography.hazmat.primitives.asymmetric import ec
        key = ec.generate_private_key(ec.SECP256R1())
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        return cls(private=b64url(scalar), public=b64url(_point(key.public_key())))

    @property
    def server_key(self) -> str:
        """The public key as apps receive it (`server_key`, `vapid.public_key`): URL-safe base64
        with padding, as Mastodon writes it."""
        return b64url(b64decode(self.public), padded=True)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        from cryptography.hazmat.primitives.asymmetric import ec
        return ec.derive_private_key(int.from_bytes(b64decode(self.private), "big"), ec.SECP256R1())

    def token_key(self) -> bytes:
        """The key that seals access tokens stored with subscriptions (derived, never stored)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"crosstalk web push access token").derive(b64decode(self.private))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


# -- access tokens kept with subscriptions ------------------------------------------------------------
# Pushes carry the subscription's access token (apps tell their accounts apart by it), so it is kept
# with the subscription, sealed under a key derived from the VAPID key and bound to the subscription's
# id. A copy of the subscriptions table alone does not reveal tokens; a copy of the whole database does
# (the VAPID key is in it too), which is why a revoked token's subscription is deleted with it.


def seal_token(key: bytes, subscription_id: int, token: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(12)
    return b64url(nonce + AESGCM(key).encrypt(nonce, token.encode(), str(subscription_id).encode()))


def open_token(key: bytes, subscription_id: int, sealed: str) -> str | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        raw = b64decode(sealed)
        return AESGCM(key).decrypt(raw[:12], raw[12:], str(subscription_id).encode()).decode()
    except (InvalidTag, ValueError, binascii.Error):
        return None


# -- where pushes may go ------------------------------------------------------------------------------


def host_allowed(host: str, patterns: list[str]) -> bool:
    """`host` (without port) matches a name in the list, or a `*.domain` entry's subdomains."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def check_endpoint(endpoint: str, allowed_hosts: list[str], allowed_private: list[str],
                   allow_http: bool) -> str:
    """The endpoint's host if we may send there; PushRefused otherwise. Names are resolved only when a
    push is sent (the connector refuses private addresses then); IP literals are checked here."""
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise PushRefused(f"the endpoint is longer than {MAX_ENDPOINT_LENGTH} characters")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise PushRefused("the endpoint is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise PushRefused("the endpoint must be an https URL")
    if parts.scheme == "http" and not allow_http:
        raise PushRefused("the endpoint must be an https URL", host)
    if parts.username is not None or parts.password is not None:
        raise PushRefused("the endpoint must not carry credentials", host)
    shown = host if port is None else f"{host}:{port}"
    if not host_allowed(host, allowed_hosts):
        raise PushRefused(f"push service {host} is not allowed on this server (push.allowed_hosts)", shown)
    if literal_address_allowed(host, allowed_private) is False:
        raise PushRefused(f"push service {host} is a private, loopback or reserved address "
                          "(push.allowed_private_addresses)", shown)
    return shown


# -- one push -----------------------------------------------------------------------------------------


class PreparedPush(msgspec.Struct, frozen=True):
    body: bytes
    headers: dict[str, str]


def prepare(payload: bytes, p256dh: bytes, auth: bytes, standard: bool, vapid: VapidKey, endpoint: str,
            subject: str, urgency: str = "normal") -> PreparedPush:
    """Encrypt `payload` for the subscription and sign the VAPID claims for its push service. CPU
    work (two ECDH derivations and an ECDSA signature): call it off the event loop."""
    import http_ece
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid01, Vapid02
    sender = ec.generate_private_key(ec.SECP256R1())
    parts = urlsplit(endpoint)
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + JWT_SECONDS, "sub": subject}
    headers = {"Content-Type": "application/octet-stream", "TTL": str(TTL_SECONDS), "Urgency": urgency}
    if standard:
        body = http_ece.encrypt(payload, private_key=sender, dh=p256dh, auth_secret=auth, version="aes128gcm")
        headers["Content-Encoding"] = "aes128gcm"
        headers.update(Vapid02(vapid.private_key(), conf={"no-strict": True}).sign(claims))
        return PreparedPush(body=body, headers=headers)
    salt = os.urandom(16)
    body = http_ece.encrypt(payload, salt=salt, private_key=sender, dh=p256dh, auth_secret=auth, version="aesgcm")
    headers["Content-Encoding"] = "aesgcm"
    headers["Encryption"] = f"salt={b64url(salt)}"
    headers.update(Vapid01(vapid.private_key(), conf={"no-strict": True}).sign(
        claims, crypto_key=f"dh={b64url(_point(sender.public_key()))}"))
    return PreparedPush(body=body, headers=headers)


class SendOutcome(msgspec.Struct, frozen=True):
    status: int | None
    error: str | None = None
    retry_after: float | None = None


class PushClient:
    """Posts pushes over one aiohttp session whose connector dials only allowed addresses. Redirects
    are not followed: they could lead anywhere, past the list of allowed push services."""

    def __init__(self, user_agent: str, allowed_private: list[str]) -> None:
        self.user_agent = user_agent
        self.allowed_private = allowed_private
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=egress_connector(self.allowed_private, limit=64),
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT),
                headers={"User-Agent": self.user_agent}, trust_env=False)
        return self._session

    async def send(self, endpoint: str, push: PreparedPush) -> SendOutcome:
        """POST the push; EgressDenied (from the connector) reaches the caller, other failures come back
        as an outcome without a status."""
        try:
            async with self._get_session().post(URL(endpoint, encoded=False), data=push.body, headers=push.headers,
                                                 allow_redirects=False) as response:
                await response.content.readany()  # push services answer with little or nothing
                return SendOutcome(status=response.status, retry_after=_retry_after(response))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return SendOutcome(status=None, error=f"{type(exc).__name__}: {exc}"[:300])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
