"""Records survive the trip through Redis' string-only hashes; transitions are one-way."""

from __future__ import annotations

import pytest

from qgjob_contract.events import JobResult
from qgjob_contract.records import Agent, Batch, BatchJob, Job
from qgjob_contract.statuses import FINAL_STATUSES, JobStatus, can_transition, is_final


def _job(**overrides: object) -> Job:
    fields: dict[str, object] = {
        "job_id": "j1",
        "org_id": "qualgent",
        "app_version_id": "xyz123",
        "test_path": "tests/onboarding.spec.js",
        "priority": 2,
        "target": "emulator",
        "created_at": "2026-11-29T10:00:00.000+00:00",
    }
    fields.update(overrides)
    return Job(**fields)  # type: ignore[arg-type]


def test_new_job_round_trips_through_redis_encoding() -> None:
    job = _job()
    assert Job.from_redis(job.to_redis()) == job
    assert all(isinstance(v, str) for v in job.to_redis().values())


def test_finished_job_round_trips_from_bytes() -> None:
    result = JobResult(
        outcome="passed",
        duration_s=1.5,
        install_paid=True,
        install_s=3.0,
        log_tail="ok",
        driver="simulator",
        simulated=True,
    )
    job = _job(
        status="passed", assigned_agent="emulator-a", batch_id="b1", attempts=1, result=result
    )
    as_bytes = {k.encode(): v.encode() for k, v in job.to_redis().items()}
    assert Job.from_redis(as_bytes) == job
    assert job.to_api()["final"] is True
    assert _job().to_api()["final"] is False


def test_agent_and_batch_round_trip() -> None:
    agent = Agent(agent_id="a", target="device", state="idle", installs=2, jobs_run=5)
    assert Agent.from_redis(agent.to_redis()) == agent
    batch = Batch("b", "a", "device", "v1", "t", [BatchJob("j", "o", "tests/x.js", 1)])
    assert Batch.from_json(batch.to_json()) == batch
    assert batch.force_install is False
    forced = Batch("b", "a", "device", "v1", "t", [], force_install=True)
    assert Batch.from_json(forced.to_json()).force_install is True


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("queued", "assigned", True),
        ("assigned", "running", True),
        ("running", "passed", True),
        ("running", "failed", True),
        ("assigned", "error", True),
        ("queued", "running", False),
        ("queued", "passed", False),
        ("running", "running", False),
        ("passed", "failed", False),
        ("error", "queued", False),
        ("running", "bogus", False),
    ],
)
def test_transitions(current: str, new: str, allowed: bool) -> None:
    assert can_transition(current, new) is allowed


def test_final_statuses_are_never_left() -> None:
    for final in FINAL_STATUSES:
        assert is_final(final)
        assert not any(can_transition(final, s) for s in JobStatus)
