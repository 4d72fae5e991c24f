"""deploy/compose.scale.yaml brought up without a Docker engine: its Crosstalk services run as local
processes exactly as the file writes them, behind a load balancer that does what deploy/scale/Caddyfile
says, and a user drives the instance through that load balancer.

What is taken from the files, not restated here:
- each Crosstalk service's command after the image's ENTRYPOINT (deploy/Dockerfile; `crosstalk` is
  `python -m server.cli`, the console script of pyproject.toml), its environment: the image's ENV, then
  the service's (YAML anchors and merge keys, `${VAR:-default}` interpolated as compose does, with only
  CROSSTALK_PUBLISH_PORT set in the interpolation environment), its healthcheck command, depends_on;
- the load balancer's published address (the lb service's `ports`), and from the Caddyfile: the site's
  port, the upstreams, the balancing policy, retries, the /readyz health check, the body size limit;
- the first user's command: the compose header's `docker compose ... exec web-1 crosstalk admin ...`.

What differs from Docker, and why (one host, no network namespaces):
- the service host names `postgres` and `redis` are the local servers (127.0.0.1); the database is a
  fresh one per run, reached as the local server's user (PostgreSQL trusts loopback here, and there is
  no `crosstalk` role): the test checks instead that the URL's user, password and database are those
  the postgres service creates;
- each process listens on 127.0.0.1 and a port of its own instead of 0.0.0.0:8080 in a container;
- the `media` volume mounted at /data is one temporary directory shared by the three processes;
- the load balancer connects to the web processes from 127.0.0.2, and CROSSTALK_HTTP_TRUSTED_PROXIES
  (the compose network's subnet, where Caddy lives) becomes 127.0.0.2/32; clients come from 127.0.0.1,
  so the web processes' access logs show whether they believe the forwarded address;
- health checks are polled every 0.2 s (compose: every `interval`) within the same total budget.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests
import yaml
from aiohttp import web
from mastodon import Mastodon

from tests.conftest import authorize_in_browser, free_port
from tests.databases import query
from tests.services import REDIS_URL, require, scratch_postgres

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.scale.yaml"
LB_SOURCE = "127.0.0.2"  # the load balancer's own address, as Caddy has one in the compose network
PASSWORD = "correct horse battery staple"
HEALTH_POLL = 0.2


# ---------------------------------------------------------------------------------- compose semantics

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r},
    ${VAR+r}, nested in defaults; an unset variable without a default is empty."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        following = text[i + 1:i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            depth, j = 0, i + 1
            while j < len(text):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            else:
                raise ValueError(f"unclosed ${{ in {text!r}")
            out.append(_braced(text[i + 2:j], env))
            i = j + 1
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _braced(body: str, env: Mapping[str, str]) -> str:
    match = _NAME.match(body)
    if not match:
        raise ValueError(f"invalid interpolation ${{{body}}}")
    name, rest = match.group(), body[match.end():]
    value = env.get(name)
    if not rest:
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            argument = rest[len(op):]
            present = value is not None and (value != "" or not op.startswith(":"))
            if op.endswith("-"):
                return value if present and value is not None else interpolate(argument, env)
            if op.endswith("?"):
                if not present or value is None:
                    raise ValueError(f"required variable {name} is missing: {interpolate(argument, env)}")
                return value
            return interpolate(argument, env) if present else ""
    raise ValueError(f"invalid interpolation ${{{body}}}")


def _resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_resolve(n, env) for n in node]
    if isinstance(node, dict):
        return {k: _resolve(v, env) for k, v in node.items()}
    return node


def load_compose(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The file as compose sees it: YAML anchors and merge keys resolved (PyYAML's safe loader does
    both), every value interpolated."""
    doc = _resolve(yaml.safe_load(path.read_text()), env)
    assert isinstance(doc, dict)
    return doc


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()}


@dataclass
class Image:
    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    workdir: str


def image_of(dockerfile: Path) -> Image:
    """ENV, ENTRYPOINT, CMD and WORKDIR of the Dockerfile's last stage."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    image = Image({}, [], [], "/")
    for line in lines[last_from:]:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                image.env[key] = value
        elif instruction == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif instruction == "CMD":
            image.cmd = json.loads(rest)
        elif instruction == "WORKDIR":
            image.workdir = rest.strip()
    return image


def local_argv(argv: list[str]) -> list[str]:
    """A command of the image, run with this interpreter (whose environment is the image's virtualenv)."""
    program, *args = argv
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    if program in scripts:
        module, _, function = scripts[program].partition(":")
        assert function == "main", scripts[program]
        return [sys.executable, "-m", module, *args]
    if program in ("python3", "python"):
        return [sys.executable, *args]
    raise AssertionError(f"{program!r} is not a program of the image")


def header_commands(path: Path) -> list[list[str]]:
    """The `docker compose ...` commands of the file's leading comment."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line[1:].strip())
    joined = re.sub(r"\\\n", " ", "\n".join(header))
    return [shlex.split(line) for line in joined.splitlines() if line.startswith("docker compose")]


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ms|s|m)?", duration)
    assert match, duration
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]


# ----------------------------------------------------------------------------------------- Caddyfile


@dataclass
class Caddy:
    site_port: int
    upstreams: list[str]  # "web-1:8080"
    policy: str = "random"
    try_duration: float = 0.0
    try_interval: float = 0.25
    health_uri: str | None = None
    health_interval: float = 30.0
    health_timeout: float = 5.0
    max_body: int | None = None


SIZES = {"": 1, "B": 1, "KB": 1000, "KIB": 1024, "MB": 1000**2, "MIB": 1024**2, "GB": 1000**3, "GIB": 1024**3}


def parse_caddyfile(path: Path) -> Caddy:
    """What our load balancer must do, from the Caddyfile; a directive it does not know fails the test
    (so a change to the Caddyfile cannot go unchecked)."""
    text = "\n".join(line.split("#", 1)[0].rstrip() for line in path.read_text().splitlines())
    site = re.search(r"^:(\d+)\s*\{", text, re.M)
    assert site, "the Caddyfile should have one site block on a port (e.g. `:80 {`)"
    proxy = re.search(r"^\s*reverse_proxy\s+([^{\n]+)\{(.*?)^\s*\}", text, re.M | re.S)
    assert proxy, "no reverse_proxy block"
    caddy = Caddy(int(site.group(1)), proxy.group(1).split())
    size = re.search(r"^\s*max_size\s+(\d+)([a-zA-Z]*)\s*$", text, re.M)
    if size:
        caddy.max_body = int(size.group(1)) * SIZES[size.group(2).upper()]
    for line in proxy.group(2).splitlines():
        if not line.strip():
            continue
        key, *values = line.split()
        if key == "lb_policy":
            assert values[0] in ("round_robin", "least_conn", "first", "random"), values
            caddy.policy = values[0]
        elif key == "lb_try_duration":
            caddy.try_duration = seconds(values[0])
        elif key == "lb_try_interval":
            caddy.try_interval = seconds(values[0])
        elif key == "health_uri":
            caddy.health_uri = values[0]
        elif key == "health_interval":
            caddy.health_interval = seconds(values[0])
        elif key == "health_timeout":
            caddy.health_timeout = seconds(values[0])
        elif key == "flush_interval":
            assert values[0] == "-1", "the load balancer here always streams (flush_interval -1)"
        else:
            raise AssertionError(f"the test's load balancer does not do Caddy's {key!r}: teach it")
    return caddy


@dataclass
class Served:
    method: str
    path: str
    upstream: str
    status: int


HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}


class LoadBalancer:
    """Caddy's reverse_proxy as the Caddyfile configures it, on its own thread and event loop:
    least_conn (ties taken in turn, where Caddy picks at random) or round_robin; active health checks
    of `health_uri`; a request that could not reach a process is tried on another for lb_try_duration
    (any request when the connection failed, GETs also after that, as Caddy's default retry rule);
    WebSockets and streamed answers passed on as they come; X-Forwarded-For/-Proto/-Host set from the
    client's connection (an incoming X-Forwarded-For is not believed: Caddy trusts no proxy by
    default). Connections to the upstreams are not reused, so a process going away shows up as a
    refused connection rather than a dead pooled one."""

    def __init__(self, caddy: Caddy, listen: tuple[str, int], upstreams: dict[str, int]) -> None:
        self.caddy, self.listen, self.upstreams = caddy, listen, upstreams
        self.names = list(upstreams)
        self.healthy = dict.fromkeys(self.names, False)
        self.active = dict.fromkeys(self.names, 0)
        self.served: list[Served] = []
        self.failed: list[Served] = []  # status 0: no answer, the error in `path`
        self._turn = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="load-balancer", daemon=True)

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(LB_SOURCE, 0), force_close=True),
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=3))
        await self._check_all()
        self._checks = asyncio.ensure_future(self._health_loop())
        app = web.Application(client_max_size=1 << 40)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, *self.listen).start()

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def stop() -> None:
            if hasattr(self, "_checks"):
                self._checks.cancel()
            if hasattr(self, "_runner"):
                await self._runner.cleanup()
            if hasattr(self, "session"):
                await self.session.close()
        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    # ------------------------------------------------------------------ health
    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.caddy.health_interval)
            await self._check_all()

    async def _check_all(self) -> None:
        if not self.caddy.health_uri:
            self.healthy = dict.fromkeys(self.names, True)
            return
        results = await asyncio.gather(*(self._check(name) for name in self.names))
        self.healthy = dict(zip(self.names, results, strict=True))

    async def _check(self, name: str) -> bool:
        try:
            async with self.session.get(f"http://127.0.0.1:{self.upstreams[name]}{self.caddy.health_uri}",
                                        timeout=aiohttp.ClientTimeout(total=self.caddy.health_timeout)) as answer:
                await answer.read()
                return 200 <= answer.status < 300
        except (aiohttp.ClientError, TimeoutError):
            return False

    # ------------------------------------------------------------------ balancing
    def _pick(self) -> str | None:
        healthy = [n for n in self.names if self.healthy[n]]
        if not healthy:
            return None
        if self.caddy.policy == "first":
            return healthy[0]
        if self.caddy.policy == "least_conn":
            fewest = min(self.active[n] for n in healthy)
            healthy = [n for n in healthy if self.active[n] == fewest]
        self._turn += 1
        return healthy[self._turn % len(healthy)]

    def _headers(self, request: web.Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP and not k.lower().startswith("x-forwarded-")}
        peer = request.transport.get_extra_info("peername")[0] if request.transport else ""
        headers.update({"X-Forwarded-For": peer, "X-Forwarded-Proto": "http",
                        "X-Forwarded-Host": request.headers.get("Host", "")})
        return headers

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.caddy.max_body is not None and (request.content_length or 0) > self.caddy.max_body:
            return web.Response(status=413, text="request body too large")
        headers = self._headers(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, headers)
        body = await request.read()
        deadline = time.monotonic() + self.caddy.try_duration
        while True:
            name = self._pick()
            if name is not None:
                self.active[name] += 1
                response: web.StreamResponse | None = None
                try:
                    async with self.session.request(
                            request.method, f"http://127.0.0.1:{self.upstreams[name]}{request.path_qs}",
                            headers=headers, data=body or None, allow_redirects=False) as answer:
                        response = web.StreamResponse(status=answer.status, reason=answer.reason)
                        for key, value in answer.headers.items():
                            if key.lower() not in HOP_BY_HOP:
                                response.headers.add(key, value)
                        # Recorded before the client can have the answer.
                        self.served.append(Served(request.method, request.path, name, answer.status))
                        await response.prepare(request)
                        async for chunk in answer.content.iter_any():
                            await response.write(chunk)
                        await response.write_eof()
                        return response
                except aiohttp.ClientConnectorError:
                    pass  # never reached the process: any request may go elsewhere
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if response is not None and response.prepared:
                        raise  # part of the answer went out already
                    if request.method != "GET":
                        self.failed.append(Served(request.method, f"{request.path}: {exc!r}", name, 0))
                        return web.Response(status=502, text=f"upstream {name}: {exc!r}")
                finally:
                    self.active[name] -= 1
            if time.monotonic() >= deadline:
                self.failed.append(Served(request.method, f"{request.path}: none within lb_try_duration", "", 0))
                return web.Response(status=502 if name else 503, text="no upstream answered")
            await asyncio.sleep(self.caddy.try_interval)

    async def _websocket(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        name = self._pick()
        if name is None:
            return web.Response(status=503)
        upstream_headers = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket-")}
        self.active[name] += 1
        try:
            async with self.session.ws_connect(f"ws://127.0.0.1:{self.upstreams[name]}{request.path_qs}",
                                               headers=upstream_headers) as upstream:
                self.served.append(Served("WS", request.path, name, 101))
                client = web.WebSocketResponse()
                await client.prepare(request)

                async def pump(source: Any, sink: Any) -> None:
                    async for msg in source:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            await sink.send_str(msg.data)
                        elif msg.type == aiohttp.WSMsgType.BINARY:
                            await sink.send_bytes(msg.data)
                    await sink.close()

                _, pending = await asyncio.wait([asyncio.ensure_future(pump(upstream, client)),
                                                 asyncio.ensure_future(pump(client, upstream))],
                                                return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                await client.close()
                return client
        finally:
            self.active[name] -= 1

    def served_by(self, method: str, path: str) -> list[str]:
        return [s.upstream for s in list(self.served) if s.method == method and s.path == path]


# ---------------------------------------------------------------------------------------- processes


@dataclass
class Process:
    """One Crosstalk container as a local process."""
    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    log_path: Path
    healthcheck: list[str]
    health_budget: float
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def healthy(self) -> bool:
        """The compose healthcheck, run as `docker` runs it: inside the container, with its environment."""
        try:
            return subprocess.run(self.healthcheck, cwd=self.workdir, env=self.env, capture_output=True,
                                  timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.health_budget
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if self.healthy():
                return
            time.sleep(HEALTH_POLL)
        raise AssertionError(f"{self.name} never became healthy:\n{self.log()}")

    def stop(self, timeout: float) -> int | None:
        """SIGTERM to the process (PID 1 in its container), SIGKILL after `timeout` as Docker does."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code, self.proc = self.proc.returncode, None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def access_log(self, request_id: str) -> dict[str, Any]:
        """The access log line of a request (written just after its answer is sent)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if request_id in line and line.startswith("{"):
                    entry = json.loads(line)
                    if entry.get("request_id") == request_id and "remote_addr" in entry:
                        return dict(entry)
            time.sleep(0.05)
        raise AssertionError(f"no access log line for request {request_id} in {self.name}:\n{self.log()}")


@dataclass
class Topology:
    compose: dict[str, Any]
    processes: dict[str, Process]
    database_url: str
    lb: LoadBalancer
    base_url: str
    exec_command: tuple[str, list[str]]  # service, argv of the header's `exec`

    def exec(self, service: str, argv: list[str], stdin: str) -> str:
        """`docker compose exec SERVICE ARGV...`: in that container, with its environment (exec does
        not go through the ENTRYPOINT); the password on standard input as with `exec -T`."""
        process = self.processes[service]
        result = subprocess.run(local_argv(argv), cwd=process.workdir, env=process.env, input=stdin,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}"
        return result.stdout


def _grace(service: dict[str, Any]) -> float:
    return seconds(str(service.get("stop_grace_period", "10s")))


def build_topology(tmp: Path, database_url: str, lb_port: int) -> Topology:
    compose = load_compose(COMPOSE, {"CROSSTALK_PUBLISH_PORT": str(lb_port)})
    services: dict[str, dict[str, Any]] = compose["services"]
    ours = {n: s for n, s in services.items() if isinstance(s.get("build"), dict)}
    assert set(ours) >= {"web-1", "web-2", "worker"}, sorted(ours)

    # The backing services: only their host names change.
    pg_env = service_environment(services["postgres"])
    subnets = [ipaddress.ip_network(c["subnet"]) for net in (compose.get("networks") or {}).values()
               for c in ((net or {}).get("ipam") or {}).get("config") or []]
    local_pg, local_redis = urlsplit(database_url), urlsplit(REDIS_URL)

    volumes = tmp / "volumes"
    processes: dict[str, Process] = {}
    for name, service in ours.items():
        build = service["build"]
        image = image_of((COMPOSE.parent / build["context"] / build["dockerfile"]).resolve())
        argv = [*image.entrypoint, *(service.get("command") or image.cmd)]
        assert service.get("read_only"), f"{name}: expected a read-only root file system"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSTALK_")}
        env.update({k: v for k, v in image.env.items() if k != "PATH"})
        env.update(service_environment(service))
        env["PYTHONPATH"] = str(ROOT)

        # Mounts: each named volume is a directory; the data directory must be on one (read_only).
        mounts = {}
        for mount in service.get("volumes") or []:
            source, target = str(mount).split(":")[:2]
            assert source in (compose.get("volumes") or {}), f"{name}: {source} is not a named volume"
            mounts[target] = volumes / source
            mounts[target].mkdir(parents=True, exist_ok=True)
        data_dir = env["CROSSTALK_DATA_DIR"]
        assert data_dir in mounts, f"{name}: the data directory {data_dir} is on the read-only root file system"
        env["CROSSTALK_DATA_DIR"] = str(mounts[data_dir])
        workdir = mounts.get(image.workdir, tmp)

        # Network: loopback, a port each (the container port stays what the Caddyfile must name).
        env["CROSSTALK_CONTAINER_PORT_FOR_TEST"] = env["CROSSTALK_PORT"]
        env["CROSSTALK_HOST"], env["CROSSTALK_PORT"] = "127.0.0.1", str(free_port())

        url = urlsplit(env["CROSSTALK_DATABASE_URL"])
        assert url.hostname == "postgres" and url.hostname in services, url.hostname
        assert (url.username, url.password, url.path.lstrip("/")) == (
            pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"], pg_env["POSTGRES_DB"]), \
            f"{name}: CROSSTALK_DATABASE_URL does not match the postgres service's user, password and database"
        env["CROSSTALK_DATABASE_URL"] = local_pg.geturl()
        bus = urlsplit(env["CROSSTALK_BUS_URL"])
        assert bus.scheme == "redis" and bus.hostname in services, env["CROSSTALK_BUS_URL"]
        env["CROSSTALK_BUS_URL"] = bus._replace(netloc=local_redis.netloc).geturl()
        trusted = [ipaddress.ip_network(n.strip()) for n in env["CROSSTALK_HTTP_TRUSTED_PROXIES"].split(",")]
        assert trusted and all(any(t.subnet_of(s) for s in subnets if s.version == t.version) for t in trusted), \
            f"{name}: CROSSTALK_HTTP_TRUSTED_PROXIES {trusted} is not the compose network {subnets}"
        env["CROSSTALK_HTTP_TRUSTED_PROXIES"] = f"{LB_SOURCE}/32"

        check = service["healthcheck"]
        assert check["test"][0] == "CMD", check
        budget = seconds(str(check.get("interval", "30s"))) * int(check.get("retries", 3))
        budget += seconds(str(check.get("start_period", "0s")))
        processes[name] = Process(name, local_argv(argv), env, workdir, tmp / f"{name}.log",
                                  local_argv(check["test"][1:]), budget)

    # The load balancer: the lb service's published address, the Caddyfile's site and upstreams.
    lb_service = services["lb"]
    caddyfile = next(str(v).split(":")[0] for v in lb_service["volumes"] if str(v).endswith("/etc/caddy/Caddyfile:ro"))
    caddy = parse_caddyfile((COMPOSE.parent / caddyfile).resolve())
    host_ip, host_port, container_port = lb_service["ports"][0].split(":")
    assert int(container_port) == caddy.site_port, "the lb publishes a port the Caddyfile does not serve"
    upstreams = {}
    for upstream in caddy.upstreams:
        host, _, port = upstream.partition(":")
        assert host in processes, f"the Caddyfile names {host}, not a Crosstalk service of the compose file"
        assert port == processes[host].env["CROSSTALK_CONTAINER_PORT_FOR_TEST"], \
            f"the Caddyfile sends to {upstream}, but {host} listens on {processes[host].env['CROSSTALK_CONTAINER_PORT_FOR_TEST']}"
        upstreams[host] = int(processes[host].env["CROSSTALK_PORT"])
    for process in processes.values():
        del process.env["CROSSTALK_CONTAINER_PORT_FOR_TEST"]
    lb = LoadBalancer(caddy, (host_ip, int(host_port)), upstreams)

    execs = [c for c in header_commands(COMPOSE) if "exec" in c]
    assert execs, "the compose file's header should say how to create the first user (docker compose exec)"
    at = execs[0].index("exec")
    exec_command = (execs[0][at + 1], execs[0][at + 2:])
    assert any("up" in c and "compose.scale.yaml" in " ".join(c) for c in header_commands(COMPOSE))
    return Topology(compose, processes, database_url, lb, f"http://localhost:{host_port}", exec_command)


def start_in_dependency_order(topology: Topology) -> None:
    """Everything a service depends on healthy first; the Crosstalk services then all at once (their
    migrations take an advisory lock), each waited for with its healthcheck; the lb after those."""
    services = topology.compose["services"]
    for name in topology.processes:
        depends = services[name].get("depends_on") or {}
        assert set(depends) <= {"postgres", "redis"}, f"{name} depends on {set(depends)}"
        assert all(d.get("condition") == "service_healthy" for d in depends.values())
    for process in topology.processes.values():
        process.start()
    for process in topology.processes.values():
        process.wait_healthy()
    lb_depends = services["lb"].get("depends_on") or {}
    assert set(topology.lb.upstreams) <= set(lb_depends), "the lb should wait for every web process"
    assert all(d.get("condition") == "service_healthy" for d in lb_depends.values())
    topology.lb.start()


@pytest.fixture
def database() -> Iterator[str]:
    yield from scratch_postgres()


@pytest.fixture
def topology(tmp_path: Path, database: str) -> Iterator[Topology]:
    require("Redis", REDIS_URL)
    top = build_topology(tmp_path, database, free_port())
    try:
        start_in_dependency_order(top)
        yield top
    finally:
        top.lb.close()
        for process in top.processes.values():  # a first SIGTERM starts each drain, all at once;
            if process.proc is not None and process.proc.poll() is None:
                process.proc.send_signal(signal.SIGTERM)
        for name, process in top.processes.items():  # the second skips what is left of it
            process.stop(_grace(top.compose["services"][name]))


# --------------------------------------------------------------------------------------------- test


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def log_in(base_url: str, username: str) -> Mastodon:
    """A Mastodon client app's authorization-code login, the user approving in the browser."""
    scopes = ["read", "write", "follow"]
    client_id, client_secret = Mastodon.create_app("compose test", api_base_url=base_url, scopes=scopes)
    api = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base_url)
    code = authorize_in_browser(base_url, api.auth_request_url(scopes=scopes), username, PASSWORD)
    api.log_in(code=code, scopes=scopes)
    return api


class Stream:
    """A WebSocket client of /api/v1/streaming through the load balancer, on a thread of its own."""

    def __init__(self, base_url: str, token: str) -> None:
        self.updates: list[dict[str, Any]] = []
        self.connected, self.closed = threading.Event(), threading.Event()
        self._loop = asyncio.new_event_loop()
        url = base_url.replace("http://", "ws://") + "/api/v1/streaming?stream=user"
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(url, token),),
                                        daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "the stream did not connect"

    async def _run(self, url: str, token: str) -> None:
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
            self.connected.set()
            reader = asyncio.ensure_future(self._read(ws))
            await self._stop.wait()
            reader.cancel()
        self.closed.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            event = json.loads(msg.data)
            if event.get("event") == "update":
                self.updates.append(json.loads(event["payload"]))

    def wait_update(self, status_id: str, timeout: float) -> None:
        wait_for(lambda: any(u["id"] == status_id for u in self.updates), timeout, f"status {status_id} on the stream")

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


def test_the_scale_compose_topology_serves_a_user_and_rolls_without_failed_requests(topology):
    top, lb = topology, topology.lb
    web = list(lb.upstreams)
    assert len(web) >= 2

    # The first user, as the header says (`docker compose exec web-1 crosstalk admin create-user ...`),
    # and a second one made the same way.
    service, argv = top.exec_command
    assert argv[:3] == ["crosstalk", "admin", "create-user"], argv
    first = argv[3]
    top.exec(service, argv, stdin=PASSWORD + "\n")
    top.exec(service, ["crosstalk", "admin", "create-user", "bob", "--email", "bob@example.org"],
             stdin=PASSWORD + "\n")

    # A user logs in through the load balancer with a Mastodon client and posts.
    author, reader = log_in(top.base_url, first), log_in(top.base_url, "bob")
    assert author.account_verify_credentials()["username"] == first
    reader.account_follow(author.account_verify_credentials()["id"])
    post = author.status_post("Hello from behind the load balancer")
    assert post["url"].startswith(top.base_url + "/"), f"links point elsewhere than the instance: {post['url']}"

    # The home timeline reads the same through each web process (once the post's event is dispatched,
    # just after its commit).
    wait_for(lambda: post["id"] in [s["id"] for s in reader.timeline_home()], 10, "the post in the home timeline")
    for _ in range(2 * len(web)):
        assert post["id"] in [s["id"] for s in reader.timeline_home()]
    assert set(lb.served_by("GET", "/api/v1/timelines/home")) == set(web), lb.served_by("GET", "/api/v1/timelines/home")

    # The web processes believe the load balancer's X-Forwarded-For, and only that: a client's own
    # header is replaced by the load balancer, a client reaching a process directly is not believed.
    answer = requests.get(f"{top.base_url}/api/v1/instance", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert answer.status_code == 200
    via = lb.served_by("GET", "/api/v1/instance")[-1]
    assert top.processes[via].access_log(answer.headers["X-Request-Id"])["remote_addr"] == "127.0.0.1"
    direct = requests.get(f"http://127.0.0.1:{lb.upstreams[via]}/api/v1/instance",
                          headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert top.processes[via].access_log(direct.headers["X-Request-Id"])["remote_addr"] == "127.0.0.1"
    proxied = requests.get(f"{top.base_url}/api/v1/instance", timeout=10)
    entry = top.processes[lb.served_by("GET", "/api/v1/instance")[-1]].access_log(proxied.headers["X-Request-Id"])
    assert entry["remote_addr"] == "127.0.0.1"  # not 127.0.0.2, the load balancer's own address

    # A stream held by one web process receives a post made through the other (least_conn sends the
    # post to the process without the stream).
    stream = Stream(top.base_url, reader.access_token)
    try:
        streaming_on = lb.served_by("WS", "/api/v1/streaming")[-1]
        second = author.status_post("Through one process, streamed from the other")
        posted_on = lb.served_by("POST", "/api/v1/statuses")[-1]
        if lb.caddy.policy == "least_conn":
            assert posted_on != streaming_on
        stream.wait_update(second["id"], timeout=5)

        # Background work is the worker's: a scheduled post, its time moved to now (scheduling needs
        # five minutes ahead), is posted by the worker's scheduled-statuses job, which web processes
        # started with --no-workers do not run; it reaches the stream and the home timeline.
        when = datetime.now(UTC) + timedelta(minutes=10)
        scheduled = author.status_post("Posted by the worker", scheduled_at=when)
        query(top.database_url, Path(), "UPDATE scheduled_statuses SET scheduled_at = ? WHERE id = ?",
              ("2000-01-01T00:00:00.000Z", int(scheduled["id"])))
        wait_for(lambda: any(u["content"].find("Posted by the worker") >= 0 for u in stream.updates), 20,
                 "the scheduled post, published by the worker")
        assert "Posted by the worker" in reader.timeline_home()[0]["content"]
    finally:
        stream.close()

    # Rolling update of web-1: SIGTERM (compose stops it within stop_grace_period), requests go on
    # through the load balancer to the others, web-1 comes back healthy and is sent requests again.
    results: list[int] = []
    client_errors: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 3:
                    reader.timeline_home(limit=5)
                else:
                    author.status_post(f"During the rolling update {n}")
                results.append(200)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                results.append(-1)
                client_errors.append(repr(exc))

    restarted = top.processes["web-1"]
    driver = threading.Thread(target=traffic, daemon=True)
    driver.start()
    try:
        wait_for(lambda: len(results) >= 5, 10, "traffic before the update")
        code = restarted.stop(_grace(top.compose["services"]["web-1"]))
        assert code == 0, f"web-1 did not stop cleanly ({code}):\n{restarted.log()}"
        assert "stopped cleanly" in restarted.log()
        wait_for(lambda: not lb.healthy["web-1"], 2 * lb.caddy.health_interval + 1, "the lb to see web-1 gone")
        down, during = len(lb.served), len(results)
        wait_for(lambda: len(results) >= during + 5, 10, "traffic while web-1 is down")
        assert {s.upstream for s in lb.served[down:]} - {"web-1"} == {s.upstream for s in lb.served[down:]} != set()
        restarted.start()
        restarted.wait_healthy()
        wait_for(lambda: lb.healthy["web-1"], 2 * lb.caddy.health_interval + 1, "the lb to take web-1 back")
        back = len(lb.served)
        wait_for(lambda: "web-1" in {s.upstream for s in lb.served[back:]}, 10, "requests on web-1 again")
    finally:
        stop.set()
        driver.join(15)
    assert len(results) >= 20, results
    for process in top.processes.values():
        assert process.proc is not None and process.proc.poll() is None, f"{process.name} died:\n{process.log()}"
    assert not client_errors and not lb.failed, (client_errors, lb.failed)
