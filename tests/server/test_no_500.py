"""Garbage in never gives a 500: every registered route, with junk parameters and bodies."""

from __future__ import annotations

import re

import requests

from server.app import create_app
from server.settings import load_settings

JUNK_VALUES = ["", "abc", "-1", "99999999999999999999999", "[]", "{}", "\x00", "💥" * 50, "1e309", "true"]
JUNK_JSON = [
    {"status": 5, "media_ids": "x", "limit": "abc", "visibility": ["public"], "poll": "x", "id": {"a": 1}},
    {"status": None, "in_reply_to_id": "not-a-number", "scopes": 7, "redirect_uris": {}, "domain": [1]},
    [1, 2, 3],
]


def routes() -> list[tuple[str, str]]:
    settings = load_settings(env={"CROSSTALK_DOMAIN": "example.test"})
    app = create_app(settings)
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


ID_PLACEHOLDER = re.compile(r"\{(id|account_id|list_id)\}")
NOT_OUR_IDS = ["9223372036854775808", "%C2%B2", "99999999999999999999"]  # overflow, "²", too long


def test_ids_that_cannot_be_ours_are_not_found_on_every_route(instance):
    """Ids are parsed in one place: an id that overflows 64 bits or is a Unicode digit that
    str.isdigit() accepts is a 404 on every route (as in Mastodon), and a 422 as a parameter."""
    instance.create_user("prober", admin=True)
    auth = {"Authorization": f"Bearer {instance.token('prober', 'read write follow push admin:read admin:write')}"}
    session = requests.Session()
    id_routes = [(m, p) for m, p in routes() if p.startswith("/api/") and ID_PLACEHOLDER.search(p)]
    assert len(id_routes) > 60
    wrong = []
    for method, path in id_routes:
        for bad in NOT_OUR_IDS:
            url = instance.base_url + ID_PLACEHOLDER.sub(bad, re.sub(r"\{name\}", "x", path))
            r = session.request(method, url, headers=auth, json={"scheduled_at": "2099-01-01T00:00:00Z"}, timeout=10)
            if r.status_code != 404 or "error" not in r.json():
                wrong.append((method, path, bad, r.status_code, r.text[:100]))
    assert not wrong, wrong[:20]

    for bad in NOT_OUR_IDS:
        raw = requests.utils.unquote(bad)
        for method, path, body in [
            ("GET", "/api/v1/timelines/public", {"params": {"max_id": raw}}),
            ("GET", "/api/v1/notifications", {"params": {"since_id": raw}}),
            ("POST", "/api/v1/statuses", {"json": {"status": "hi", "in_reply_to_id": raw}}),
            ("POST", "/api/v1/statuses", {"data": {"status": "hi", "media_ids[]": raw}}),
            ("GET", "/api/v1/polls/1", {}),
            ("POST", "/api/v1/markers", {"json": {"home": {"last_read_id": raw}}}),
        ]:
            r = session.request(method, instance.base_url + path, headers=auth, timeout=10, **body)
            assert r.status_code in (404, 422), (method, path, raw, r.status_code, r.text)
            assert "error" in r.json()
    assert "Traceback" not in instance.log_path.read_text()
