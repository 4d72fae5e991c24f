"""Fixtures that run real Crosstalk instances (`crosstalk serve` in a subprocess) on loopback.

Each instance has its own database: a SQLite file in its data directory, or its own fresh PostgreSQL
database when CROSSTALK_TEST_DATABASE_URL is set (see tests/databases.py), so the whole suite runs
against either engine.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import requests

from tests import databases

if TYPE_CHECKING:
    from server.state import State

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
# Rate limits stay on (answers carry their headers) but out of the way; tests of a limit set their own.
GENEROUS_RATE_LIMITS = {f"CROSSTALK_RATE_LIMIT_{name}": "100000" for name in (
    "ACCOUNT_REQUESTS", "ADDRESS_REQUESTS", "STATUSES_PER_ACCOUNT", "MEDIA_PER_ACCOUNT", "DELETIONS_PER_ACCOUNT",
    "SIGN_UPS_PER_ADDRESS", "SIGN_IN_FAILURES_PER_ADDRESS", "SIGN_IN_FAILURES_PER_ACCOUNT",
    "GROUP_JOINS_PER_ACCOUNT", "GROUP_JOINS_PER_GROUP", "GROUP_FOLLOWS_PER_DOMAIN")}


def pytest_report_header(config: pytest.Config) -> str:
    if databases.postgres_enabled():
        return f"database: PostgreSQL ({databases.url_for('')} ..., one fresh database per instance)"
    return "database: SQLite (set CROSSTALK_TEST_DATABASE_URL to run the suite on PostgreSQL)"


def pytest_sessionstart(session: pytest.Session) -> None:
    if not databases.postgres_enabled():
        return
    problem = databases.check_server()
    if problem:  # asked for PostgreSQL: never fall back to SQLite or skip silently
        pytest.exit(f"CROSSTALK_TEST_DATABASE_URL is set but PostgreSQL does not answer: {problem}", returncode=3)
    databases.drop_abandoned()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if databases.postgres_enabled():
        databases.drop_all()


@pytest.fixture
def requires_postgres() -> None:
    """For tests of what only the PostgreSQL backend has."""
    if not databases.postgres_enabled():
        pytest.skip(databases.HOW_TO_ENABLE)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` different free ports: each socket stays bound until all are chosen (free_port() called
    several times may give the same port twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Instance:
    """One running server with its own data directory and database. `cli()` runs admin commands
    against it, `sql()` reads (or writes) its database directly."""

    def __init__(self, data_dir: Path, env: dict[str, str], host: str = "127.0.0.1",
                 port: int | None = None, command: tuple[str, ...] = ("serve",), sqlite: bool = False) -> None:
        """`sqlite`: use SQLite even when the suite runs on PostgreSQL (a prepared SQLite file)."""
        self.command = command
        # `crosstalk worker` answers only /livez, /readyz and /metrics
        self.ready_path = "/api/v1/instance" if command[0] == "serve" else "/livez"
        self.host = host
        self.port = port or free_port(host)
        self.domain = f"{host}:{self.port}"
        self.base_url = f"http://{self.domain}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "CROSSTALK_DOMAIN": self.domain,
            "CROSSTALK_SCHEME": "http",
            "CROSSTALK_DEVELOPMENT": "true",
            "CROSSTALK_HOST": host,
            "CROSSTALK_PORT": str(self.port),
            "CROSSTALK_DATA_DIR": str(data_dir),
            **GENEROUS_RATE_LIMITS,
            "CROSSTALK_LOG_LEVEL": "warning",
            "CROSSTALK_DATABASE_URL": "",
            # The suite runs several instances at once in four workers: small pools keep PostgreSQL
            # within its 100 connections.
            "CROSSTALK_DATABASE_POOL_SIZE": "4",
            **env,
        }
        if databases.postgres_enabled() and not sqlite and not self.env["CROSSTALK_DATABASE_URL"]:
            self.env["CROSSTALK_DATABASE_URL"] = databases.create_database()
        self.database_url = self.env["CROSSTALK_DATABASE_URL"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", *self.command], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"instance exited early:\n{self.log()}")
            try:
                if requests.get(f"http://{self.host}:{self.port}{self.ready_path}", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"instance did not start in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def dispose(self) -> None:
        """Stop the server and drop its PostgreSQL database (a SQLite file goes with tmp_path)."""
        self.stop()
        if self.database_url:
            databases.drop_database(self.database_url)

    @property
    def on_postgres(self) -> bool:
        return bool(self.database_url)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (`?` placeholders) on this instance's database and return its rows."""
        return databases.query(self.database_url, self.data_dir / "crosstalk.sqlite3", query, params)

    def database_closed_cleanly(self) -> bool:
        """After a stop: SQLite's last connection checkpointed and removed the WAL; PostgreSQL has no
        connection of ours left open."""
        if self.on_postgres:
            return not self.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND application_name = 'crosstalk'")[0][0]
        return not (self.data_dir / "crosstalk.sqlite3-wal").exists()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=self.env,
                                input=input, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"crosstalk {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def admin(self, work: Callable[[State], Awaitable[T]]) -> T:
        """Run `work` on this instance's parts in the test process, as a `crosstalk admin` command runs
        its own (same settings, same database, events left for the server to dispatch). For the users
        and tokens that tests set up: a `crosstalk` process per call cost 0.8 s of CPU, nearly all of it
        imports, and the suite made some 300 of them. Tests of the admin commands use `cli()`."""
        from server.cli import _with_state
        from server.settings import load_settings
        return databases.run_sync(_with_state(load_settings(env=self.env), work))

    def create_user(self, name: str, password: str = "correct horse battery", admin: bool = False) -> None:
        self.create_users([name], password, admin=admin)

    def create_users(self, names: list[str], password: str = "correct horse battery", admin: bool = False) -> None:
        """Users with e-mail <name>@example.test, as `crosstalk admin create-user` makes them."""
        if not names:
            return
        from server.services import accounts

        async def work(state: State) -> None:
            for name in names:
                await accounts.create_user(state, name, f"{name}@example.test", password, admin=admin)
        self.admin(work)

    def token(self, name: str, scopes: str = "read write follow push") -> str:
        """A token as `crosstalk admin create-token` mints it."""
        from server.services import oauth
        return self.admin(lambda state: oauth.create_token_for_user(state, name, scopes))

    def api(self, name: str, scopes: str = "read write follow push") -> Any:
        """A Mastodon.py client for `name`, holding a token minted as `crosstalk admin create-token` does."""
        from mastodon import Mastodon
        return Mastodon(access_token=self.token(name, scopes), api_base_url=self.base_url)


@pytest.fixture
def make_instance(tmp_path: Path) -> Iterator[Any]:
    """Factory: make_instance(name="a", env={...}, start=True) → a running Instance; all stopped at teardown."""
    started: list[Instance] = []

    def make(name: str = "a", env: dict[str, str] | None = None, start: bool = True,
             host: str = "127.0.0.1") -> Instance:
        inst = Instance(tmp_path / name, env or {}, host=host)
        started.append(inst)
        if start:
            inst.start()
        return inst

    yield make
    for inst in started:
        inst.dispose()


@pytest.fixture
def instance(make_instance: Any) -> Instance:
    return make_instance("a", env={"CROSSTALK_PASSWORD_GRANT": "true"})


def authorize_in_browser(base_url: str, auth_url: str, login: str, password: str) -> str:
    """Play the user's browser: open the authorize page, sign in, approve, and read the OOB code."""
    session = requests.Session()
    page = session.get(auth_url, timeout=10)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields.update({"username": login, "password": password, "decision": "approve"})
    answer = session.post(f"{base_url}/oauth/authorize", data=fields, timeout=10, allow_redirects=False)
    assert answer.status_code in (200, 302), answer.text
    if answer.status_code == 302:
        return answer.headers["Location"]
    match = re.search(r'<code id="authorization-code">([^<]+)</code>', answer.text)
    assert match, answer.text
    return match.group(1)
