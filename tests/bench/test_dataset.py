"""The benchmark dataset generator makes a database the real server opens and serves (bench/ itself is
run with `python -m bench`, not under pytest)."""

from __future__ import annotations

import asyncio
import time

import requests

from bench.dataset import Spec, ensure, load
from tests.conftest import Instance

MICRO = Spec(users=40, follows=6, statuses=400, feed_depth=30, author_followers=25, token_users=12, templates=30)


def test_generated_dataset_is_served_by_a_real_instance(tmp_path):
    ds = asyncio.run(ensure(MICRO, tmp_path, log=lambda _: None))
    assert load(ds.path) is not None
    counts = ds.meta["counts"]
    assert counts["accounts"] == 40 and counts["statuses"] == 400
    assert counts["follows"] == 40 * 6 and ds.author["followers"] == 25
    assert 0 < counts["home_feed"] <= 40 * 30

    inst = Instance(ds.path, {}, sqlite=True)  # the dataset is a SQLite file
    inst.start()
    try:
        fan = next(t for t in ds.tokens if t["follows_author"])
        auth = {"Authorization": f"Bearer {fan['token']}"}
        page = requests.get(f"{inst.base_url}/api/v1/timelines/home", headers=auth, timeout=10).json()
        assert len(page) == 20
        ids = [int(s["id"]) for s in page]
        assert ids == sorted(ids, reverse=True)
        assert all((s["reblog"] or s)["account"]["username"] for s in page)

        me = requests.get(f"{inst.base_url}/api/v1/accounts/verify_credentials", timeout=10,
                          headers={"Authorization": f"Bearer {ds.author['token']}"}).json()
        assert me["username"] == "author" and me["followers_count"] == 25

        posted = requests.post(f"{inst.base_url}/api/v1/statuses", json={"status": "hello #bench"}, timeout=10,
                               headers={"Authorization": f"Bearer {ds.author['token']}"})
        assert posted.status_code == 200, posted.text
        for _ in range(100):  # fan-out runs off the request path
            top = requests.get(f"{inst.base_url}/api/v1/timelines/home?limit=1", headers=auth, timeout=10).json()
            if top and top[0]["id"] == posted.json()["id"]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the author's new post never reached a follower's home timeline")
    finally:
        inst.stop()
