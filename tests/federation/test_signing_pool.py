"""The signing pool of the delivery worker (server/workers/signing.py): signatures made in signing
processes in batches, or on the event loop one per turn, each one right for its own message; a signing
process that dies costs no signature."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from federation.signatures import generate_rsa_keypair, load_public_key, rsa_sign
from server.workers.signing import SigningPool


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return generate_rsa_keypair()


def _verify(public_pem: str, message: bytes, signature: bytes) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    load_public_key(public_pem).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]


@pytest.mark.parametrize("processes", [0, 1, 2])
async def test_every_signature_is_for_its_own_message(keypair, processes):
    private_pem, public_pem = keypair
    pool = SigningPool(processes)
    try:
        messages = [f"(request-target): post /users/{n}/inbox".encode() for n in range(40)]
        signatures = await asyncio.gather(*(pool.sign(private_pem, m) for m in messages))
        for message, signature in zip(messages, signatures, strict=True):
            _verify(public_pem, message, signature)
            assert signature == rsa_sign(private_pem, message)  # PKCS#1 v1.5 is deterministic
    finally:
        pool.close()


async def test_without_a_pool_other_work_waits_for_one_signature_at_most(keypair):
    """Signatures made on the loop take turns with whatever else is ready."""
    pool = SigningPool(0)
    done: list[int] = []
    order: list[str] = []

    async def sign(n: int) -> None:
        await pool.sign(keypair[0], b"message %d" % n)
        done.append(n)

    async def other() -> None:
        await asyncio.sleep(0)
        order.append(f"other after {len(done)}")

    await asyncio.gather(*(sign(n) for n in range(10)), other())
    assert sorted(done) == list(range(10))
    assert order and order[0] != "other after 10"


async def test_a_signing_process_that_dies_costs_no_signature(keypair):
    private_pem, public_pem = keypair
    pool = SigningPool(1)
    try:
        await pool.sign(private_pem, b"warm")  # the pool is up
        executor = pool._pool
        assert executor is not None
        for pid in list(executor._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        messages = [b"after %d" % n for n in range(12)]
        signatures = await asyncio.gather(*(pool.sign(private_pem, m) for m in messages))
        for message, signature in zip(messages, signatures, strict=True):
            _verify(public_pem, message, signature)
        assert (await pool.sign(private_pem, b"later")) == rsa_sign(private_pem, b"later")
    finally:
        pool.close()
