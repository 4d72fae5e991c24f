"""Each class of failure gives one clear line on stderr and its own exit code (documented in --help)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import msgspec
import requests
from aiohttp import web

from tests.cli.conftest import PASSWORD, ROOT, Xtalk, password_token


def _profile(x: Xtalk, base_url: str, token: str, name: str = "p") -> None:
    """Store a profile through the real `login --token` path."""
    x("login", base_url, "--token", "-", "--name", name, input=token + "\n")


def test_installed_script_and_help_documents_the_exit_codes(xtalk):
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("xtalk") == "clients.cli.main:main", "`pip install` of the project provides xtalk"
    installed = shutil.which("xtalk")
    assert installed, "xtalk is not on PATH; run: python -m pip install -e '.[test]'"
    text = subprocess.run([installed, "--help"], env=xtalk.env, capture_output=True, text=True, timeout=30,
                          check=True).stdout
    for line in ("3  network", "4  authentication", "5  not found", "6  rejected by the server",
                 "7  rate limited", "8  server error"):
        assert line in text
    assert xtalk("timeline", "sideways", expect=2).stderr.startswith("usage:")


def test_expired_token_forbidden_scope_not_found_and_validation(server, xtalk):
    # 401: the saved token was revoked on the server; xtalk says how to log in again.
    app = requests.post(f"{server.base_url}/api/v1/apps", json={
        "client_name": "t", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write"}, timeout=10).json()
    token = requests.post(f"{server.base_url}/oauth/token", json={
        "grant_type": "password", "username": "carol", "password": PASSWORD, "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": "read write"}, timeout=10).json()["access_token"]
    _profile(xtalk, server.base_url, token, "old")
    requests.post(f"{server.base_url}/oauth/revoke", data={"token": token, "client_id": app["client_id"],
                                                           "client_secret": app["client_secret"]}, timeout=10)
    expired = xtalk("timeline", expect=4)
    assert expired.stderr.count("\n") == 1 and expired.stdout == ""
    assert f"log in again with: xtalk login {server.base_url} --name old" in expired.stderr
    assert token not in expired.stderr

    # 403: a read-only token cannot post.
    read_only = password_token(server.base_url, "carol", scope="read")
    _profile(xtalk, server.base_url, read_only, "reader")
    forbidden = xtalk("post", "hello", expect=4)
    assert forbidden.stderr.startswith("xtalk: not allowed:") and forbidden.stderr.count("\n") == 1

    _profile(xtalk, server.base_url, password_token(server.base_url, "carol"), "carol")
    missing = xtalk("thread", "12345", expect=5)
    assert missing.stderr == "xtalk: not found: Record not found\n"

    too_long = xtalk("post", "x" * 5001, expect=6)
    assert too_long.stderr.startswith("xtalk: the server refused: ") and too_long.stderr.count("\n") == 1
    assert "character limit of 5000 exceeded" in too_long.stderr, "the server's own message is shown"


def test_rate_limit_fails_or_waits(make_instance, xtalk):
    inst = make_instance("limited", env={"CROSSTALK_RATE_LIMIT_ENABLED": "true", "CROSSTALK_RATE_LIMIT_WINDOW": "2",
                                         "CROSSTALK_RATE_LIMIT_ACCOUNT_REQUESTS": "1",
                                         "CROSSTALK_RATE_LIMIT_ADDRESS_REQUESTS": "1"})
    inst.create_user("bob", PASSWORD)
    # This instance keeps the password grant off (the default): --password says so instead of failing oddly.
    # (--wait: the start-up probes used up this window's one anonymous request.)
    refused = xtalk("login", inst.base_url, "--password", "--username", "bob", "--wait", input=PASSWORD + "\n",
                    expect=4)
    assert "does not allow password login" in refused.stderr
    _profile(xtalk, inst.base_url, inst.token("bob"), "bob")

    # `show` makes two API calls, so with one request per window the second is refused. (A window
    # boundary falling exactly between them would let it through, hence a few tries.)
    for _ in range(3):
        limited = xtalk("show", "@bob", expect=None)
        if limited.returncode == 7:
            break
    assert limited.returncode == 7, limited.stderr
    assert limited.stderr.startswith("xtalk: rate limited; retry in ") and "--wait" in limited.stderr
    assert limited.stderr.count("\n") == 1

    waited = xtalk("show", "@bob", "--wait")
    assert "@bob" in waited.stdout
    assert "Rate limited; waiting" in waited.stderr


async def test_server_errors_exit_8(aiohttp_server, tmp_path):
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "Database unavailable"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", broken)
    stub = await aiohttp_server(app, host="127.0.0.1")
    env = {**Xtalk(tmp_path).env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "clients.cli.main", "login", str(stub.make_url("")).rstrip("/"), "--token", "t",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 8
    assert err.decode() == "xtalk: server error 503: Database unavailable\n"
    assert out == b""


def test_json_errors_stay_on_stderr(logged_in):
    result = logged_in("thread", "999999", "--json", "-P", "alice", expect=5)
    assert result.stdout == ""
    assert not result.stderr.startswith("{")
    msgspec.json.decode(logged_in("whoami", "--json", "-P", "alice").stdout)
