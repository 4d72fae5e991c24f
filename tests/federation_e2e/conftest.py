"""Several real instances federating over loopback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

FED_ENV = {
    "CROSSTALK_FEDERATION_ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
    "CROSSTALK_FEDERATION_RETRY_SCALE": "0.02",
}


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@pytest.fixture
def pair(make_instance):
    """Two federating instances with alice on A and bob on B."""
    a = make_instance("a", env=dict(FED_ENV))
    b = make_instance("b", env=dict(FED_ENV))
    a.create_user("alice")
    b.create_user("bob")
    return a, b
