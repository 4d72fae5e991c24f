"""Fixtures for xtalk tests: one Crosstalk instance per module, and a runner for the real `xtalk` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import requests

from tests.conftest import ROOT, Instance

PASSWORD = "correct horse battery"


class Xtalk:
    """Runs `python -m clients.cli.main` (what the `xtalk` script runs) with its own config directory."""

    def __init__(self, config_home: Path, env: dict[str, str] | None = None) -> None:
        self.config_home = config_home
        # PYTHONDONTWRITEBYTECODE dropped: dozens of runs should not each recompile the client.
        unwanted = ("NO_COLOR", "XTALK_PROFILE", "PYTHONDONTWRITEBYTECODE")
        self.env = {k: v for k, v in os.environ.items() if k not in unwanted}
        self.env.update({"XDG_CONFIG_HOME": str(config_home), **(env or {})})

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "clients.cli.main", *args]

    def __call__(self, *args: str, input: str | None = None, expect: int | None = 0,
                 timeout: float = 30) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command(*args), cwd=ROOT, env=self.env, input=input if input is not None else "",
                                capture_output=True, text=True, timeout=timeout)
        if expect is not None and result.returncode != expect:
            raise AssertionError(f"xtalk {' '.join(args)} exited {result.returncode}, expected {expect}:\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run with --json and decode: a dict for one entity, a list for JSON lines."""
        out = self(*args, "--json", **kwargs).stdout
        docs = [msgspec.json.decode(line) for line in out.splitlines() if line.strip()]
        return docs

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), cwd=ROOT, env=self.env, text=True, bufsize=1, **kwargs)


def password_token(base_url: str, username: str, password: str = PASSWORD, scope: str = "read write follow") -> str:
    """A token through the password grant over HTTP (cheaper than a `crosstalk admin` subprocess)."""
    app = requests.post(f"{base_url}/api/v1/apps", json={"client_name": "tests", "redirect_uris":
                        "urn:ietf:wg:oauth:2.0:oob", "scopes": scope}, timeout=10).json()
    answer = requests.post(f"{base_url}/oauth/token", json={
        "grant_type": "password", "username": username, "password": password, "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": scope}, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


class Api:
    """Plain HTTP calls for setting up what a test needs, so only the behaviour under test pays for a
    subprocess."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, self.base_url + path, timeout=10, **kwargs)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A Crosstalk instance shared by the xtalk tests, with alice, bob and carol."""
    inst = Instance(tmp_path_factory.mktemp("cli") / "a", {"CROSSTALK_PASSWORD_GRANT": "true"})
    inst.start()
    try:
        for name in ("alice", "bob", "carol"):
            inst.create_user(name, PASSWORD)
        yield inst
    finally:
        inst.dispose()


@pytest.fixture(scope="session")
def tokens(server: Instance) -> dict[str, str]:
    return {name: password_token(server.base_url, name) for name in ("alice", "bob", "carol")}


@pytest.fixture(scope="session")
def api(server: Instance, tokens: dict[str, str]) -> dict[str, Api]:
    return {name: Api(server.base_url, token) for name, token in tokens.items()}


@pytest.fixture(scope="session")
def logged_in(server: Instance, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Xtalk:
    """An xtalk config with profiles alice, bob and carol. Written directly in xtalk's format (the
    `login --token` command that writes it is tested in test_login.py)."""
    home = tmp_path_factory.mktemp("xdg")
    directory = home / "xtalk"
    directory.mkdir(mode=0o700)
    profiles = {name: {"base_url": server.base_url, "token": token, "acct": name} for name, token in tokens.items()}
    path = directory / "config.json"
    path.write_bytes(msgspec.json.encode({"default": "alice", "profiles": profiles}))
    path.chmod(0o600)
    return Xtalk(home)


@pytest.fixture
def xtalk(tmp_path: Path) -> Xtalk:
    """A fresh, empty xtalk configuration."""
    return Xtalk(tmp_path / "xdg")
