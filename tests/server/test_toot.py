"""The `toot` CLI (a real Mastodon client) against a real instance: OOB login, password login, posting."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import authorize_in_browser

pytestmark = pytest.mark.skipif(shutil.which("toot") is None, reason="toot is a test dependency")
PASSWORD = "correct horse battery"


def toot(args: list[str], config_dir, **kwargs):
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_dir)}
    return subprocess.run(["toot", *args], env=env, capture_output=True, text=True, timeout=60, **kwargs)


def test_toot_login_cli_post_and_timeline(instance, tmp_path):
    instance.create_user("tina", PASSWORD)
    login = toot(["login_cli", "-i", instance.base_url, "-e", "tina@example.test", "-p", PASSWORD], tmp_path)
    assert login.returncode == 0, login.stdout + login.stderr
    posted = toot(["post", "hello from toot #tools"], tmp_path)
    assert posted.returncode == 0, posted.stderr
    timeline = toot(["timeline"], tmp_path)
    assert "hello from toot" in timeline.stdout
    whoami = toot(["whoami"], tmp_path)
    assert "@tina" in whoami.stdout


def test_toot_oob_login(instance, tmp_path):
    instance.create_user("olga", PASSWORD)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.Popen(["toot", "login", "-i", instance.base_url], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        proc.stdin.write("n\n")
        proc.stdin.flush()
        seen = ""
        while "Login URL" not in seen or "client_id=" not in seen.split("Login URL", 1)[1]:
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        url = re.search(r"(http://\S+/oauth/authorize/\S+)", seen).group(1)
        code = authorize_in_browser(instance.base_url, url, "olga", PASSWORD)
        out, _ = proc.communicate(code + "\n", timeout=60)
        assert proc.returncode == 0, seen + out
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "@olga" in toot(["whoami"], tmp_path).stdout
