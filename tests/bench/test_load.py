"""The load generators, driven as the harness drives them (a separate process against a loopback
server): every request goes to one of the paths file's paths with one of the tokens file's tokens,
and the run stops at its request cap."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web

from bench import load as loads
from bench.load import http_load


@pytest.fixture
async def recorder(aiohttp_server):  # type: ignore[no-untyped-def]
    """A loopback server answering every GET with 200, recording path and Authorization header."""
    seen: Counter[tuple[str, str]] = Counter()

    async def handle(request: web.Request) -> web.Response:
        seen[(request.path_qs, request.headers.get("Authorization", ""))] += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return server, seen


@pytest.mark.parametrize("tool", ["python", pytest.param("wrk", marks=pytest.mark.skipif(
    not loads.wrk_available(), reason="wrk is not installed (apt-get install -y wrk)"))])
async def test_random_paths_and_tokens_from_files(tool: str, recorder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, seen = recorder
    paths = ["/api/v1/accounts/1/statuses", "/api/v1/accounts/2/statuses", "/api/v1/statuses/3/context",
             "/api/v1/timelines/public?local=true"]
    (tmp_path / "paths.txt").write_text("".join(p + "\n" for p in paths))
    (tmp_path / "tokens.txt").write_text("alpha\nbeta\n")
    url = f"http://127.0.0.1:{server.port}/ignored-when-paths-are-given"
    result = await http_load(tool, url, tokens_file=tmp_path / "tokens.txt", connections=2, duration=3,
                             max_requests=200, cpu=None, paths_file=tmp_path / "paths.txt")
    assert result.non_2xx == 0 and result.errors == 0
    assert 200 <= result.requests <= 202  # wrk stops each thread at the cap, a request or two may be in flight
    assert sum(seen.values()) >= result.requests
    assert {p for p, _ in seen} == set(paths)  # 200 draws from 4 paths: each one is hit
    assert {a for _, a in seen} == {"Bearer alpha", "Bearer beta"}


async def test_one_path_without_paths_file(recorder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, seen = recorder
    result = await http_load("python", f"http://127.0.0.1:{server.port}/api/v1/timelines/home", tokens_file=None,
                             connections=1, duration=10, max_requests=20, cpu=None)
    assert result.requests == 20
    assert seen == Counter({("/api/v1/timelines/home", ""): 20})
