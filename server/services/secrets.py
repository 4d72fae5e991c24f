"""Passwords (scrypt), random tokens and their stored hashes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password_sync(password: str) -> str:
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(password.encode())
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def check_password_sync(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        Scrypt(salt=base64.b64decode(salt), length=32, n=int(n), r=int(r), p=int(p)).verify(
            password.encode(), base64.b64decode(key))
        return True
    except (ValueError, InvalidKey):
        return False


async def hash_password(password: str) -> str:
    """scrypt is deliberately slow: run it off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, hash_password_sync, password)


async def check_password(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, check_password_sync, password, stored)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are high-entropy, so a fast hash suffices; only the hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
