"""Request bodies and slow clients: an oversized body is refused from its Content-Length before it is
read, bodies without one are cut off at the limit, uploads are spooled to disk, and clients that send
headers or bodies too slowly are disconnected."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import requests

OOB = "urn:ietf:wg:oauth:2.0:oob"


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory (VmHWM), which no later freeing hides."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def connect(inst) -> socket.socket:
    sock = socket.create_connection((inst.host, inst.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(inst, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {inst.domain}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(fields.get("Content-Length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), fields, body


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes the connection (reading and dropping anything it sends)."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - started
    return None


def test_oversized_bodies_are_refused_before_they_are_read(make_instance):
    inst = make_instance("bodies", env={"CROSSTALK_HTTP_MAX_BODY_SIZE": "65536"})
    inst.create_user("alice")
    token = inst.token("alice")
    auth = {"Authorization": f"Bearer {token}"}

    # Content-Length says 50 MB: the answer comes before a single byte of the body is sent.
    for path, extra, status in [("/oauth/token", {}, 413), ("/api/v1/statuses", auth, 413),
                                ("/api/v2/media", {**auth, "Content-Type": "multipart/form-data; boundary=x"}, 422)]:
        with connect(inst) as sock:
            sock.sendall(head(inst, "POST", path, {"Content-Type": "application/json", **extra,
                                                   "Content-Length": str(50 * 1024 * 1024)}))
            code, _, body = read_answer(sock)
            assert code == status, (path, code, body)
            assert "too large" in json.loads(body)["error"]

    # Without a Content-Length, reading stops at the limit.
    def chunks():
        yield b'{"status": "'
        for _ in range(64):
            yield b"x" * 4096
        yield b'"}'
    r = requests.post(f"{inst.base_url}/api/v1/statuses", data=chunks(), timeout=10,
                      headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()
    # Bodies within the limit are fine, and an answer to a refused client reaches it (not a reset).
    assert requests.post(f"{inst.base_url}/api/v1/statuses", json={"status": "small"}, headers=auth,
                         timeout=10).status_code == 200
    big = requests.post(f"{inst.base_url}/oauth/token", json={"x": "y" * 200_000}, timeout=10)
    assert big.status_code == 413

    # Eight clients pushing 50 MB bodies at once (declared, or chunked) do not grow the server.
    before = peak_rss_kb(inst.proc.pid)

    def push(chunked: bool) -> None:
        try:
            with connect(inst) as sock:
                headers = {"Content-Type": "application/json"}
                headers.update({"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(50 << 20)})
                sock.sendall(head(inst, "POST", "/oauth/token", headers))
                piece = b"x" * (1 << 20)
                for _ in range(50):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        except OSError:
            pass  # refused and closed: what we want

    threads = [threading.Thread(target=push, args=(n % 2 == 0,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    grown_mb = (peak_rss_kb(inst.proc.pid) - before) / 1024
    assert grown_mb < 30, f"server peak memory grew by {grown_mb:.0f} MB"
    assert requests.get(f"{inst.base_url}/api/v1/instance", timeout=10).status_code == 200


def test_uploads_are_spooled_to_disk(make_instance):
    inst = make_instance("uploads", env={"CROSSTALK_MEDIA_MAX_IMAGE_SIZE": str(16 << 20)})
    inst.create_user("alice")
    auth = {"Authorization": f"Bearer {inst.token('alice')}"}
    junk = b"\x89PNG\r\n\x1a\n" + b"\x00" * (12 << 20)  # 12 MB that only starts like a PNG
    before = peak_rss_kb(inst.proc.pid)
    answers: list[requests.Response] = []

    def upload() -> None:
        answers.append(requests.post(f"{inst.base_url}/api/v2/media", headers=auth, timeout=60,
                                     files={"file": ("big.png", junk, "image/png")}))

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert [a.status_code for a in answers] == [422] * 6, [a.text for a in answers]
    grown_mb = (peak_rss_kb(inst.proc.pid) - before) / 1024
    assert grown_mb < 40, f"six 12 MB uploads grew the server by {grown_mb:.0f} MB"


def test_slow_clients_are_disconnected(make_instance):
    inst = make_instance("slow", env={"CROSSTALK_HTTP_READ_TIMEOUT": "1"})
    inst.create_user("alice")
    auth = f"Bearer {inst.token('alice')}"

    with connect(inst) as silent:
        assert closed_within(silent, 5) is not None, "a connection that never sends a request is closed"

    with connect(inst) as trickle:
        trickle.sendall(b"GET /api/v1/instance HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 5 and not closed:
            try:
                trickle.sendall(b"X-Slow: a\r\n")
            except OSError:
                closed = True
                break
            trickle.settimeout(0.3)
            try:
                closed = trickle.recv(1024) == b""
            except TimeoutError:
                pass
            except ConnectionError:
                closed = True
        assert closed, "headers trickling in forever keep no socket"

    with connect(inst) as stalled:
        stalled.sendall(head(inst, "POST", "/api/v1/statuses", {"Authorization": auth, "Content-Type": "application/json",
                                                                "Content-Length": "100"}) + b'{"status": "')
        code, _, body = read_answer(stalled, timeout=6)
        assert code == 408 and json.loads(body)["error"]

    # A body that keeps coming, with pauses shorter than the timeout, is read to the end.
    def steady():
        for piece in (b'{"status": ', b'"slow but ', b'steady"}'):
            time.sleep(0.5)
            yield piece
    r = requests.post(f"{inst.base_url}/api/v1/statuses", data=steady(), timeout=10,
                      headers={"Authorization": auth, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["content"] == "<p>slow but steady</p>"
    # Keep-alive still works for clients that send their next request in time.
    with requests.Session() as session:
        assert [session.get(f"{inst.base_url}/api/v1/instance", timeout=5).status_code for _ in range(3)] == [200] * 3
