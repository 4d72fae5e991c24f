"""Health endpoints, Prometheus metrics, request ids and structured logs, against real instances."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port
from tests.server.test_media import png


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def log_lines(instance, deadline: float = 5.0) -> list[dict]:
    """The instance's log as JSON objects; every line must be one."""
    time.sleep(0.05)
    return [json.loads(line) for line in instance.log_path.read_text().splitlines() if line.strip()]


def test_livez_readyz_and_request_ids(make_instance):
    inst = make_instance("health")
    live = requests.get(f"{inst.base_url}/livez", timeout=5)
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = requests.get(f"{inst.base_url}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "workers": "ok",
                                                       "bus": "ok"}}

    # Every kind of answer carries a request id: JSON API errors, aiohttp's own pages, CORS
    # preflights, redirects and successful calls.
    answers = [
        requests.get(f"{inst.base_url}/api/v1/statuses/1", timeout=5),
        requests.get(f"{inst.base_url}/no/such/page", timeout=5),
        requests.options(f"{inst.base_url}/api/v1/instance", timeout=5),
        requests.get(f"{inst.base_url}/api/v2/instance", timeout=5),
        requests.post(f"{inst.base_url}/api/v1/statuses", data={"status": "x"}, timeout=5),
        requests.put(f"{inst.base_url}/livez", timeout=5),
    ]
    assert [a.status_code for a in answers] == [404, 404, 204, 200, 401, 405]
    ids = [a.headers.get("X-Request-Id") for a in answers]
    assert all(ids) and len(set(ids)) == len(ids), ids

    # A sane incoming id is kept (so a proxy's id follows the request); anything else is replaced.
    kept = requests.get(f"{inst.base_url}/livez", headers={"X-Request-Id": "edge-42.a"}, timeout=5)
    assert kept.headers["X-Request-Id"] == "edge-42.a"
    replaced = requests.get(f"{inst.base_url}/livez", headers={"X-Request-Id": "x" * 200}, timeout=5)
    assert len(replaced.headers["X-Request-Id"]) == 32

    # Upload routes take a larger body limit (the request is copied for it): the id is kept there too.
    inst.create_user("uploader")
    uploaded = requests.post(f"{inst.base_url}/api/v2/media", files={"file": ("a.png", png(), "image/png")},
                             headers={"Authorization": f"Bearer {inst.token('uploader')}",
                                      "X-Request-Id": "upload-7"}, timeout=30)
    assert uploaded.status_code in (200, 202), uploaded.text
    assert uploaded.headers["X-Request-Id"] == "upload-7"


def test_json_logs_have_one_object_per_line_with_request_fields(make_instance):
    inst = make_instance("jsonlog", env={"CROSSTALK_LOG_FORMAT": "json", "CROSSTALK_LOG_LEVEL": "info"})
    inst.create_user("alice")
    api = inst.api("alice")
    post = api.status_post("logged")
    requests.get(f"{inst.base_url}/api/v1/statuses/{post['id']}", headers={"X-Request-Id": "trace-1"}, timeout=5)
    requests.get(f"{inst.base_url}/api/v1/statuses/999", headers={"X-Request-Id": "trace-2"}, timeout=5)

    lines = log_lines(inst)
    started = [x for x in lines if x.get("event", "").endswith("started")]
    assert started, lines
    assert started[0]["domain"] == inst.domain and started[0]["federation_mode"] == "allowlist"
    assert started[0]["data_dir"] == str(inst.data_dir.resolve()) and started[0]["version"]

    by_id = {x.get("request_id"): x for x in lines if x.get("event") == "request"}
    ok, missing = by_id["trace-1"], by_id["trace-2"]
    for line in (ok, missing):
        assert set(line) >= {"time", "level", "event", "request_id", "route", "status", "duration_ms",
                             "method", "path", "remote_addr", "remote_domain"}
        assert line["route"] == "/api/v1/statuses/{id}" and line["level"] == "info"
        assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
        assert line["time"].endswith("Z")
    assert ok["status"] == 200 and missing["status"] == 404
    assert ok["path"] == f"/api/v1/statuses/{post['id']}"
    posted = [x for x in lines if x.get("event") == "request" and x["method"] == "POST"
              and x["route"] == "/api/v1/statuses"]
    assert posted and posted[0]["status"] == 200
    # Probes are logged at debug level only.
    requests.get(f"{inst.base_url}/readyz", headers={"X-Request-Id": "probe-1"}, timeout=5)
    assert not [x for x in log_lines(inst) if x.get("request_id") == "probe-1"]


def test_text_logs_are_readable_and_carry_the_request_id(make_instance):
    inst = make_instance("textlog", env={"CROSSTALK_LOG_LEVEL": "info"})
    requests.get(f"{inst.base_url}/api/v1/accounts/12", headers={"X-Request-Id": "txt-9"}, timeout=5)
    time.sleep(0.05)
    text = inst.log_path.read_text()
    line = next(x for x in text.splitlines() if "request_id=txt-9" in x)
    assert " INFO crosstalk.access: request " in line
    assert "route=/api/v1/accounts/{id}" in line and "status=404" in line and "duration_ms=" in line
    assert "crosstalk" in text and f"domain={inst.domain}" in text


def test_metrics_count_requests_database_and_gauges(make_instance):
    inst = make_instance("metrics")
    inst.create_user("alice")
    api = inst.api("alice")
    post = api.status_post("measured")
    for _ in range(3):
        api.status(post["id"])
    scrape = requests.get(f"{inst.base_url}/metrics", timeout=5)
    assert scrape.status_code == 200
    assert scrape.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(scrape.text)

    route = "/api/v1/statuses/{id}"
    assert value(found, "crosstalk_http_requests_total", method="GET", route=route, status="200") == 3
    assert value(found, "crosstalk_http_requests_total", method="POST", route="/api/v1/statuses", status="200") == 1
    assert value(found, "crosstalk_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value(found, "crosstalk_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") == 3
    assert value(found, "crosstalk_http_request_duration_seconds_sum", method="GET", route=route) > 0
    assert value(found, "crosstalk_db_query_duration_seconds_count", kind="read") > 3
    assert value(found, "crosstalk_db_query_duration_seconds_count", kind="transaction") >= 1
    assert value(found, "crosstalk_streaming_connections") == 0
    assert value(found, "crosstalk_delivery_queue_depth") is not None
    ready = requests.get(f"{inst.base_url}/readyz", timeout=5).json()
    assert ready["checks"]["workers"] == "ok" and value(found, "crosstalk_workers_running") is not None
    assert value(found, "crosstalk_http_requests_in_flight") == 1  # this scrape
    assert ("crosstalk_build_info" in {k[0] for k in found})
    assert any(k[0] == "process_resident_memory_bytes" for k in found)
    for name in ("crosstalk_inbox_activities", "crosstalk_deliveries", "crosstalk_signature_failures"):
        assert re.search(rf"^# TYPE {name}(_total)? counter$", scrape.text, re.M), name
    # Through a reverse proxy on the same machine the peer address is local: still refused.
    for header in ("X-Forwarded-For", "Forwarded"):
        proxied = requests.get(f"{inst.base_url}/metrics", headers={header: "203.0.113.9"}, timeout=5)
        assert proxied.status_code == 403
    # Unknown paths share one label value instead of one per URL.
    requests.get(f"{inst.base_url}/random/{time.time()}", timeout=5)
    found = samples(requests.get(f"{inst.base_url}/metrics", timeout=5).text)
    assert value(found, "crosstalk_http_requests_total", method="GET", route="unmatched", status="404") == 1


def test_metrics_are_restricted_by_address_and_proxy_headers(make_instance):
    closed = make_instance("closed", env={"CROSSTALK_METRICS_ALLOWED_ADDRESSES": "10.0.0.0/8"})
    answer = requests.get(f"{closed.base_url}/metrics", timeout=5)
    assert answer.status_code == 403 and "error" in answer.json()

    off = make_instance("off", env={"CROSSTALK_METRICS_ENABLED": "false"})
    assert requests.get(f"{off.base_url}/metrics", timeout=5).status_code == 404


def test_metrics_on_a_separate_port(make_instance):
    port = free_port()
    inst = make_instance("sep", env={"CROSSTALK_METRICS_PORT": str(port)})
    assert requests.get(f"{inst.base_url}/metrics", timeout=5).status_code == 404
    scrape = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert scrape.status_code == 200 and "crosstalk_http_requests_total" in scrape.text
    assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()["status"] == "ok"
    assert requests.get(f"http://127.0.0.1:{port}/livez", timeout=5).status_code == 200


def run_serve(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CROSSTALK_")}
    port = free_port()
    base.update({"CROSSTALK_PORT": str(port), "CROSSTALK_DATA_DIR": str(tmp_path / "data")})
    base.update(env)
    return subprocess.run([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "setting domain (CROSSTALK_DOMAIN): is required"),
    ({"CROSSTALK_DOMAIN": "social.example.test", "CROSSTALK_SCHEME": "http"},
     "http is only allowed with development = true"),
    ({"CROSSTALK_DOMAIN": "https://social.example.test"}, "must be a host name"),
    ({"CROSSTALK_DOMAIN": "social.example.test", "CROSSTALK_SHUTDOWN_GRACE_SECONDS": "0"}, "must be a positive"),
    ({"CROSSTALK_DOMAIN": "social.example.test", "CROSSTALK_FEDERATION_MODE": "open"}, "must be one of"),
])
def test_refuses_to_start_with_a_clear_message(tmp_path, env, message):
    result = run_serve(tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert "configuration error" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_an_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_serve(tmp_path, CROSSTALK_DOMAIN="social.example.test",
                       CROSSTALK_DATA_DIR=str(blocker / "data"))
    assert result.returncode == 2
    assert "setting data_dir (CROSSTALK_DATA_DIR)" in result.stderr and "not writable" in result.stderr


def test_processes_sharing_a_data_dir_all_pass_its_check_when_they_start_together(tmp_path):
    """Web processes and a worker on one volume start at once (compose.scale.yaml); each one's write
    check must not trip over another's."""
    from concurrent.futures import ThreadPoolExecutor

    from server.cli import _check_data_dir
    from server.settings import Settings

    settings = Settings(domain="social.example.test", data_dir=str(tmp_path / "shared"))

    def start_many(_: int) -> None:
        for _ in range(300):
            _check_data_dir(settings)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start_many, range(8)))
    assert list((tmp_path / "shared").iterdir()) == []


def test_request_and_database_timings_expose_as_prometheus_histograms():
    """What every request and every query observes is counted without prometheus_client's locks
    (server/metrics.py) and still exposed as its histograms are: a bucket counts what is at most its
    bound, buckets are cumulative, and a route's statuses add up to its latency series."""
    from server import metrics

    route = "/test/metrics-buckets"
    for status, seconds in ((200, 0.001), (200, 0.0011), (404, 40.0)):
        metrics.observe_request("GET", route, status, time.perf_counter() - seconds)
    reads_before = value(samples(metrics.exposition().decode()), "crosstalk_db_query_duration_seconds_count",
                         kind="read") or 0
    metrics.DB_READ.observe(0.0001)  # exactly a bound
    found = samples(metrics.exposition().decode())
    assert value(found, "crosstalk_http_requests_total", method="GET", route=route, status="200") == 2
    assert value(found, "crosstalk_http_requests_total", method="GET", route=route, status="404") == 1
    bucket = "crosstalk_http_request_duration_seconds_bucket"
    assert value(found, bucket, method="GET", route=route, le="0.001") == 0  # 1 ms and a little more
    assert value(found, bucket, method="GET", route=route, le="0.0025") == 2
    assert value(found, bucket, method="GET", route=route, le="30.0") == 2
    assert value(found, bucket, method="GET", route=route, le="+Inf") == 3
    assert value(found, "crosstalk_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value(found, "crosstalk_http_request_duration_seconds_sum", method="GET", route=route) > 40.0
    assert value(found, "crosstalk_db_query_duration_seconds_count", kind="read") == reads_before + 1
    assert value(found, "crosstalk_db_query_duration_seconds_bucket", kind="read", le="0.0001") >= 1
