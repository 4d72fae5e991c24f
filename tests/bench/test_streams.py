"""The streaming scenarios' harness against a real instance: tokens minted into a dataset copy work,
and client connections spread over several processes all receive a post, merged into one answer."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
import requests

from bench import procs
from bench.dataset import DB_NAME, Dataset
from bench.scenarios._streams import (
    ClientGroup,
    descriptors_needed,
    local_accounts,
    local_followers,
    split,
    tokens_for,
)
from bench.scenarios.streaming_idle import check_limits
from tests.bench.conftest import MICRO
from tests.conftest import Instance


def test_connections_are_split_evenly_over_the_fewest_processes() -> None:
    assert split(10_000) == [2_500] * 4
    assert split(1_000) == [1_000]
    assert split(7, 3) == [3, 2, 2]
    assert split(0) == [0]
    assert descriptors_needed(10_000) == (10_200, 2_700)


def test_streams_are_refused_early_when_descriptors_run_short(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    with pytest.raises(RuntimeError, match=r"open-files limit of 10,200 .* it is 1,024"):
        check_limits(10_000)
    check_limits(500)  # within the limit


def test_open_files_limit_is_raised_never_lowered() -> None:
    import resource
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    now = procs.raise_open_files_limit(before)
    assert now >= before and resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= before
    assert procs.pinned(["x"], None) == ["x"]
    if procs.cpus() >= 2 and shutil.which("taskset"):
        assert procs.pinned(["x"], (0, 1)) == ["taskset", "-c", "0,1", "x"]
        assert procs.pinned(["x"], 1) == ["taskset", "-c", "1", "x"]


async def test_minted_tokens_stream_from_several_client_processes(micro: Dataset, tmp_path: Path) -> None:
    data_dir = tmp_path / "copy"
    data_dir.mkdir()
    shutil.copyfile(micro.db_path, data_dir / DB_NAME)
    db_path = data_dir / DB_NAME
    followers = local_followers(db_path, micro.author["id"])[:6]
    tokens = tokens_for(micro, db_path, followers)
    assert tokens_for(micro, db_path, followers) == tokens  # deterministic, no second row
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == \
            len(micro.tokens) + len(set(tokens) - {t["token"] for t in micro.tokens})
    assert set(tokens) - {t["token"] for t in micro.tokens}, "some of these followers need a minted token"

    inst = Instance(data_dir, {}, sqlite=True)  # the dataset is a SQLite file
    await asyncio.to_thread(inst.start)
    try:
        with sqlite3.connect(db_path) as conn:  # the server made its own actor: nobody signs in to it
            assert conn.execute("SELECT count(*) FROM accounts WHERE domain = ''").fetchone()[0] == MICRO.users + 1
        assert len(local_accounts(db_path)) == MICRO.users
        for account_id, token in zip(followers, tokens, strict=True):
            me = await asyncio.to_thread(requests.get, f"{inst.base_url}/api/v1/accounts/verify_credentials",
                                         timeout=10, headers={"Authorization": f"Bearer {token}"})
            assert me.json()["id"] == str(account_id)
        (tmp_path / "work").mkdir()
        group = ClientGroup(inst.base_url, tokens, tmp_path / "work", max_seconds=60, per_process=4)
        try:
            ready = await group.start(limit_s=60)
            assert (ready["connected"], ready["failed"], ready["processes"]) == (6, 0, 2)
            posted = await asyncio.to_thread(
                requests.post, f"{inst.base_url}/api/v1/statuses", json={"status": "to every stream"}, timeout=10,
                headers={"Authorization": f"Bearer {micro.author['token']}"})
            status_id = posted.json()["id"]
            await asyncio.sleep(2.0)  # the clients report at the end: give the events time to arrive
            result = await group.finish(limit_s=30)
        finally:
            await group.kill()
    finally:
        inst.stop()
    assert len(result["receipts"][status_id]) == 6
    assert result["closed_early"] == 0 and result["per_connection"] == [1] * 6
