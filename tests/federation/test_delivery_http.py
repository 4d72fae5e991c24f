"""The lean HTTP/1.1 client deliveries are sent with (federation/http1.py): the answers real servers give
(Content-Length, chunked with trailers, close-delimited, 100 Continue, Connection: close), kept-alive
connections reused, broken answers and dropped connections reported, never a request sent twice."""

from __future__ import annotations

import asyncio

import pytest

from federation.http1 import ConnectionPool, ResponseError


class RawServer:
    """Answers every request (head + Content-Length body) with the next canned bytes, possibly in pieces;
    an empty piece closes the connection there."""

    def __init__(self, answers: list[list[bytes]], close_after: bool = False) -> None:
        self.answers = answers
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> RawServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                answer = self.answers.pop(0)
                for piece in answer:
                    if not piece:
                        break
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
                if self.close_after or b"" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("only IP literals here")


async def _post(pool: ConnectionPool, server: RawServer) -> tuple[int, bytes]:
    return await pool.post("http", "127.0.0.1", server.port, True, "/users/a/inbox",
                           {"Host": f"127.0.0.1:{server.port}", "Content-Type": "application/activity+json"},
                           b'{"type":"Create"}')


@pytest.mark.parametrize("answer, status, start", [
    ([b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"], 202, b""),
    ([b"HTTP/1.1 202 Acc", b"epted\r\nContent-Le", b"ngth: 8\r\n\r\nAcc", b"epted"], 202, b"Accepted"),
    ([b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbad s\r\n",
      b"8;ext=1\r\nignature\r\n0\r\nX-Trailer: 1\r\n\r\n"], 401, b"bad signature"),
    ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], 200, b"ok"),
    ([b"HTTP/1.1 204 No Content\r\n\r\n"], 204, b""),
])
async def test_answers_are_read_and_the_connection_kept(answer, status, start):
    server = await RawServer([answer, [b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"]]).start()
    pool = ConnectionPool(_no_dns, ssl=False)
    assert await _post(pool, server) == (status, start)
    assert await _post(pool, server) == (202, b"")
    assert server.connections == 1  # kept alive, and reused
    request = server.requests[0]
    assert request.startswith(b"POST /users/a/inbox HTTP/1.1\r\n") and request.endswith(b'\r\n\r\n{"type":"Create"}')
    assert b"Content-Length: 17\r\n" in request
    pool.close()
    await server.stop()


async def test_close_delimited_and_connection_close_answers_end_the_connection():
    server = await RawServer([[b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 4\r\n\r\nOops"]],
                             close_after=True).start()
    pool = ConnectionPool(_no_dns, ssl=False)
    assert await _post(pool, server) == (500, b"Oops")
    server.answers.append([b"HTTP/1.0 202 Accepted\r\n\r\nno length"])
    assert await _post(pool, server) == (202, b"no length")
    assert server.connections == 2
    pool.close()
    await server.stop()


async def test_a_dropped_connection_is_an_error_and_the_request_is_not_repeated():
    server = await RawServer([[b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"], [b"HTTP/1.1 20", b""]]).start()
    pool = ConnectionPool(_no_dns, ssl=False)
    assert (await _post(pool, server))[0] == 202
    with pytest.raises(OSError):
        await _post(pool, server)  # half an answer, then the connection closed
    assert len(server.requests) == 2
    server.answers.append([b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    assert (await _post(pool, server))[0] == 202  # on a new connection
    assert server.connections == 2
    pool.close()
    await server.stop()


async def test_garbage_is_an_error():
    server = await RawServer([[b"SSH-2.0-OpenSSH\r\n\r\n"]]).start()
    pool = ConnectionPool(_no_dns, ssl=False)
    with pytest.raises(ResponseError):
        await _post(pool, server)
    pool.close()
    await server.stop()


async def test_a_silent_server_times_out():
    server = await RawServer([[]]).start()
    pool = ConnectionPool(_no_dns, ssl=False, seconds=0.3)
    with pytest.raises(TimeoutError):
        await _post(pool, server)
    pool.close()
    await server.stop()


async def test_connections_are_limited_and_idle_ones_make_room():
    servers = [await RawServer([[b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"]] * 3).start()
               for _ in range(3)]
    pool = ConnectionPool(_no_dns, ssl=False, limit=2)
    for server in servers:  # a third host: one idle connection of another host is closed for it
        assert (await _post(pool, server))[0] == 202
    assert pool._open == 2
    pool.close()
    for server in servers:
        await server.stop()


async def test_header_values_with_line_breaks_are_refused():
    pool = ConnectionPool(_no_dns, ssl=False)
    with pytest.raises(ValueError):
        await pool.post("http", "127.0.0.1", 9, True, "/", {"Host": "a\r\nX: y"}, b"")
