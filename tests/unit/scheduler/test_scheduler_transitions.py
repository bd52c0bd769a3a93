"""Which agent reports may change a job record, and what a batch's end does to the jobs it
never reported (the pure decisions)."""

from __future__ import annotations

import pytest

from qgjob_contract.records import Job
from qgjob_contract.statuses import ErrorReason, JobStatus
from qgjob_scheduler.transitions import Verdict, decide, end_unreported


def job(status: JobStatus, batch_id: str | None = "b1") -> Job:
    return Job(
        job_id="j1",
        org_id="qualgent",
        app_version_id="xyz123",
        test_path="tests/onboarding.spec.js",
        priority=1,
        target="emulator",
        created_at="2026-11-29T10:00:00.000+00:00",
        status=status.value,
        assigned_agent=None if batch_id is None else "agent-1",
        batch_id=batch_id,
    )


def test_unknown_job_is_never_changed() -> None:
    assert decide(None, "b1", JobStatus.RUNNING) is Verdict.UNKNOWN_JOB


def test_started_moves_an_assigned_job_of_the_same_batch_to_running() -> None:
    assert decide(job(JobStatus.ASSIGNED), "b1", JobStatus.RUNNING) is Verdict.APPLY


@pytest.mark.parametrize("new", [JobStatus.RUNNING, JobStatus.PASSED, JobStatus.ERROR])
def test_report_from_another_batch_is_stale(new: JobStatus) -> None:
    assert decide(job(JobStatus.ASSIGNED, "b2"), "b1", new) is Verdict.STALE_BATCH
    assert decide(job(JobStatus.RUNNING, "b2"), "b1", new) is Verdict.STALE_BATCH


def test_report_for_a_queued_job_is_stale() -> None:
    assert decide(job(JobStatus.QUEUED, None), "b1", JobStatus.RUNNING) is Verdict.STALE_BATCH


def test_duplicate_started_is_not_applied() -> None:
    assert decide(job(JobStatus.RUNNING), "b1", JobStatus.RUNNING) is Verdict.NOT_ALLOWED


@pytest.mark.parametrize("outcome", [JobStatus.PASSED, JobStatus.FAILED, JobStatus.ERROR])
def test_finished_moves_a_running_job_to_its_outcome(outcome: JobStatus) -> None:
    assert decide(job(JobStatus.RUNNING), "b1", outcome) is Verdict.APPLY


def test_finished_without_started_is_applied_install_failure() -> None:
    assert decide(job(JobStatus.ASSIGNED), "b1", JobStatus.ERROR) is Verdict.APPLY


@pytest.mark.parametrize(
    "final", [JobStatus.PASSED, JobStatus.FAILED, JobStatus.ERROR, JobStatus.CANCELLED]
)
@pytest.mark.parametrize(
    "new", [JobStatus.RUNNING, JobStatus.PASSED, JobStatus.FAILED, JobStatus.ERROR]
)
def test_a_final_status_is_never_left(final: JobStatus, new: JobStatus) -> None:
    assert decide(job(final), "b1", new) is Verdict.NOT_ALLOWED


NOW = "2026-11-29T10:05:00.000+00:00"


@pytest.mark.parametrize("status", [JobStatus.ASSIGNED, JobStatus.RUNNING])
def test_a_batch_end_moves_its_unreported_jobs_to_error_not_reported(status: JobStatus) -> None:
    ended = end_unreported(job(status), "b1", "agent-1", NOW)
    assert ended is not None
    assert (ended.status, ended.finished_at) == (JobStatus.ERROR, NOW)
    assert ended.result is not None
    assert ended.result["outcome"] == JobStatus.ERROR
    assert ended.result["reason"] == ErrorReason.NOT_REPORTED
    assert "b1" in ended.result["log_tail"]
    assert ended.result["simulated"] is False
    assert (ended.batch_id, ended.assigned_agent) == ("b1", "agent-1")


@pytest.mark.parametrize(
    "final", [JobStatus.PASSED, JobStatus.FAILED, JobStatus.ERROR, JobStatus.CANCELLED]
)
def test_a_batch_end_leaves_reported_jobs_alone(final: JobStatus) -> None:
    assert end_unreported(job(final), "b1", "agent-1", NOW) is None


def test_a_batch_end_leaves_jobs_that_moved_to_another_batch_or_are_gone() -> None:
    assert end_unreported(job(JobStatus.ASSIGNED, "b2"), "b1", "agent-1", NOW) is None
    assert end_unreported(job(JobStatus.QUEUED, None), "b1", "agent-1", NOW) is None
    assert end_unreported(None, "b1", "agent-1", NOW) is None
