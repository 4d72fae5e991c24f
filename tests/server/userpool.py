"""One instance per test module with a pool of users made up front, so each test gets fresh accounts
without paying for a server start and a CLI run per user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mastodon import Mastodon

from tests.conftest import Instance

PASSWORD = "correct horse battery"


class UserPool:
    def __init__(self, instance: Instance, names: list[str]) -> None:
        self.instance = instance
        self._free = list(names)
        client_id, client_secret = Mastodon.create_app("pool", api_base_url=instance.base_url,
                                                       scopes=["read", "write", "follow", "push"])
        self._app = (client_id, client_secret)

    def take(self, count: int) -> list[Mastodon]:
        """`count` unused users, logged in with the password grant (the real OAuth token endpoint)."""
        taken, self._free = self._free[:count], self._free[count:]
        assert len(taken) == count, "the user pool is exhausted; raise its size"
        clients = []
        for name in taken:
            api = Mastodon(client_id=self._app[0], client_secret=self._app[1], api_base_url=self.instance.base_url)
            api.log_in(f"{name}@example.test", PASSWORD, scopes=["read", "write", "follow", "push"])
            clients.append(api)
        return clients


def running_pool(tmp_path_factory: pytest.TempPathFactory, size: int,
                 env: dict[str, str] | None = None) -> Iterator[UserPool]:
    """Body of a module-scoped fixture: start an instance (password grant on), make `size` users."""
    inst = Instance(tmp_path_factory.mktemp("pool") / "a", {"CROSSTALK_PASSWORD_GRANT": "true", **(env or {})})
    inst.start()
    try:
        names = [f"u{i}" for i in range(size)]
        inst.create_users(names, PASSWORD)
        yield UserPool(inst, names)
    finally:
        inst.dispose()
