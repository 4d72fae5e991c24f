"""What the read and memory scenarios request: ids drawn from the dataset file that the API must
answer with content (accounts with statuses, statuses in threads anyone may open), and the mix of
paths of the memory scenario."""

from __future__ import annotations

import random
import sqlite3

import pytest

from bench.dataset import Dataset
from bench.scenarios import _reads, account_statuses, memory, thread_context


def test_account_samples_are_local_accounts_with_statuses(micro: Dataset) -> None:
    ids = _reads.accounts_with_statuses(micro.db_path, random.Random(1))
    assert ids and len(set(ids)) == len(ids)
    with sqlite3.connect(micro.db_path) as conn:
        for account_id in ids:
            domain, count = conn.execute("SELECT domain, statuses_count FROM accounts WHERE id = ?",
                                         (account_id,)).fetchone()
            assert domain == "" and count > 0
    assert all(p.startswith("/api/v1/accounts/") and p.endswith("/statuses")
               for p in account_statuses.paths(micro.db_path, random.Random(1)))


def test_thread_samples_are_open_statuses_of_long_threads(micro: Dataset) -> None:
    ids = _reads.thread_members(micro.db_path, random.Random(1))
    assert ids
    with sqlite3.connect(micro.db_path) as conn:
        for status_id in ids:
            thread, visibility = conn.execute("SELECT thread_id, visibility FROM statuses WHERE id = ?",
                                              (status_id,)).fetchone()
            size = conn.execute("SELECT count(*) FROM statuses WHERE thread_id = ? AND reblog_of_id IS NULL",
                                (thread,)).fetchone()[0]
            assert visibility in ("public", "unlisted") and size >= 3
    assert len(thread_context.paths(micro.db_path, random.Random(1))) == len(ids)


def test_samples_are_capped_and_repeatable(micro: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reads, "SAMPLE", 5)
    first = _reads.thread_members(micro.db_path, random.Random(3))
    assert len(first) == 5 and first == _reads.thread_members(micro.db_path, random.Random(3))


def test_page_checks_refuse_what_a_client_could_not_show() -> None:
    status = {"id": "2", "account": {"id": "7", "username": "ann"}, "content": "<p>hi</p>", "favourited": False,
              "reblog": None}
    older = {**status, "id": "1"}
    assert _reads.check_page("/p", [status, older]) == 2
    with pytest.raises(RuntimeError, match="newest first"):
        _reads.check_page("/p", [older, status])
    with pytest.raises(RuntimeError, match="rendered"):
        _reads.check_page("/p", [{**status, "account": {"id": "7", "username": ""}}])
    assert account_statuses.check("/api/v1/accounts/7/statuses", [status]) == 1
    with pytest.raises(RuntimeError, match="another account"):
        account_statuses.check("/api/v1/accounts/8/statuses", [status])
    assert thread_context.check("/x", {"ancestors": [older], "descendants": [status]}) == 2
    with pytest.raises(RuntimeError, match="not a context"):
        thread_context.check("/x", [status])


def test_memory_mix_covers_every_kind_of_request(micro: Dataset) -> None:
    paths = memory.mixed_paths(micro.db_path, random.Random(1))
    kinds = {memory.kind(p) for p in paths}
    for expected in ("/api/v1/timelines/home", "/api/v1/timelines/home?max_id", "/api/v1/timelines/public?local",
                     "/api/v1/timelines/public?max_id", "/api/v1/accounts/N/statuses", "/api/v1/accounts/N",
                     "/api/v1/statuses/N/context", "/api/v1/notifications", "/api/v2/search?q,type"):
        assert expected in kinds
    assert paths.count("/api/v1/timelines/home") == 400  # the most frequent request of a client's day
    assert memory.kind("/api/v1/statuses/123/context?x=1&a=2") == "/api/v1/statuses/N/context?a,x"
