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

from tests.conftest import ROOT, Instance

PASSWORD = "correct horse battery"


class Xtalk:
    """Runs `python -m clients.cli.main` (what the `xtalk` script runs) with its own config directory."""

    def __init__(self, config_home: Path, env: dict[str, str] | None = None) -> None:
        self.config_home = config_home
        self.env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "XTALK_PROFILE")}
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A Crosstalk instance shared by one test module, with alice, bob and carol."""
    inst = Instance(tmp_path_factory.mktemp("cli") / "a", {"CROSSTALK_PASSWORD_GRANT": "true"})
    inst.start()
    try:
        for name in ("alice", "bob", "carol"):
            inst.create_user(name, PASSWORD)
        yield inst
    finally:
        inst.stop()


@pytest.fixture(scope="module")
def logged_in(server: Instance, tmp_path_factory: pytest.TempPathFactory) -> Xtalk:
    """An xtalk config with profiles alice, bob and carol (stored with `xtalk login --token`)."""
    x = Xtalk(tmp_path_factory.mktemp("xdg"))
    for name in ("alice", "bob", "carol"):
        x("login", server.base_url, "--token", "-", "--name", name, input=server.token(name, "read write follow") + "\n")
    return x


@pytest.fixture
def xtalk(tmp_path: Path) -> Xtalk:
    """A fresh, empty xtalk configuration."""
    return Xtalk(tmp_path / "xdg")
