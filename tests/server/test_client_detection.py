"""Apps that pick an API dialect from NodeInfo recognise Crosstalk as Mastodon-compatible while it names
itself honestly. Driven with a real client library: megalodon, which Whalebird (and, in its Rust
version with the same rules, Fedistar) uses to detect the server and then log in and post.

The npm package is installed once per checkout into pytest's cache directory
(`.pytest_cache/d/npm-megalodon-<version>`), so a fresh clone in CI installs it on the first run;
without node/npm, or without the registry, the test is skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import authorize_in_browser

SCRIPT = Path(__file__).with_name("megalodon_client.cjs")
# megalodon 10.2+ declares Node >= 22.21; 10.0.5 is the newest that supports Node 20. Both detect the
# server with the same rules (src/detector.ts: a known software.name, else metadata.upstream.name).
NEWEST, FOR_NODE_20 = "10.3.0", "10.0.5"


def _node_version(node: str) -> tuple[int, ...]:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    return tuple(int(x) for x in out.lstrip("v").split(".")[:3])


@pytest.fixture(scope="session")
def megalodon(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(node executable, directory whose node_modules holds megalodon)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run megalodon (Whalebird's client library); install Node.js 20+")
    version = NEWEST if _node_version(node) >= (22, 21, 1) else FOR_NODE_20
    cache = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider: install afresh
    where = (cache.mkdir(f"npm-megalodon-{version}") if cache is not None
             else tmp_path_factory.mktemp(f"npm-megalodon-{version}"))
    if not (where / "node_modules" / "megalodon" / "package.json").is_file():
        try:
            done = subprocess.run([npm, "install", "--prefix", str(where), "--no-audit", "--no-fund",
                                   "--loglevel=error", f"megalodon@{version}"],
                                  capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install megalodon@{version} took more than 5 minutes (registry unreachable?)")
        if done.returncode != 0:
            pytest.skip(f"npm install megalodon@{version} failed (registry unreachable?): {done.stderr[-500:]}")
    return node, where


def run_client(megalodon: tuple[str, Path], *args: str) -> dict[str, Any]:
    node, where = megalodon
    done = subprocess.run([node, str(SCRIPT), *args], cwd=where, capture_output=True, text=True, timeout=60,
                          env={"PATH": str(Path(node).parent), "NODE_PATH": str(where / "node_modules")})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_nodeinfo_names_crosstalk_and_says_it_speaks_mastodon(instance):
    links = requests.get(f"{instance.base_url}/.well-known/nodeinfo", timeout=10).json()["links"]
    for link in links:
        info = requests.get(link["href"], timeout=10).json()
        assert info["software"]["name"] == "crosstalk"
        assert info["metadata"]["upstream"]["name"] == "mastodon"
    v1 = requests.get(f"{instance.base_url}/api/v1/instance", timeout=10).json()
    assert v1["version"].startswith(f"{info['metadata']['upstream']['version']} (compatible; Crosstalk ")


def test_megalodon_detects_mastodon_then_logs_in_and_posts(instance, megalodon):
    instance.create_user("dana", "correct horse battery")
    assert run_client(megalodon, "detect", instance.base_url) == {"sns": "mastodon"}

    app = run_client(megalodon, "register", instance.base_url)
    assert app["sns"] == "mastodon" and app["url"].startswith(f"{instance.base_url}/oauth/authorize?")
    code = authorize_in_browser(instance.base_url, app["url"], "dana", "correct horse battery")

    used = run_client(megalodon, "use", instance.base_url, app["client_id"], app["client_secret"], code)
    assert used["username"] == "dana"
    assert "(compatible; Crosstalk " in used["version"]
    assert used["posted"] in used["local"] and used["posted"] in used["home"]
