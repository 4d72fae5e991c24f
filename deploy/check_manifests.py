"""The rules of our Kubernetes manifests and compose files that schema validation cannot see, for
deploy/check.sh and the test suite (tests/ops/test_deploy_files.py):

- each kustomization lists every manifest of its directory, and only existing ones;
- every CROSSTALK_* variable set in a ConfigMap, a container or a compose service is a setting
  (server/settings.py), or its *_FILE form pointing into a mounted Secret that has that key;
- Deployments, StatefulSets: selectors match the pod labels, containers run a `crosstalk` command,
  probe /livez (liveness, startup) and /readyz (readiness) on a declared port, the grace period
  outlasts the preStop pause plus CROSSTALK_SHUTDOWN_GRACE_SECONDS; a Deployment of several replicas
  rolls with maxUnavailable 0, so an update keeps serving;
- Services select the pods of a workload and target ports those pods declare;
- compose: the processes that share a PostgreSQL database also share a bus.

    python3 deploy/check_manifests.py [DIRECTORY ...]    (default: deploy/kubernetes, deploy/kubernetes/postgres)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.settings import SETTINGS  # noqa: E402

DEFAULT_DIRECTORIES = [ROOT / "deploy" / "kubernetes", ROOT / "deploy" / "kubernetes" / "postgres"]
COMPOSE_FILES = sorted((ROOT / "deploy").glob("compose*.yaml"))
COMMANDS = {"serve", "worker", "migrate", "admin"}
SETTING_NAMES = {s.env for s in SETTINGS}
# Variables the image itself reads (the healthcheck, Python's TLS) that are not settings.
OTHER_VARIABLES = {"SSL_CERT_FILE"}


def _documents(directory: Path) -> tuple[list[str], list[dict[str, Any]]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    resources = list(kustomization.get("resources") or [])
    problems = []
    docs: list[dict[str, Any]] = []
    on_disk = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    for name in sorted(on_disk - set(resources)):
        problems.append(f"{directory.name}/{name} is not listed in kustomization.yaml")
    for name in resources:
        path = directory / name
        if not path.exists():
            problems.append(f"{directory.name}/kustomization.yaml lists {name}, which does not exist")
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return problems, docs


def _variable_problems(where: str, names: list[str]) -> list[str]:
    problems = []
    for name in names:
        if name in OTHER_VARIABLES or not name.startswith("CROSSTALK_"):
            continue
        if name not in SETTING_NAMES and name.removesuffix("_FILE") not in SETTING_NAMES:
            problems.append(f"{where}: {name} is not a setting")
    return problems


def _probe_path(probe: dict[str, Any] | None) -> tuple[str | None, Any]:
    get = (probe or {}).get("httpGet") or {}
    return get.get("path"), get.get("port")


def check_directory(directory: Path) -> list[str]:
    problems, docs = _documents(directory)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    configs = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    for name, config in configs.items():
        problems += _variable_problems(f"ConfigMap {name}", list(config.get("data") or {}))
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
    if not workloads:
        problems.append(f"{directory.name}: no Deployment or StatefulSet")
    for name, workload in workloads.items():
        where = f"{workload['kind']} {name}"
        spec = workload["spec"]
        pod = spec["template"]
        labels = pod["metadata"].get("labels") or {}
        selector = spec["selector"].get("matchLabels") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{where}: selector {selector} does not match the pod labels {labels}")
        replicas = int(spec.get("replicas", 1))
        if workload["kind"] == "Deployment" and replicas > 1:
            rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
            if (spec.get("strategy") or {}).get("type", "RollingUpdate") != "RollingUpdate" or \
                    str(rolling.get("maxUnavailable", "25%")) not in ("0", "0%"):
                problems.append(f"{where}: a rolling update must keep every replica serving (maxUnavailable: 0)")
        mounted_secrets = {v["name"]: v["secret"]["secretName"] for v in pod["spec"].get("volumes") or []
                           if "secret" in v}
        for container in pod["spec"]["containers"]:
            cw = f"{where}, container {container['name']}"
            args = container.get("args") or container.get("command") or []
            if not args or args[0] not in COMMANDS:
                problems.append(f"{cw}: runs {args}, not a crosstalk command ({', '.join(sorted(COMMANDS))})")
            env = {e["name"]: e.get("value") for e in container.get("env") or []}
            problems += _variable_problems(cw, list(env))
            for ref in container.get("envFrom") or []:
                if "configMapRef" in ref and ref["configMapRef"]["name"] not in configs:
                    problems.append(f"{cw}: ConfigMap {ref['configMapRef']['name']} is not defined here")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
            for var, value in env.items():
                if not var.endswith("_FILE") or not value:
                    continue
                folder, _, key = value.rpartition("/")
                secret = secrets.get(mounted_secrets.get(mounts.get(folder, ""), ""))
                if secret is None:
                    problems.append(f"{cw}: {var} points at {value}, which is not in a mounted Secret")
                elif key not in (secret.get("stringData") or {}) and key not in (secret.get("data") or {}):
                    problems.append(f"{cw}: {var} wants key {key}, which Secret {secret['metadata']['name']} lacks")
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            for probe_name, wanted in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"),
                                       ("startupProbe", "/livez")):
                path, port = _probe_path(container.get(probe_name))
                if path != wanted:
                    problems.append(f"{cw}: {probe_name} should GET {wanted}, not {path}")
                elif port not in ports and port not in ports.values():
                    problems.append(f"{cw}: {probe_name} uses port {port}, which the container does not declare")
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
            drain = sum(int(configs[r["configMapRef"]["name"]].get("data", {}).get(
                "CROSSTALK_SHUTDOWN_GRACE_SECONDS", 0)) for r in container.get("envFrom") or []
                if "configMapRef" in r and r["configMapRef"]["name"] in configs)
            pause = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            pause_seconds = int(pause[1]) if len(pause) == 2 and pause[0] == "sleep" else 0
            if grace <= drain + pause_seconds:
                problems.append(f"{cw}: terminationGracePeriodSeconds {grace} leaves no time after the preStop "
                                f"pause ({pause_seconds}s) and the drain ({drain}s)")
    for name, service in by_kind.get("Service", {}).items():
        selector = service["spec"].get("selector") or {}
        targets = [w for w in workloads.values()
                   if all((w["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v
                          for k, v in selector.items())]
        if not targets:
            problems.append(f"Service {name}: its selector {selector} matches no workload")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for w in targets:
                declared = {p.get("name") for c in w["spec"]["template"]["spec"]["containers"]
                            for p in c.get("ports") or []}
                if isinstance(target, str) and target not in declared:
                    problems.append(f"Service {name}: targetPort {target} is not a port of {w['metadata']['name']}")
    return problems


def check_compose(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    problems = []
    for name, service in (doc.get("services") or {}).items():
        env = service.get("environment") or {}
        names = list(env) if isinstance(env, dict) else [str(e).split("=", 1)[0] for e in env]
        problems += _variable_problems(f"{path.name}, service {name}", names)
        if isinstance(env, dict) and env.get("CROSSTALK_DATABASE_URL") and not env.get("CROSSTALK_BUS_URL"):
            problems.append(f"{path.name}, service {name}: shares a PostgreSQL database but no bus "
                            "(streaming and cache invalidations would stay inside each process)")
    return problems


def main(argv: list[str]) -> int:
    directories = [Path(a) for a in argv[1:]] or DEFAULT_DIRECTORIES
    problems = []
    for directory in directories:
        found = check_directory(directory)
        problems += found
        print(f"{directory.relative_to(ROOT) if directory.is_relative_to(ROOT) else directory}: "
              f"{'ok' if not found else f'{len(found)} problems'}")
    if not argv[1:]:
        for path in COMPOSE_FILES:
            found = check_compose(path)
            problems += found
            print(f"{path.name}: {'ok' if not found else f'{len(found)} problems'}")
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
