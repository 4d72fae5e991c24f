"""The deployment files parse and keep their rules (deploy/check_manifests.py, deploy/check_compose.py);
the checker itself catches the mistakes it exists for. deploy/check.sh adds schema validation,
yamllint, hadolint and a Docker run on machines that have those tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(DEPLOY))

import check_compose  # noqa: E402
import check_manifests  # noqa: E402

SCALE = DEPLOY / "compose.scale.yaml"
POSTGRES_K8S = DEPLOY / "kubernetes" / "postgres"


def test_every_deployment_file_parses_and_passes_the_checks():
    for path in [*DEPLOY.glob("compose*.yaml"), *DEPLOY.glob("kubernetes/**/*.yaml")]:
        assert list(yaml.safe_load_all(path.read_text())), path
    result = subprocess.run([sys.executable, str(DEPLOY / "check_manifests.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in DEPLOY.glob("compose*.yaml"):
        assert check_compose.problems(path) == [], path


def test_the_scaled_compose_file_runs_two_web_processes_a_worker_and_a_load_balancer():
    services = yaml.safe_load(SCALE.read_text())["services"]
    commands = [s.get("command") for s in services.values()]
    assert commands.count(["serve", "--no-workers"]) == 2 and commands.count(["worker"]) == 1
    assert {"postgres", "redis", "lb"} <= set(services)
    web = [name for name, s in services.items() if s.get("command") == ["serve", "--no-workers"]]
    caddyfile = (DEPLOY / "scale" / "Caddyfile").read_text()
    assert all(f"{name}:8080" in caddyfile for name in web) and "health_uri /readyz" in caddyfile
    for name in [*web, "worker"]:
        env = services[name]["environment"]
        assert env["CROSSTALK_DATABASE_URL"].startswith("postgresql://") and env["CROSSTALK_BUS_URL"]
        assert services[name]["healthcheck"]["test"][-1] == "server.healthcheck"  # /readyz: database and bus
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}


def test_the_postgres_manifests_run_web_and_worker_deployments_that_roll_without_downtime():
    _, docs = check_manifests._documents(POSTGRES_K8S)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    web, worker = deployments["crosstalk-web"], deployments["crosstalk-worker"]
    assert web["spec"]["replicas"] >= 2 and worker["spec"]["replicas"] >= 1
    assert web["spec"]["template"]["spec"]["containers"][0]["args"] == ["serve", "--no-workers"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]
    for d in (web, worker):
        env = {e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert {"CROSSTALK_DATABASE_URL_FILE", "CROSSTALK_BUS_URL_FILE"} <= env
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "web"


def _broken_copy(tmp_path: Path, edit) -> Path:
    copy = tmp_path / "postgres"
    shutil.copytree(POSTGRES_K8S, copy)
    edit(copy)
    return copy


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: (d / "web.yaml").write_text((d / "web.yaml").read_text().replace("maxUnavailable: 0",
                                                                                "maxUnavailable: 1")),
     "maxUnavailable: 0"),
    (lambda d: (d / "web.yaml").write_text((d / "web.yaml").read_text().replace("path: /readyz", "path: /livez")),
     "readinessProbe should GET /readyz"),
    (lambda d: (d / "configmap.yaml").write_text((d / "configmap.yaml").read_text().replace(
        "CROSSTALK_DATABASE_POOL_SIZE", "CROSSTALK_DATABASE_POOLSIZE")), "CROSSTALK_DATABASE_POOLSIZE is not a setting"),
    (lambda d: (d / "secret.yaml").write_text((d / "secret.yaml").read_text().replace("bus-url:", "bus_url:")),
     "wants key bus-url"),
    (lambda d: (d / "service.yaml").write_text((d / "service.yaml").read_text().replace("component: web",
                                                                                        "component: api")),
     "matches no workload"),
    (lambda d: (d / "extra.yaml").write_text("kind: ConfigMap\n"), "extra.yaml is not listed"),
    (lambda d: (d / "worker.yaml").write_text((d / "worker.yaml").read_text().replace(
        'args: ["worker"]', 'args: ["wroker"]')), "not a crosstalk command"),
])
def test_the_checker_catches_what_it_is_for(tmp_path, edit, expected):
    problems = check_manifests.check_directory(_broken_copy(tmp_path, edit))
    assert any(expected in p for p in problems), problems


def test_the_compose_check_wants_a_bus_wherever_processes_share_postgres(tmp_path):
    doc = yaml.safe_load(SCALE.read_text())
    del doc["x-crosstalk"]["environment"]["CROSSTALK_BUS_URL"]
    broken = tmp_path / "compose.scale.yaml"
    broken.write_text(yaml.safe_dump(doc))
    assert any("no bus" in p for p in check_manifests.check_compose(broken))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (deploy/check.sh builds "
                    "the kustomizations where it is)")
def test_the_kustomizations_build():
    for directory in (DEPLOY / "kubernetes", POSTGRES_K8S):
        result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
        assert "Service" in kinds and ("Deployment" in kinds or "StatefulSet" in kinds)


def test_the_scaled_instance_is_addressed_where_its_load_balancer_is_published():
    from tests.ops.test_compose_scale_topology import load_compose, service_environment

    for env, domain in [({}, "localhost:8080"), ({"CROSSTALK_PUBLISH_PORT": "9090"}, "localhost:9090"),
                        ({"CROSSTALK_PUBLISH_PORT": "9090", "CROSSTALK_DOMAIN": "social.example.org"},
                         "social.example.org")]:
        services = load_compose(SCALE, env)["services"]
        assert services["lb"]["ports"] == [f"127.0.0.1:{env.get('CROSSTALK_PUBLISH_PORT', '8080')}:80"]
        for name in ("web-1", "web-2", "worker"):
            assert service_environment(services[name])["CROSSTALK_DOMAIN"] == domain
