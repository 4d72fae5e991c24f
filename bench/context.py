"""What every scenario gets: datasets, servers (pinned to CPU 0), load (pinned to CPU 1), the
hello-world baseline measured once per run, RSS sampling, and result helpers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import dataset as datasets
from bench import load as loads
from bench import procs
from bench.dataset import Dataset, Spec

SERVER_CPU = 0
LOAD_CPU = 1
BOTH_CPUS = (SERVER_CPU, LOAD_CPU)  # for the figures measured with the server allowed the second core
CROSSTALK_PORT = 18080  # the port in the datasets' domain; another one is used if it is taken

FULL = Spec(users=10_000, follows=200, statuses=1_000_000)
# 1,100 users so that the POST author still has its 1,000 local followers.
SMALL = Spec(users=1_100, follows=50, statuses=20_000)


@dataclass
class Context:
    small: bool
    duration: float  # seconds of measured load per run
    warmup: float  # seconds of unmeasured load before each measured run
    connections: int
    tool: str  # "wrk" or "python"
    data_root: Path
    regenerate: bool = False
    keep_work: bool = False
    profile_dir: Path | None = None  # py-spy every Crosstalk server into this directory
    profile_native: bool = False  # with the C frames (py-spy --native)
    scenario: str = ""  # the scenario running now (names the profiles)
    log: Callable[[str], None] = print
    spec: Spec = field(init=False)
    work_root: Path = field(init=False)
    _datasets: dict[Spec, Dataset] = field(default_factory=dict, init=False)
    _copies: dict[Path, Path] = field(default_factory=dict, init=False)
    _baseline: dict[str, Any] | None = field(default=None, init=False)
    _crypto: dict[str, float] | None = field(default=None, init=False)
    used_datasets: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    # Every Crosstalk server of the run: scenario, CPUs, RSS when it was stopped.
    servers: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.spec = SMALL if self.small else FULL
        # One directory per run, so that two runs at once (several people share a machine) never
        # delete or overwrite each other's database copies.
        self.work_root = self.data_root / "work" / f"run-{os.getpid()}"

    # -- data -----------------------------------------------------------------------------------

    async def dataset(self, spec: Spec | None = None) -> Dataset:
        spec = spec or self.spec
        if spec not in self._datasets:
            ds = await datasets.ensure(spec, self.data_root, self.log, regenerate=self.regenerate)
            if not ds.meta.get("started_once"):
                await self._first_start(ds)
            self._datasets[spec] = ds
            self.used_datasets[spec.key] = {"counts": ds.meta["counts"], "notes": ds.meta["notes"],
                                            "generation_seconds": ds.meta.get("generation_seconds")}
        return self._datasets[spec]

    async def _first_start(self, ds: Dataset) -> None:
        """Start the real server once on the cached dataset, as an operator's first start would (it
        makes the instance actor's RSA key and the VAPID key, loading the crypto code to do so), so that
        every measured start is the restart of an instance that has run before."""
        port = procs.free_port(CROSSTALK_PORT)
        server = await procs.start("crosstalk-first-start", procs.crosstalk_cmd(), port=port,
                                   env=procs.crosstalk_env(ds.path, ds.spec.domain, port), cpu=None,
                                   log_path=self.work_root / "first-start.log", ready_path="/api/v1/instance")
        procs.stop(server)
        conn = sqlite3.connect(ds.db_path)  # fold the write-ahead log in: working copies copy the main file only
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            made = conn.execute("SELECT (SELECT count(*) FROM vapid_keys), (SELECT count(*) FROM accounts"
                                " WHERE username = 'actor' AND domain = '')").fetchone()
        finally:
            conn.close()
        if made != (1, 1):
            raise RuntimeError(f"the first start on {ds.path} did not make the instance's keys: {made}")
        ds.meta["started_once"] = True
        (ds.path / "meta.json").write_text(json.dumps(ds.meta, indent=1))
        self.log(f"dataset {ds.path.name}: started once (instance actor and keys made)")

    def working_copy(self, ds: Dataset) -> Path:
        """A per-run copy of the dataset's directory, so runs never change the cached dataset."""
        if ds.path not in self._copies:
            target = self.work_root / ds.path.name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            started = time.monotonic()
            shutil.copyfile(ds.db_path, target / datasets.DB_NAME)
            self.log(f"working copy of {ds.path.name} made in {time.monotonic() - started:.1f} s")
            self._copies[ds.path] = target
        return self._copies[ds.path]

    def cleanup(self) -> None:
        if not self.keep_work:
            shutil.rmtree(self.work_root, ignore_errors=True)

    # -- servers --------------------------------------------------------------------------------

    def private_copy(self, ds: Dataset, name: str) -> Path:
        """A copy of `ds` for one scenario alone (bench/data/work/NAME), for scenarios that add rows
        (remote followers, federation state) the other scenarios must not see."""
        target = self.work_root / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        started = time.monotonic()
        shutil.copyfile(ds.db_path, target / datasets.DB_NAME)
        self.log(f"private copy {name} of {ds.path.name} made in {time.monotonic() - started:.1f} s")
        return target

    @asynccontextmanager
    async def crosstalk(self, ds: Dataset, *, data_dir: Path | None = None, env: dict[str, str] | None = None,
                        cpu: procs.CpuSet = SERVER_CPU) -> AsyncIterator[procs.Server]:
        """The real server (`python -m server.cli serve`) on a working copy of `ds` (or on `data_dir`),
        pinned to CPU 0 (or `cpu`); `env` adds or overrides CROSSTALK_* settings."""
        data_dir = data_dir or self.working_copy(ds)
        port = procs.free_port(CROSSTALK_PORT)
        server = await procs.start("crosstalk", procs.crosstalk_cmd(), port=port,
                                   env={**procs.crosstalk_env(data_dir, ds.spec.domain, port), **(env or {})},
                                   cpu=cpu, log_path=self.work_root / "crosstalk.log",
                                   ready_path="/api/v1/instance")
        profiler = self._profile(server)
        try:
            yield server
        finally:
            self.servers.append({"scenario": self.scenario, "cpus": cpu, "rss_at_stop_mb": round(server.rss_mb(), 1)})
            procs.stop(server)
            if profiler is not None:
                try:
                    profiler.wait(30)  # py-spy writes its file once the server has exited
                except subprocess.TimeoutExpired:
                    profiler.kill()
                    profiler.wait()

    def _profile(self, server: procs.Server) -> subprocess.Popen[bytes] | None:
        """py-spy sampling the server for its whole life (--profile): raw collapsed stacks, one file per
        server, summarised with `python -m bench.profile FILE`."""
        if self.profile_dir is None:
            return None
        if shutil.which("py-spy") is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        n = sum(1 for _ in self.profile_dir.glob(f"{self.scenario}-*.txt")) + 1
        out = self.profile_dir / f"{self.scenario}-{n}.txt"
        self.log(f"profiling the server into {out}")
        # Each sample stops the server for a moment (py-spy's default): with --nonblocking, stacks read
        # while the server runs came out cut (a third to a half of an inbox run's samples had lost the
        # frames that name their task). The figures of a profiled run are lower for it: profile apart.
        return subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--rate", "200", "--format", "raw",
                                 "--output", str(out), "--threads", *(["--native"] if self.profile_native else [])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @asynccontextmanager
    async def baseline_server(self) -> AsyncIterator[procs.Server]:
        port = procs.free_port()
        server = await procs.start("baseline", procs.baseline_cmd(port), port=port, env={}, cpu=SERVER_CPU,
                                   log_path=self.work_root / "baseline.log")
        try:
            yield server
        finally:
            procs.stop(server)

    @asynccontextmanager
    async def sink(self, ports: list[int], *, actors_file: Path | None = None, verify_key: Path | None = None,
                   verify_every: int = 20, cpu: procs.CpuSet = LOAD_CPU) -> AsyncIterator[procs.Server]:
        """bench/sink.py — fake remote servers answering inbox POSTs with 202 — on `ports` of 127.0.0.1,
        pinned to the load CPU (or `cpu`)."""
        cmd = [sys.executable, str(procs.ROOT / "bench" / "sink.py"), "--ports", ",".join(map(str, ports)),
               "--verify-every", str(verify_every)]
        if actors_file is not None:
            cmd += ["--actors", str(actors_file)]
        if verify_key is not None:
            cmd += ["--verify-key", str(verify_key)]
        server = await procs.start("sink", cmd, port=ports[0], env={}, cpu=cpu,
                                   log_path=self.work_root / "sink.log", ready_path="/_stats")
        try:
            yield server
        finally:
            procs.stop(server)

    # -- load -----------------------------------------------------------------------------------

    async def load(self, server: procs.Server, path: str, *, tokens_file: Path | None,
                   connections: int | None = None, duration: float | None = None, warmup: float | None = None,
                   max_requests: int = 5_000_000, paths_file: Path | None = None) -> tuple[loads.LoadResult, float]:
        """Warm up, then one measured closed-loop run (to `path`, or to random paths of `paths_file`).
        Returns the result and the peak RSS (MB) seen during the measured run (sampled every 0.25 s)."""
        connections = connections or self.connections
        warmup = self.warmup if warmup is None else warmup
        if warmup > 0:
            await loads.http_load(self.tool, server.url + path, tokens_file=tokens_file, connections=connections,
                                  duration=warmup, max_requests=max_requests, cpu=LOAD_CPU, paths_file=paths_file)
        peak = 0.0
        running = True

        async def sample() -> None:
            nonlocal peak
            while running:
                peak = max(peak, server.rss_mb())
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        cpu_before = server.cpu_seconds()
        try:
            result = await loads.http_load(self.tool, server.url + path, tokens_file=tokens_file,
                                           connections=connections, duration=duration or self.duration,
                                           max_requests=max_requests, cpu=LOAD_CPU, paths_file=paths_file)
        finally:
            running = False
            await sampler
        # Server CPU per request barely depends on what else the machine runs: a steadier figure
        # than req/s when neighbours steal CPU time.
        if result.requests:
            result.cpu_ms_per_request = round((server.cpu_seconds() - cpu_before) * 1000 / result.requests, 3)
        return result, max(peak, server.rss_mb())

    async def baseline(self) -> dict[str, Any]:
        """The bare aiohttp+uvloop hello-world server under the same load: measured once per run."""
        if self._baseline is None:
            tokens = (await self.dataset()).path / "tokens.txt"
            async with self.baseline_server() as server:
                idle = server.rss_mb()
                result, peak = await self.load(server, "/", tokens_file=tokens)
            self.check(result, "baseline")
            self._baseline = {"load": result.as_dict(), "rss_idle_mb": round(idle, 1),
                              "rss_load_mb": round(peak, 1)}
            self.log(f"baseline hello-world: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                     f"{result.cpu_ms_per_request:.3f} CPU ms/request")
        return self._baseline

    async def crypto_rates(self) -> dict[str, float]:
        """Raw RSA-2048 sign and verify rates with `cryptography` on the server's CPU (bench/cryptorate.py):
        measured once per run, the ceiling the federation scenarios are read against."""
        if self._crypto is None:
            cmd = procs.pinned([sys.executable, "-m", "bench.cryptorate", "--seconds", "3"], SERVER_CPU)
            self._crypto = json.loads((await loads.run_process(cmd, 60)).strip().splitlines()[-1])
            self.log(f"raw RSA-2048 on one core: {self._crypto['rsa2048_sign_per_s']:,.0f} signs/s, "
                     f"{self._crypto['rsa2048_verify_per_s']:,.0f} verifies/s")
        return self._crypto

    def check(self, result: loads.LoadResult, what: str) -> None:
        if result.requests == 0:
            raise RuntimeError(f"{what}: no request completed")
        if result.non_2xx or result.errors:
            self.log(f"WARNING {what}: {result.non_2xx} non-2xx answers, {result.errors} socket errors")

    # -- small helpers for scenarios ---------------------------------------------------------------

    @staticmethod
    async def get_json(url: str, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as session, session.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"GET {url}: {resp.status} {await resp.text()}")
            return await resp.json()

    @staticmethod
    async def post_json(url: str, body: dict[str, Any], token: str) -> Any:
        async with aiohttp.ClientSession() as session, session.post(
                url, json=body, headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=30)) as resp:
            if resp.status != 200:
                raise RuntimeError(f"POST {url}: {resp.status} {await resp.text()}")
            return await resp.json()


class Result:
    """What a scenario reports: metrics (in a table) and notes. The targets they are judged by live in
    bench/targets.py, keyed by scenario and metric key."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.raw: dict[str, Any] = {}

    def add(self, key: str, value: float | int | str | None, unit: str = "", label: str | None = None) -> None:
        self.metrics.append({"key": key, "label": label or key, "value": value, "unit": unit})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "notes": self.notes, "raw": self.raw}
