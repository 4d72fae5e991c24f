"""Shared rig for end-to-end tests: one instance per test module, its users made in the test process
and their tokens through the password grant, and polling for background work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mastodon import Mastodon

from tests.conftest import Instance

PASSWORD = "correct horse battery"


def wait_for(check: Callable[[], Any], timeout: float = 12.0, interval: float = 0.25) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


class Site:
    def __init__(self, inst: Instance, tokens: dict[str, str]) -> None:
        self.inst = inst
        self.tokens = tokens

    def api(self, name: str) -> Mastodon:
        return Mastodon(access_token=self.tokens[name], api_base_url=self.inst.base_url)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def start_site(data_dir: Path, users: Iterable[str], env: dict[str, str] | None = None,
               admins: Iterable[str] = ()) -> Site:
    inst = Instance(data_dir, {"CROSSTALK_PASSWORD_GRANT": "true", **(env or {})})
    inst.start()
    names, admin_names = list(users), set(admins)
    scopes = ["read", "write", "follow", "push"]
    try:
        inst.create_users([n for n in names if n not in admin_names], PASSWORD)
        inst.create_users([n for n in names if n in admin_names], PASSWORD, admin=True)
        # Tokens through the password grant: one HTTP call each instead of a `crosstalk` process.
        client_id, secret = Mastodon.create_app("tier-b tests", scopes=scopes, api_base_url=inst.base_url)
        tokens = {n: Mastodon(client_id=client_id, client_secret=secret, api_base_url=inst.base_url).log_in(
                  f"{n}@example.test", PASSWORD, scopes=scopes) for n in names}
    except BaseException:
        inst.dispose()
        raise
    return Site(inst, tokens)
