"""The route table: every API path answers with and without a trailing slash, each spelling of a path
is one resource holding all its methods, and the paths as written come before their other spellings
(aiohttp tries the resources under a fixed prefix in the order they were added, one regular
expression each)."""

from __future__ import annotations

import requests

from server.app import create_app
from server.settings import load_settings


def test_a_path_is_one_resource_and_its_other_spelling_comes_after_the_paths_as_written() -> None:
    app = create_app(load_settings(env={"CROSSTALK_DOMAIN": "example.test"}))
    canonical = [resource.canonical for resource in app.router.resources()]
    assert len(canonical) == len(set(canonical)), "a path registered as several resources"
    statuses = [c for c in canonical if c.startswith("/api/v1/statuses/{id}")]
    written = [c for c in statuses if not c.endswith("/")]
    assert statuses.index("/api/v1/statuses/{id}/context") < 6
    assert statuses[:len(written)] == written  # every other spelling after them
    assert {c.rstrip("/") for c in statuses[len(written):]} == set(written)


def test_every_method_of_a_path_answers_on_both_spellings(instance) -> None:
    instance.create_user("ann")
    auth = {"Authorization": f"Bearer {instance.token('ann')}"}
    base = instance.base_url

    def post(text: str) -> str:
        answer = requests.post(f"{base}/api/v1/statuses", json={"status": text}, headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    first, second = post("one"), post("two")
    for slash in ("", "/"):
        context = requests.get(f"{base}/api/v1/statuses/{first}/context{slash}", headers=auth, timeout=10)
        assert context.status_code == 200 and context.json() == {"ancestors": [], "descendants": []}
        shown = requests.get(f"{base}/api/v1/statuses/{first}{slash}", headers=auth, timeout=10)
        assert shown.status_code == 200 and shown.json()["id"] == first
        edited = requests.put(f"{base}/api/v1/statuses/{first}{slash}", json={"status": f"edited{slash}"},
                              headers=auth, timeout=10)
        assert edited.status_code == 200 and f"edited{slash}" in edited.json()["content"]
    gone = requests.delete(f"{base}/api/v1/statuses/{second}/", headers=auth, timeout=10)
    assert gone.status_code == 200
    assert requests.get(f"{base}/api/v1/statuses/{second}", headers=auth, timeout=10).status_code == 404
    refused = requests.post(f"{base}/api/v1/statuses/{first}/context/", headers=auth, timeout=10)
    assert refused.status_code == 405 and "GET" in refused.headers["Allow"]
