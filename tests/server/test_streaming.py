"""Streaming: server-sent events through Mastodon.py, and the WebSocket protocol through aiohttp's client."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from typing import Any

import aiohttp
import pytest
import requests
from mastodon import StreamListener

from tests.server.userpool import running_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    yield from running_pool(tmp_path_factory, 14, {"CROSSTALK_STREAMING_HEARTBEAT_SECONDS": "1"})


def ws_url(pool: Any, query: str = "") -> str:
    return f"ws://{pool.instance.domain}/api/v1/streaming{query}"


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Mastodon.py is blocking: keep the event loop (and the socket reader) free while it works."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def receive(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=within)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def until(ws: aiohttp.ClientWebSocketResponse, want: Any, seen: list[dict[str, Any]] | None = None,
                within: float = 5.0) -> dict[str, Any]:
    """Read events until one satisfies `want`; everything read is appended to `seen`."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no matching event; saw {seen}"
        event = await receive(ws, left)
        if seen is not None:
            seen.append(event)
        if want(event):
            return event


async def synced(ws: aiohttp.ClientWebSocketResponse) -> None:
    """The server handles a socket's messages in order: once garbage gets its error back, every earlier
    subscribe has taken effect."""
    await ws.send_str("{garbage")
    assert await until(ws, lambda e: "error" in e) == {"error": "Invalid JSON", "status": 400}


def payload(event: dict[str, Any]) -> Any:
    assert isinstance(event["payload"], str)  # double-encoded, as Mastodon sends it
    return json.loads(event["payload"])


def test_sse_user_stream_through_mastodon_py(pool):
    alice, bob = pool.take(2)
    alice_name = alice.me()["username"]
    alice.account_follow(bob.me()["id"])
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    beats = threading.Event()
    beat_count = [0]

    class Listener(StreamListener):
        def on_update(self, status):
            events.put(("update", status))

        def on_notification(self, notification):
            events.put(("notification", notification))

        def on_delete(self, status_id):
            events.put(("delete", status_id))

        def handle_heartbeat(self):
            beat_count[0] += 1
            beats.set()

    def next_event(kind: str) -> Any:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            name, data = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if name == kind:
                return data
        raise AssertionError(f"no {kind} event")

    assert alice.stream_healthy()
    handle = alice.stream_user(Listener(), run_async=True)
    try:
        assert beats.wait(5), "the stream never opened"
        post = bob.status_post("hello over server-sent events")
        update = next_event("update")
        assert update["id"] == post["id"] and update["content"] == post["content"]
        assert update["favourited"] is False and update["filtered"] == []
        mention = bob.status_post(f"@{alice_name} are you there?")
        note = next_event("notification")
        assert note["type"] == "mention" and note["status"]["id"] == mention["id"]
        bob.status_delete(post["id"])
        assert str(next_event("delete")) == post["id"]
        time.sleep(1.2)
        assert beat_count[0] >= 2  # the opening comment and at least one ":thump" a second later
    finally:
        handle.close()


async def test_websocket_update_notification_delete_in_order(pool):
    alice, bob = pool.take(2)
    alice_name = (await call(alice.me))["username"]
    await call(alice.account_follow, (await call(bob.me))["id"])
    async with aiohttp.ClientSession() as session:
        # the token travels as the WebSocket subprotocol and comes back in the handshake
        async with session.ws_connect(ws_url(pool), protocols=(alice.access_token,)) as ws:
            assert ws.protocol == alice.access_token
            await ws.send_json({"type": "subscribe", "stream": "user"})
            await synced(ws)
            seen: list[dict[str, Any]] = []
            post = await call(bob.status_post, "hello over a websocket")
            update = await until(ws, lambda e: e.get("event") == "update", seen)
            assert update["stream"] == ["user"] and payload(update)["id"] == post["id"]
            mention = await call(bob.status_post, f"@{alice_name} ping")
            await until(ws, lambda e: e.get("event") == "notification", seen)
            await call(bob.status_update, mention["id"], f"@{alice_name} ping, edited")
            edited = await until(ws, lambda e: e.get("event") == "status.update", seen)
            assert "edited" in payload(edited)["content"]
            await call(bob.status_delete, post["id"])
            deleted = await until(ws, lambda e: e.get("event") == "delete", seen)
            assert deleted["payload"] == post["id"]
            relevant = [e["event"] for e in seen if e["event"] != "update" or payload(e)["id"] == post["id"]]
            assert relevant == ["update", "notification", "status.update", "delete"]
            assert payload(next(e for e in seen if e["event"] == "notification"))["status"]["id"] == mention["id"]


async def test_websocket_public_hashtag_list_filters_and_blocks(pool):
    carol, bob, dave = pool.take(3)
    bob_id, dave_id = (await call(bob.me))["id"], (await call(dave.me))["id"]
    await call(carol.account_follow, bob_id)
    work = await call(carol.list_create, "Work")
    await call(carol.list_accounts_add, work["id"], [bob_id])
    headers = {"Authorization": f"Bearer {carol.access_token}"}
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(pool, "?stream=public:local"),
                                                                      headers=headers) as ws:
        # several streams on one socket
        await ws.send_json({"type": "subscribe", "stream": "hashtag", "tag": "Cats"})
        await ws.send_json({"type": "subscribe", "stream": "list", "list": work["id"]})
        await ws.send_json({"type": "subscribe", "stream": "user"})
        await synced(ws)
        cats = await call(bob.status_post, "look #cats")
        got: dict[tuple[str, ...], dict[str, Any]] = {}
        while len(got) < 4:  # public:local, hashtag, list and (carol follows bob) user
            event = await receive(ws)
            if event.get("event") == "update" and payload(event)["id"] == cats["id"]:
                got[tuple(event["stream"])] = event
        assert set(got) == {("public:local",), ("hashtag", "Cats"), ("list", work["id"]), ("user",)}

        # unsubscribe: the next hashtag post no longer comes on the hashtag stream
        await ws.send_json({"type": "unsubscribe", "stream": "hashtag", "tag": "Cats"})
        await ws.send_json({"type": "unsubscribe", "stream": "user"})
        await synced(ws)
        seen: list[dict[str, Any]] = []
        more = await call(bob.status_post, "more #cats")
        streams = set()
        while len(streams) < 2:
            event = await until(ws, lambda e: e.get("event") == "update" and payload(e)["id"] == more["id"], seen)
            streams.add(tuple(event["stream"]))
        assert streams == {("public:local",), ("list", work["id"])}
        assert all(e["stream"][0] not in ("hashtag", "user") for e in seen)

        # a hide filter for public drops the status from public streams; the list (home context) marks it
        await ws.send_json({"type": "subscribe", "stream": "user"})
        await synced(ws)
        await call(carol.create_filter_v2, "No dogs", ["public"], "hide",
                   keywords_attributes=[{"keyword": "dogs", "whole_word": True}])
        changed = await until(ws, lambda e: e.get("event") == "filters_changed")
        assert changed["stream"] == ["user"] and "payload" not in changed
        seen = []
        dogs = await call(bob.status_post, "dogs are great")
        in_list = await until(ws, lambda e: e.get("event") == "update" and e["stream"] == ["list", work["id"]], seen)
        assert payload(in_list)["id"] == dogs["id"] and payload(in_list)["filtered"][0]["keyword_matches"] == ["dogs"]
        marker = await call(bob.status_post, "marker post")
        await until(ws, lambda e: e.get("event") == "update" and e["stream"] == ["public:local"]
                    and payload(e)["id"] == marker["id"], seen)
        public_ids = [payload(e)["id"] for e in seen if e["stream"] == ["public:local"] and e["event"] == "update"]
        assert dogs["id"] not in public_ids

        # blocks apply at once, both ways, as on the timelines
        before = await call(dave.status_post, "dave speaking")
        await until(ws, lambda e: e.get("event") == "update" and payload(e)["id"] == before["id"])
        await call(carol.account_block, dave_id)
        seen = []
        blocked = await call(dave.status_post, "dave again")
        marker = await call(bob.status_post, "second marker")
        await until(ws, lambda e: e.get("event") == "update" and e["stream"] == ["public:local"]
                    and payload(e)["id"] == marker["id"], seen)
        assert blocked["id"] not in [payload(e)["id"] for e in seen if e["event"] == "update"]

        # direct messages arrive as conversations on the direct stream
        await ws.send_json({"type": "subscribe", "stream": "direct"})
        await synced(ws)
        carol_name = (await call(carol.me))["username"]
        dm = await call(bob.status_post, f"@{carol_name} psst", visibility="direct")
        conversation = await until(ws, lambda e: e.get("event") == "conversation")
        assert conversation["stream"] == ["direct"] and payload(conversation)["last_status"]["id"] == dm["id"]


async def test_websocket_bad_input_gets_error_events(pool):
    erin, frank = pool.take(2)
    frank_list = await call(frank.list_create, "Private")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url(pool, f"?stream=nonsense&access_token={erin.access_token}")) as ws:
            assert await receive(ws) == {"error": "Unknown stream type", "status": 400}
            for message, expected in (
                ({"type": "subscribe", "stream": "nonsense"}, {"error": "Unknown stream type", "status": 400}),
                ({"type": "subscribe", "stream": "hashtag"}, {"error": "Missing tag name parameter", "status": 400}),
                ({"type": "subscribe", "stream": "list", "list": frank_list["id"]},
                 {"error": "List not found", "status": 404}),
                ({"type": "dance"}, {"error": "Unknown message type, use subscribe or unsubscribe", "status": 400}),
                ([1, 2, 3], {"error": "Messages must be JSON objects", "status": 400}),
                ({"type": "subscribe", "stream": {"deep": ["x"]}}, {"error": "Unknown stream type", "status": 400}),
            ):
                await ws.send_json(message)
                assert await receive(ws) == expected
            await ws.send_bytes(b"\x00\x01")
            assert (await receive(ws))["error"] == "Binary messages are not supported"
            await ws.send_str("x" * 1000)
            assert await receive(ws) == {"error": "Invalid JSON", "status": 400}
            await ws.send_json({"type": "subscribe", "stream": "public"})
            await synced(ws)  # still alive and answering after all that
        for attempt in ({}, {"headers": {"Authorization": "Bearer wrong"}}, {"protocols": ("wrong",)}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
                await session.ws_connect(ws_url(pool, "?stream=user"), **attempt)
            assert failed.value.status == 401


def test_streaming_http_answers(pool):
    (gina,) = pool.take(1)
    base = f"{pool.instance.base_url}/api/v1/streaming"
    health = requests.get(f"{base}/health", timeout=5)
    assert health.status_code == 200 and health.text == "OK"
    missing = requests.get(f"{base}/user", timeout=5)
    assert missing.status_code == 401 and missing.json()["error"]
    auth = {"Authorization": f"Bearer {gina.access_token}"}
    unknown = requests.get(f"{base}/nonsense", headers=auth, timeout=5)
    assert unknown.status_code == 400 and unknown.json() == {"error": "Unknown stream type", "status": 400}
    no_tag = requests.get(f"{base}/hashtag", headers=auth, timeout=5)
    assert no_tag.status_code == 400 and no_tag.json()["error"] == "Missing tag name parameter"
    with requests.get(f"{base}/public/local", params={"access_token": gina.access_token}, stream=True,
                      timeout=5) as stream:
        assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        assert next(stream.iter_lines()) == b":)"


def test_open_streams_do_not_delay_shutdown(make_instance):
    inst = make_instance("s")
    inst.create_user("hana")
    token = inst.token("hana")
    sse = requests.get(f"{inst.base_url}/api/v1/streaming/user", headers={"Authorization": f"Bearer {token}"},
                       stream=True, timeout=5)
    assert next(sse.iter_lines()) == b":)"

    async def hold_socket_and_stop() -> float:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://{inst.domain}/api/v1/streaming?stream=user",
                                          headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.send_str("{")
                assert (await receive(ws))["error"] == "Invalid JSON"
                started = time.monotonic()
                await asyncio.to_thread(inst.stop)
                took = time.monotonic() - started
                closing = await ws.receive(timeout=5)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
                return took

    took = asyncio.run(hold_socket_and_stop())
    sse.close()
    assert took < 5, f"shutdown took {took:.1f}s with streams open"
