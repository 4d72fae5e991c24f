"""Helpers for the tier-B end-to-end tests: one instance per test module, users and tokens created
in parallel (each `crosstalk admin` call is a process start), and polling for background work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mastodon import Mastodon

from tests.conftest import Instance


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
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: inst.create_user(n, admin=n in admin_names), names))
            # The first token creates the CLI's OAuth app; concurrent first calls would race on it.
            tokens = {names[0]: inst.token(names[0])}
            tokens.update(zip(names[1:], pool.map(inst.token, names[1:]), strict=True))
    except BaseException:
        inst.stop()
        raise
    return Site(inst, tokens)
