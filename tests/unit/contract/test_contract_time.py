"""Timestamps: one format written everywhere, exact milliseconds, agent liveness from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from qgjob_contract.events import format_timestamp, timestamp_ms, utc_now
from qgjob_contract.records import Batch, BatchJob, Lease, is_alive

NOW = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


def test_format_is_utc_with_milliseconds_and_naive_means_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 29, 11, 0, 1, 250_999, tzinfo=plus_one)
    assert format_timestamp(moment) == "2026-11-29T10:00:01.250+00:00"
    assert format_timestamp(moment.replace(tzinfo=None)) == "2026-11-29T11:00:01.250+00:00"
    assert utc_now().endswith("+00:00")
    assert len(utc_now()) == len("2026-11-29T10:00:01.250+00:00")


def test_timestamp_ms_is_exact_and_naive_means_utc() -> None:
    assert timestamp_ms("1970-01-01T00:00:01.500+00:00") == 1500
    assert timestamp_ms("1970-01-01T00:00:01.500") == 1500
    assert timestamp_ms("1970-01-01T01:00:00.000+01:00") == 0
    assert timestamp_ms("2025-11-29T10:00:00.001+00:00") == 1_764_410_400_001
    assert timestamp_ms(format_timestamp(NOW)) == int(NOW.timestamp()) * 1000


def test_timestamp_ms_refuses_what_is_not_a_timestamp() -> None:
    with pytest.raises(ValueError, match="yesterday"):
        timestamp_ms("yesterday")


def test_an_agent_is_alive_only_while_its_lease_is_within_the_timeout_on_redis_time() -> None:
    now_ms = 1_800_000_000_000
    lease = Lease("emu-1", "i1", renewed_ms=now_ms - 10_000, started_ms=now_ms - 60_000)
    assert is_alive(lease, now_ms, 10)
    assert not is_alive(lease, now_ms + 1, 10)
    assert not is_alive(None, now_ms, 10)


def test_a_lease_reads_back_from_its_hash_and_an_empty_one_is_none() -> None:
    raw = {"instance_id": "i1", "renewed_ms": "5", "started_ms": "3", "previous_instance_id": ""}
    assert Lease.from_redis("emu-1", raw) == Lease("emu-1", "i1", 5, 3)
    assert Lease.from_redis("emu-1", {}) is None


def test_batch_reads_back_from_its_redis_hash() -> None:
    batch = Batch("b1", "emu-1", "emulator", "v1", format_timestamp(NOW), [])
    batch.jobs.append(BatchJob("j1", "qualgent", "tests/a.spec.js", 2))
    stored = {
        "batch_id": "b1",
        "agent_id": "emu-1",
        "target": "emulator",
        "app_version_id": "v1",
        "created_at": batch.created_at,
        "jobs": '[{"job_id":"j1","org_id":"qualgent","test_path":"tests/a.spec.js","priority":2}]',
    }
    assert Batch.from_redis(stored) == batch
    assert Batch.from_redis({k.encode(): v.encode() for k, v in stored.items()}) == batch
