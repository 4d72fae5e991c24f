"""xtalk against the streaming API (`timeline --follow`), search and media upload of a real instance."""

from __future__ import annotations

import queue
import signal
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import msgspec


def _lines(stream) -> queue.Queue[str]:
    """Lines of a pipe, read on a thread so the test can wait with a timeout."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], predicate, seconds: float, what: str) -> str:
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line == "":
            break
        seen.append(line)
        if predicate(line):
            return line
    raise AssertionError(f"no {what} within {seconds} s; got: {''.join(seen)!r}")


def test_follow_streams_a_post_made_by_another_user(logged_in, api):
    bob_id = api["bob"]("GET", "/api/v1/accounts/verify_credentials")["id"]
    api["carol"]("POST", f"/api/v1/accounts/{bob_id}/follow")
    proc = logged_in.popen("timeline", "home", "--follow", "--json", "--limit", "1", "-P", "carol",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = _lines(proc.stderr)
        out = _lines(proc.stdout)
        _wait_for(err, lambda line: "Streaming the home timeline" in line, 20, "stream connection")
        post = api["bob"]("POST", "/api/v1/statuses", json={"status": "Live from bob"})
        line = _wait_for(out, lambda line: f'"id":"{post["id"]}"' in line, 15, "streamed post")
        streamed = msgspec.json.decode(line)
        assert streamed["content"] == post["content"] and streamed["account"]["username"] == "bob"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0, "Ctrl-C is how --follow ends"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_follow_readable_local_timeline(logged_in, api):
    proc = logged_in.popen("timeline", "local", "--follow", "-P", "alice", "--limit", "1",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = _lines(proc.stderr)
        out = _lines(proc.stdout)
        _wait_for(err, lambda line: "Streaming the local timeline" in line, 20, "stream connection")
        api["carol"]("POST", "/api/v1/statuses", json={"status": "Fish &amp; chips on the <b>local</b> line"})
        _wait_for(out, lambda line: "Fish &amp; chips on the <b>local</b> line" in line, 15, "streamed post")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_search_accounts_hashtags_and_posts(logged_in, api):
    post = api["bob"]("POST", "/api/v1/statuses", json={"status": "Quarterly xtalkbudget planning #xtalkfinance"})
    accounts = logged_in.json("search", "carol", "--type", "accounts", "-P", "alice")[0]
    assert [a["acct"] for a in accounts["accounts"]] == ["carol"]
    assert accounts["statuses"] == [] and accounts["hashtags"] == []
    tags = logged_in.json("search", "xtalkfinance", "--type", "hashtags", "-P", "alice")[0]
    assert "xtalkfinance" in [t["name"] for t in tags["hashtags"]]
    statuses = logged_in.json("search", "xtalkbudget", "--type", "statuses", "-P", "bob")[0]
    assert post["id"] in [s["id"] for s in statuses["statuses"]]
    readable = logged_in("search", "carol", "-P", "alice").stdout
    assert readable.startswith("Accounts\n") and "@carol" in readable


def _png(path: Path, width: int = 3, height: int = 2) -> Path:
    """A small valid PNG, written by hand so the test needs no imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def test_post_with_media_alt_text_and_cw(logged_in, tmp_path):
    first = _png(tmp_path / "red.png")
    second = _png(tmp_path / "wide.png", width=6)
    result = logged_in("post", "Two pictures", "--media", str(first), "--alt", "Three red pixels",
                       "--media", str(second), "--cw", "pixel art", "--json", "-P", "carol")
    status = msgspec.json.decode(result.stdout)
    assert "Uploading red.png" in result.stderr and "Uploading wide.png" in result.stderr
    assert status["spoiler_text"] == "pixel art"
    media = status["media_attachments"]
    assert [m["type"] for m in media] == ["image", "image"]
    assert media[0]["description"] == "Three red pixels" and not media[1]["description"]
    assert all(m["url"] for m in media)

    shown = logged_in("thread", status["id"], "--expand", "-P", "alice").stdout
    assert "CW: pixel art" in shown and "[image] Three red pixels" in shown and "[image] no description" in shown
    assert "Three red pixels" not in logged_in("thread", status["id"], "-P", "alice").stdout

    missing = logged_in("post", "x", "--media", str(tmp_path / "nope.png"), "-P", "carol", expect=1)
    assert "no such file" in missing.stderr


def test_list_timeline_by_name(logged_in, api):
    carol_id = api["carol"]("GET", "/api/v1/accounts/verify_credentials")["id"]
    api["alice"]("POST", f"/api/v1/accounts/{carol_id}/follow")
    colleagues = api["alice"]("POST", "/api/v1/lists", json={"title": "Close colleagues"})
    api["alice"]("POST", f"/api/v1/lists/{colleagues['id']}/accounts", json={"account_ids": [carol_id]})
    post = api["carol"]("POST", "/api/v1/statuses", json={"status": "For the list readers"})
    listed = logged_in.json("timeline", "list", "close colleagues", "-P", "alice")
    assert post["id"] in [s["id"] for s in listed]
    assert {s["account"]["username"] for s in listed} == {"carol"}
    missing = logged_in("timeline", "list", "strangers", "-P", "alice", expect=5)
    assert "no list named 'strangers'" in missing.stderr
