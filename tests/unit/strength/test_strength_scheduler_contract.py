"""Checks found missing by `make mutation` in modules whose own test folders belong to the
fault-tolerance rework (tests/unit/{contract,scheduler}): the status table's `running ->
queued`, the exact result of an unreported job, batch ids compared by value, and the
policy's values being immutable. To be moved next to the other tests of each module.
"""

from __future__ import annotations

import dataclasses

import pytest

from qgjob_contract.records import Job
from qgjob_contract.statuses import FINAL_STATUSES, ErrorReason, JobStatus, can_transition
from qgjob_scheduler.policy import Assignment, FreeAgent, PendingGroup, assign
from qgjob_scheduler.transitions import Verdict, decide, end_unreported, not_reported_result


def _job(status: JobStatus, batch_id: str) -> Job:
    return Job(
        job_id="j1",
        org_id="qualgent",
        app_version_id="xyz123",
        test_path="tests/a.spec.js",
        priority=1,
        target="emulator",
        created_at="2026-11-29T10:00:00.000+00:00",
        status=status.value,
        assigned_agent="agent-1",
        batch_id=batch_id,
    )


def test_a_running_job_may_go_back_to_queued_for_a_lease_requeue() -> None:
    # statuses.py keeps `running -> queued` open for leases (its comment says so).
    assert can_transition(JobStatus.RUNNING, JobStatus.QUEUED)
    assert can_transition(JobStatus.ASSIGNED, JobStatus.QUEUED)
    assert not can_transition(JobStatus.QUEUED, JobStatus.QUEUED)


@pytest.mark.parametrize("current", [JobStatus.ASSIGNED, JobStatus.RUNNING])
def test_the_whole_transition_table_from_assigned_and_running(current: JobStatus) -> None:
    allowed = {new for new in JobStatus if can_transition(current, new)}
    expected = set(FINAL_STATUSES) | {JobStatus.QUEUED}
    if current is JobStatus.ASSIGNED:
        expected.add(JobStatus.RUNNING)
    assert allowed == expected


def test_batch_ids_are_compared_by_value_not_identity() -> None:
    # Ids read from Redis are new string objects: equal, never the same object.
    stored = "".join(["batch-", "1"])
    reported = "-".join(["batch", "1"])
    assert stored == reported
    assert stored is not reported
    assert decide(_job(JobStatus.RUNNING, stored), reported, JobStatus.PASSED) is Verdict.APPLY


def test_an_unreported_job_ends_error_with_an_exact_empty_result() -> None:
    result = not_reported_result("b1", "agent-1")
    assert result == {
        "outcome": JobStatus.ERROR,
        "duration_s": 0.0,
        "install_paid": False,
        "install_s": 0.0,
        "log_tail": "batch b1 ended on agent agent-1 without a report for this job",
        "driver": "",
        "simulated": False,
        "reason": ErrorReason.NOT_REPORTED.value,
    }
    ended = end_unreported(_job(JobStatus.RUNNING, "b1"), "b1", "agent-1", "2026-11-29T10:01:00")
    assert ended is not None
    assert ended.result == result
    assert (ended.status, ended.finished_at) == ("error", "2026-11-29T10:01:00")


@pytest.mark.parametrize(
    "value",
    [
        FreeAgent("a1", None),
        PendingGroup("v1", 3, 1.0),
        Assignment("a1", "v1", 3),
    ],
)
def test_policy_values_are_immutable_and_hashable(value: object) -> None:
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, "changed")
    assert hash(value) == hash(dataclasses.replace(value))  # type: ignore[type-var]


@pytest.mark.parametrize("size", [0, -3])
def test_a_group_without_jobs_is_never_assigned_even_to_an_agent_warm_on_it(size: int) -> None:

    agents = [FreeAgent("warm", "empty"), FreeAgent("cold", None)]
    groups = [PendingGroup("empty", size, 1.0), PendingGroup("full", 2, 2.0)]
    assert assign(agents, groups, 10) == [Assignment("warm", "full", 2)]


def test_a_job_ends_error_after_the_three_attempts_the_readme_states() -> None:
    from pathlib import Path  # noqa: PLC0415

    from qgjob_contract.statuses import MAX_ATTEMPTS  # noqa: PLC0415

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert f"after {MAX_ATTEMPTS} attempts" in readme
    assert MAX_ATTEMPTS == 3


@pytest.mark.parametrize("outcome", [JobStatus.PASSED, "passed"])
def test_a_reported_outcome_is_applied_whether_enum_or_plain_text(outcome: object) -> None:
    from qgjob_scheduler.transitions import end_batch_job  # noqa: PLC0415

    report = {
        "started_at": "2026-11-29T10:00:30",
        "finished_at": "2026-11-29T10:00:31",
        "result": {**not_reported_result("b1", "agent-1"), "outcome": outcome, "reason": None},
    }
    ended = end_batch_job(
        _job(JobStatus.RUNNING, "b1"),
        "b1",
        "agent-1",
        report,  # type: ignore[arg-type]
        "2026-11-29T10:01:00",
    )
    assert ended is not None
    assert ended.status == "passed"
    assert ended.finished_at == "2026-11-29T10:00:31"
