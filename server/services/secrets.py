"""Passwords (scrypt), random tokens and their stored hashes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

_N, _R, _P = 2**14, 8, 1
# scrypt takes ~50 ms of CPU and 16 MB each: never on the event loop, and at most this many at once, so
# a burst of sign-ins waits its turn instead of taking every core (and the default executor) from the
# rest of the server.
_HASHING = ThreadPoolExecutor(max_workers=max(1, min(4, (os.cpu_count() or 2) - 1)), thread_name_prefix="scrypt")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class InvalidKey(Exception):
    """The password does not match the stored key."""


class Scrypt:
    """scrypt through hashlib (OpenSSL's, the same function the cryptography package offers, without
    loading that package into every process), with the interface of cryptography's Scrypt."""

    def __init__(self, *, salt: bytes, length: int, n: int, r: int, p: int) -> None:
        self._salt, self._length, self._n, self._r, self._p = salt, length, n, r, p

    def derive(self, key: bytes) -> bytes:
        # The memory cap allows exactly what the parameters need (hashlib's default is 32 MB).
        return hashlib.scrypt(key, salt=self._salt, n=self._n, r=self._r, p=self._p, dklen=self._length,
                              maxmem=128 * self._r * (self._n + self._p + 2) + 1024 * 1024)

    def verify(self, key: bytes, expected: bytes) -> None:
        if not hmac.compare_digest(self.derive(key), expected):
            raise InvalidKey()


def hash_password_sync(password: str) -> str:
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(password.encode())
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def check_password_sync(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        Scrypt(salt=base64.b64decode(salt), length=len(expected), n=int(n), r=int(r), p=int(p)).verify(
            password.encode(), expected)
        return True
    except (ValueError, OverflowError, MemoryError, InvalidKey):
        return False


def _unusable_hash() -> str:
    """A well-formed hash with our parameters that no password matches (its key is random, not derived):
    checking a password against it costs exactly what checking against a real one does."""
    return f"scrypt${_N}${_R}${_P}${_b64(os.urandom(16))}${_b64(os.urandom(32))}"


UNUSABLE_HASH = _unusable_hash()


async def hash_password(password: str) -> str:
    """scrypt is deliberately slow: run it off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password_sync, password)


async def check_password(password: str, stored: str | None) -> bool:
    """Check a password; with no stored hash (unknown user) the same scrypt run happens and fails,
    so the answer takes as long as for a known user."""
    return await asyncio.get_running_loop().run_in_executor(
        _HASHING, check_password_sync, password, stored or UNUSABLE_HASH)


_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_token() -> str:
    """43 letters and digits (256 bits): like Mastodon's tokens, never starting with '-', which
    command lines would take for an option."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(43))


def token_hash(token: str) -> str:
    """Tokens are high-entropy, so a fast hash suffices; only the hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
