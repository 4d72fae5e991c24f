"""A Web Push service on loopback for the tests, and a receiving app's side of the protocol written
from the RFCs with `cryptography` alone (not the server's http-ece / py-vapid code path): decrypting
aes128gcm (RFC 8291, RFC 8188) and aesgcm (draft-ietf-webpush-encryption-04), and checking VAPID
signatures (RFC 8292)."""

from __future__ import annotations

import base64
import json
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64d(text: str) -> bytes:
    text = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


@dataclass
class Device:
    """A subscribing app: its key pair and auth secret."""

    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint)

    def _secret(self, sender_public: bytes) -> bytes:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
        return self.private.exchange(ec.ECDH(), peer)

    def decrypt_aes128gcm(self, body: bytes) -> bytes:
        """RFC 8291 §3.4 with the RFC 8188 header: salt (16) | rs (4) | idlen (1) | keyid = sender's key."""
        salt, rs, idlen = body[:16], struct.unpack("!L", body[16:20])[0], body[20]
        sender_public, ciphertext = body[21:21 + idlen], body[21 + idlen:]
        assert idlen == 65 and len(ciphertext) <= rs, (idlen, rs, len(ciphertext))
        ikm = _hkdf(self.auth, self._secret(sender_public), b"WebPush: info\x00" + self.public + sender_public, 32)
        key = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        padded = AESGCM(key).decrypt(nonce, ciphertext, None)  # one record: the last one
        unpadded = padded.rstrip(b"\x00")
        assert unpadded.endswith(b"\x02"), "the last record's delimiter is 0x02"
        return unpadded[:-1]

    def decrypt_aesgcm(self, body: bytes, encryption: str, crypto_key: str) -> bytes:
        """The aesgcm draft: salt in Encryption, the sender's key as dh= in Crypto-Key."""
        salt = b64d(_param(encryption, "salt"))
        sender_public = b64d(_param(crypto_key, "dh"))
        ikm = _hkdf(self.auth, self._secret(sender_public), b"Content-Encoding: auth\x00", 32)
        context = (b"P-256\x00" + struct.pack("!H", len(self.public)) + self.public
                   + struct.pack("!H", len(sender_public)) + sender_public)
        key = _hkdf(salt, ikm, b"Content-Encoding: aesgcm\x00" + context, 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00" + context, 12)
        padded = AESGCM(key).decrypt(nonce, body, None)
        pad = struct.unpack("!H", padded[:2])[0]
        return padded[2 + pad:]


def _param(header: str, name: str) -> str:
    for part in header.replace(",", ";").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    raise AssertionError(f"{name}= missing in {header!r}")


def verify_vapid(jwt: str, public_key: bytes, audience: str) -> dict[str, Any]:
    """Check an ES256 JWT against the instance's key; returns its claims."""
    head, claims, signature = jwt.split(".")
    assert json.loads(b64d(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = b64d(signature)
    assert len(raw) == 64
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
    key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
               f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature
    decoded = json.loads(b64d(claims))
    assert decoded["aud"] == audience, decoded
    assert time.time() < decoded["exp"] <= time.time() + 24 * 3600, decoded
    assert decoded["sub"].startswith(("mailto:", "https://", "http://")), decoded
    return decoded


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    def decrypt(self, device: Device) -> dict[str, Any]:
        encoding = self.header("Content-Encoding")
        if encoding == "aes128gcm":
            return json.loads(device.decrypt_aes128gcm(self.body))
        assert encoding == "aesgcm", encoding
        return json.loads(device.decrypt_aesgcm(self.body, self.header("Encryption"), self.header("Crypto-Key")))

    def vapid(self, public_key: bytes, audience: str) -> dict[str, Any]:
        """The VAPID claims, after checking the header form that goes with the encoding."""
        authorization = self.header("Authorization")
        if self.header("Content-Encoding") == "aes128gcm":
            scheme, _, rest = authorization.partition(" ")
            assert scheme == "vapid", authorization
            params = dict(part.strip().split("=", 1) for part in rest.split(","))
            assert b64d(params["k"]) == public_key
            return verify_vapid(params["t"], public_key, audience)
        scheme, _, jwt = authorization.partition(" ")
        assert scheme == "WebPush", authorization
        assert b64d(_param(self.header("Crypto-Key"), "p256ecdsa")) == public_key
        return verify_vapid(jwt, public_key, audience)


class PushService:
    """A push service on 127.0.0.1: records every request; `answers[path]` gives the statuses to
    answer with in turn (the last one repeats), 201 otherwise."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with service._lock:
                    service.received.append(Received(self.path, dict(self.headers.items()), body))
                    queue = service.answers.get(self.path, [201])
                    status = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.origin + path

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait(self, path: str, count: int = 1, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.at(path))} push(es) arrived, expected {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")
