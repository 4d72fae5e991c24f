"""Revoking access reaches open streaming connections and every cached token at once: a revoked
token, a password reset by the admin CLI (another process), each within a second."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import requests

from tests.conftest import Instance


def verify(inst: Instance, token: str) -> int:
    return requests.get(f"{inst.base_url}/api/v1/accounts/verify_credentials", timeout=5,
                        headers={"Authorization": f"Bearer {token}"}).status_code


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> float:
    """Seconds until the server closes the socket (ignoring any events before that)."""
    started = time.monotonic()
    while True:
        left = seconds - (time.monotonic() - started)
        assert left > 0, "the stream stayed open"
        msg = await ws.receive(timeout=left)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return time.monotonic() - started


async def open_stream(session: aiohttp.ClientSession, inst: Instance, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"ws://{inst.domain}/api/v1/streaming?stream=user",
                                  headers={"Authorization": f"Bearer {token}"})
    await asyncio.sleep(0.3)  # the server has registered the connection
    return ws


async def test_revoking_a_token_closes_its_streams_and_the_token_stops_working(instance):
    instance.create_user("alice")
    token = instance.token("alice", "read write")
    keep = instance.token("alice", "read write")
    assert verify(instance, token) == 200  # now cached by the server
    async with aiohttp.ClientSession() as session:
        doomed = await open_stream(session, instance, token)
        other = await open_stream(session, instance, keep)
        # A password reset by the admin CLI: another process, which can only tell the server through
        # the database.
        instance.cli("admin", "reset-password", "alice", "--password", "a new long password")
        elapsed = await closed_within(doomed, 3.0)
        assert elapsed < 1.5, elapsed
        await closed_within(other, 3.0)  # a password reset revokes every token of the account
    assert verify(instance, token) == 401
    assert verify(instance, keep) == 401


async def test_oauth_revoke_closes_the_stream_of_that_token_only(instance):
    instance.create_user("bob")
    app = await asyncio.to_thread(lambda: requests.post(f"{instance.base_url}/api/v1/apps", timeout=5, data={
        "client_name": "revoker", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"}).json())

    def password_token() -> str:
        answer = requests.post(f"{instance.base_url}/oauth/token", timeout=5, data={
            "grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
            "username": "bob@example.test", "password": "correct horse battery", "scope": "read"})
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    token, kept = password_token(), password_token()
    async with aiohttp.ClientSession() as session:
        doomed = await open_stream(session, instance, token)
        survivor = await open_stream(session, instance, kept)
        revoked = await asyncio.to_thread(requests.post, f"{instance.base_url}/oauth/revoke", timeout=5, data={
            "client_id": app["client_id"], "client_secret": app["client_secret"], "token": token})
        assert revoked.status_code == 200
        elapsed = await closed_within(doomed, 3.0)
        assert elapsed < 1.0, elapsed
        assert not survivor.closed
        await survivor.close()
    assert verify(instance, token) == 401
    assert verify(instance, kept) == 200
