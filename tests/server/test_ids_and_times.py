"""Ids and timestamps as clients and peers read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from server.ids import id_for_time, iso, new_id, parse_iso


def test_timestamps_are_rfc_3339_in_utc_with_milliseconds() -> None:
    assert iso(datetime(2026, 12, 4, 7, 5, 9, 678901, tzinfo=UTC)) == "2026-12-04T07:05:09.678Z"
    assert iso(datetime(2026, 1, 1, 1, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2)))) == "2025-12-31T23:00:00.005Z"
    assert iso(datetime(5, 3, 1, tzinfo=UTC)) == "0005-03-01T00:00:00.000Z"  # four-digit years, always
    now = datetime.now(UTC)
    assert abs(parse_iso(iso(now)) - now) < timedelta(milliseconds=1)


def test_ids_for_a_past_moment_sort_by_that_moment_and_differ() -> None:
    at_ms = 1_700_000_000_000
    ids = {new_id(at_ms) for _ in range(200)}
    assert len(ids) > 190  # 16 random bits each: a clash or two at most, which the database refuses
    assert all(id_for_time(at_ms / 1000) <= i < id_for_time((at_ms + 1) / 1000) for i in ids)
    assert new_id() > max(ids)
