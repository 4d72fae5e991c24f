"""A tiny benchmark dataset, generated once per module, for the tests of what reads from datasets."""

from __future__ import annotations

import asyncio

import pytest

from bench.dataset import Dataset, Spec, ensure

MICRO = Spec(users=40, follows=6, statuses=400, feed_depth=30, author_followers=25, token_users=12, templates=30)


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return asyncio.run(ensure(MICRO, tmp_path_factory.mktemp("datasets"), log=lambda _: None))
