"""Server processes for the benchmarks: start pinned to a CPU, wait until ready, read RSS, stop."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CpuSet = int | tuple[int, ...] | None  # one CPU, several (taskset's list), or not pinned


def free_port(preferred: int | None = None) -> int:
    """`preferred` if it can be bound on 127.0.0.1, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def free_ports(count: int, avoid: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """`count` distinct ports free on 127.0.0.1 right now, none of them in `avoid`."""
    found: list[int] = []
    for _ in range(count * 20):
        port = free_port()
        if port not in avoid and port not in found:
            found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"could not find {count} free ports")


# 10,000 WebSocket streams take a descriptor each in the server and in the clients, plus the server's
# database files, listening sockets and pipes.
WANTED_OPEN_FILES = 65_536


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's open-files limit (RLIMIT_NOFILE; children inherit it) towards `wanted`: the
    soft limit up to the hard one, and the hard one too where allowed (root). The soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass  # not allowed: settle for the hard limit
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def ephemeral_port_count() -> int:
    """How many local ports the kernel hands out to outgoing connections (one per client stream)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 0
    return high - low + 1


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def pinned(cmd: list[str], cpu: CpuSet) -> list[str]:
    """Prefix `cmd` with taskset so it runs on these CPUs (no pinning on a one-CPU machine)."""
    if cpu is None or cpus() < 2:
        return cmd
    if shutil.which("taskset"):
        return ["taskset", "-c", ",".join(map(str, cpu)) if isinstance(cpu, tuple) else str(cpu), *cmd]
    return cmd


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(name: str) -> float:
    """User + system CPU time of every running process called `name` (a database server's processes,
    say, which are not ours)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                head, _, rest = fh.read().rpartition(")")
        except OSError:
            continue
        if head.partition("(")[2] == name:
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's children that have ended (load generators, after they
    exit)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return rss_kb(self.pid) / 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def spawn(name: str, cmd: list[str], *, port: int, env: dict[str, str], cpu: CpuSet, log_path: Path) -> Server:
    """Start a server process in its own session (so stop() can signal its whole group)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(pinned(cmd, cpu), cwd=ROOT, env={**os.environ, **env}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name, proc, port, log_path)


async def start(name: str, cmd: list[str], *, port: int, env: dict[str, str], cpu: CpuSet, log_path: Path,
                ready_path: str = "/", wait_s: float = 120.0) -> Server:
    """Spawn a server and wait until it answers on `ready_path`."""
    server = spawn(name, cmd, port=port, env=env, cpu=cpu, log_path=log_path)
    proc = server.proc
    deadline = time.monotonic() + wait_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early ({proc.returncode}):\n{server.log_tail()}")
            try:
                async with session.get(server.url + ready_path, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status < 500:
                        return server
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    stop(server)
    raise RuntimeError(f"{name} did not answer within {wait_s:.0f} s:\n{server.log_tail()}")


def stop(server: Server, grace: float = 20.0) -> None:
    """SIGTERM the server's process group (it was started in its own session), SIGKILL if it lingers."""
    proc = server.proc
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def crosstalk_cmd() -> list[str]:
    return [sys.executable, "-m", "server.cli", "serve"]


def crosstalk_env(data_dir: Path, domain: str, port: int) -> dict[str, str]:
    return {
        "CROSSTALK_DOMAIN": domain,
        "CROSSTALK_SCHEME": "http",
        "CROSSTALK_DEVELOPMENT": "true",
        "CROSSTALK_HOST": "127.0.0.1",
        "CROSSTALK_PORT": str(port),
        "CROSSTALK_DATA_DIR": str(data_dir),
        "CROSSTALK_RATE_LIMIT_ENABLED": "false",
        "CROSSTALK_LOG_LEVEL": "warning",
    }


def baseline_cmd(port: int) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "baseline_server.py"), "--port", str(port)]
