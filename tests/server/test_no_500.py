"""Garbage in never gives a 500: every registered route, with junk parameters and bodies."""

from __future__ import annotations

import re

import requests

from server.app import create_app
from server.config import load_config

JUNK_VALUES = ["", "abc", "-1", "99999999999999999999999", "[]", "{}", "\x00", "💥" * 50, "1e309", "true"]
JUNK_JSON = [
    {"status": 5, "media_ids": "x", "limit": "abc", "visibility": ["public"], "poll": "x", "id": {"a": 1}},
    {"status": None, "in_reply_to_id": "not-a-number", "scopes": 7, "redirect_uris": {}, "domain": [1]},
    [1, 2, 3],
]


def routes() -> list[tuple[str, str]]:
    config = load_config(env={"CROSSTALK_DOMAIN": "example.test"})
    app = create_app(config)
    found = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if not path or path.endswith("/") and path != "/":
            continue
        for route in resource:
            if route.method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                found.add((route.method, path))
    return sorted(found)


def test_junk_never_gives_a_server_error(instance):
    instance.create_user("fuzz")
    token = instance.token("fuzz", "read write follow push")
    auth = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    failures = []
    all_routes = routes()
    assert len(all_routes) > 150, "the route table should hold the whole API"
    for method, path in all_routes:
        if "streaming" in path and method == "GET" and path.endswith("streaming"):
            continue  # the WebSocket endpoint has its own bad-input test
        for fill in ("1", "abc", "1" * 30):
            url = instance.base_url + re.sub(r"\{[^}]+\}", fill, path)
            attempts = [dict(params={k: v for k, v in zip(("limit", "max_id", "id[]", "q", "type"), JUNK_VALUES, strict=False)})]
            attempts += [dict(json=body) for body in JUNK_JSON]
            attempts += [dict(data={"status": "\x00", "limit": "-5", "media_ids[]": "zz", "choices[]": "x"})]
            attempts += [dict(data=b"\xff\xfe garbage", headers={"Content-Type": "application/json"})]
            for kwargs in attempts:
                headers = {**auth, **kwargs.pop("headers", {})}
                try:
                    r = session.request(method, url, headers=headers, timeout=10, **kwargs)
                except requests.RequestException as exc:
                    failures.append((method, url, repr(exc)))
                    continue
                if r.status_code >= 500:
                    failures.append((method, url, kwargs, r.status_code, r.text[:200]))
    assert not failures, failures[:20]
    assert "Traceback" not in instance.log_path.read_text()
