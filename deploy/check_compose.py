"""Static checks of the compose files for deploy/check.sh: every service has an image, files and
directories they mount or build from exist, depends_on and named volumes/networks are declared, and
(when a compose tool is installed) the tool itself accepts the file.

    python3 deploy/check_compose.py FILE [FILE ...]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def problems(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    base = path.parent
    found: list[str] = []
    services = doc.get("services") or {}
    volumes = set(doc.get("volumes") or {})
    networks = set(doc.get("networks") or {}) | {"default"}
    if not services:
        found.append("no services")
    for name, svc in services.items():
        if not svc.get("image") and not svc.get("build"):
            found.append(f"{name}: neither image nor build")
        build = svc.get("build")
        if isinstance(build, dict):
            context = (base / build.get("context", ".")).resolve()
            if not (context / build.get("dockerfile", "Dockerfile")).exists():
                found.append(f"{name}: no Dockerfile at {context / build.get('dockerfile', 'Dockerfile')}")
        for mount in svc.get("volumes") or []:
            source = str(mount).split(":", 1)[0]
            if source.startswith((".", "/")):
                if not (base / source).exists():
                    found.append(f"{name}: mounts missing {source}")
            elif source not in volumes:
                found.append(f"{name}: volume {source} is not declared")
        depends = svc.get("depends_on") or {}
        for dep in depends if isinstance(depends, list) else depends.keys():
            if dep not in services:
                found.append(f"{name}: depends on unknown service {dep}")
        nets = svc.get("networks") or []
        for net in nets if isinstance(nets, list) else nets.keys():
            if net not in networks:
                found.append(f"{name}: network {net} is not declared")
    return found


def tool_check(path: Path) -> str | None:
    """Let docker compose (v2) or docker-compose (v1) validate the file; None if neither exists."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        result = subprocess.run(["docker", "compose", "-f", str(path), "config", "-q"], capture_output=True, text=True)
        return result.stderr.strip() if result.returncode else ""
    if shutil.which("docker-compose"):
        # v1 predates the top-level `name`; validate the rest.
        text = "".join(line for line in path.read_text().splitlines(keepends=True) if not line.startswith("name:"))
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=path.parent, delete=False) as tmp:
            tmp.write(text)
        try:
            result = subprocess.run(["docker-compose", "-f", tmp.name, "config", "-q"], capture_output=True, text=True)
        finally:
            Path(tmp.name).unlink()
        return result.stderr.strip() if result.returncode else ""
    return None


def main(argv: list[str]) -> int:
    failed = False
    for arg in argv[1:]:
        path = Path(arg)
        found = problems(path)
        verdict = tool_check(path)
        if verdict:
            found.append(verdict)
        for p in found:
            print(f"{path.name}: {p}", file=sys.stderr)
        failed |= bool(found)
        tool = "" if verdict is None else " (and the compose tool accepts it)"
        if not found:
            print(f"{path.name}: ok{tool}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
