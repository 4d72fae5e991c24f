"""xtalk login (OOB code, loopback redirect, password, token), profiles, whoami and logout, against a
real instance."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap

import requests

from tests.cli.conftest import PASSWORD, password_token
from tests.conftest import ROOT, authorize_in_browser


def _verify(base_url: str, token: str) -> int:
    return requests.get(f"{base_url}/api/v1/accounts/verify_credentials",
                        headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def test_oob_login_stores_a_private_profile_and_logout_revokes(server, xtalk):
    server.create_user("dora", PASSWORD)
    proc = xtalk.popen("login", server.base_url, "--name", "work", stdin=-1, stdout=-1, stderr=-1)
    try:
        # Play the user: read the address xtalk prints, approve in the "browser", paste the code.
        url = ""
        seen = []
        while not url:
            line = proc.stderr.readline()
            assert line, f"xtalk ended before printing an address: {''.join(seen)}"
            seen.append(line)
            if "/oauth/authorize?" in line:
                url = line.strip()
        code = authorize_in_browser(server.base_url, url, "dora", PASSWORD)
        proc.stdin.write(code + "\n")
        proc.stdin.close()
        out, err = proc.stdout.read(), "".join(seen) + proc.stderr.read()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Paste the code" in err
    assert f"Logged in as @dora@{server.domain}" in out and "'work'" in out

    path = xtalk.config_home / "xtalk" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    token = saved["profiles"]["work"]["token"]
    assert saved["default"] == "work" and _verify(server.base_url, token) == 200
    assert token not in out + err

    who = xtalk("whoami")
    assert who.stdout.startswith(f"@dora@{server.domain}") and token not in who.stdout + who.stderr
    assert xtalk.json("whoami")[0]["username"] == "dora"

    # A second account as another profile; the newest login becomes the default.
    xtalk("login", server.base_url, "--token", password_token(server.base_url, "alice"), "--name", "alice")
    assert xtalk("whoami").stdout.startswith("@alice@")
    assert xtalk("whoami", "--profile", "work").stdout.startswith("@dora@")
    assert xtalk("--profile", "work", "whoami").stdout.startswith("@dora@")
    listing = xtalk("profiles").stdout
    assert "* alice" in listing and "  work" in listing and token not in listing

    logout = xtalk("logout", "work")
    assert "Logged out of 'work'" in logout.stdout
    assert _verify(server.base_url, token) == 401, "logout must revoke the token on the server"
    assert "work" not in json.loads(path.read_text())["profiles"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    missing = xtalk("whoami", "--profile", "work", expect=1)
    assert "no profile named 'work'" in missing.stderr


def test_browser_login_receives_the_code_on_a_loopback_redirect(server, xtalk, tmp_path):
    server.create_user("erin", PASSWORD)
    # webbrowser.open runs $BROWSER; this one signs in and follows the redirect like a real browser would.
    browser = tmp_path / "fake-browser"
    browser.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import requests
        from tests.conftest import authorize_in_browser
        location = authorize_in_browser({server.base_url!r}, sys.argv[1], "erin", {PASSWORD!r})
        assert location.startswith("http://127.0.0.1:"), location
        sys.exit(0 if requests.get(location, timeout=10).status_code == 200 else 1)
        """))
    browser.chmod(0o755)
    xtalk.env["BROWSER"] = str(browser)
    result = xtalk("login", server.base_url, "--browser", "--timeout", "20")
    assert f"Logged in as @erin@{server.domain}" in result.stdout
    assert xtalk("whoami").stdout.startswith("@erin@")


def test_password_and_token_login_and_their_failures(server, xtalk):
    result = xtalk("login", server.base_url, "--password", "--username", "bob", input=PASSWORD + "\n")
    assert f"@bob@{server.domain}" in result.stdout
    assert xtalk.json("whoami")[0]["username"] == "bob"

    wrong = xtalk("login", server.base_url, "--password", "--username", "bob", input="nope\n", expect=4)
    assert "login refused" in wrong.stderr and wrong.stderr.count("\n") == 1

    bogus = xtalk("login", server.base_url, "--token", "not-a-token", expect=4)
    assert "rejected this token" in bogus.stderr and "not-a-token" not in bogus.stderr

    unreachable = xtalk("login", "http://127.0.0.1:9", "--token", "x", expect=3)
    assert unreachable.stderr.startswith("xtalk: cannot reach http://127.0.0.1:9")
    assert unreachable.stderr.count("\n") == 1


def test_not_logged_in(xtalk):
    result = xtalk("timeline", expect=1)
    assert "not logged in" in result.stderr and "xtalk login" in result.stderr
    assert not os.path.exists(xtalk.config_home / "xtalk" / "config.json")
