"""Which agent reports may change a job record, and what a batch's end does to the jobs it
never reported (the pure decisions)."""

from __future__ import annotations

import dataclasses

import pytest

from qgjob_contract.events import JobResult
from qgjob_contract.records import Job
from qgjob_contract.statuses import ErrorReason, JobStatus
from qgjob_scheduler.retry import Action, Decision, RetryPolicy
from qgjob_scheduler.transitions import (
    Finished,
    Verdict,
    decide,
    end_unreported,
    ended,
    retry_decision,
)


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


# --- an attempt's end (`ended`), the retry decision's inputs, what `apply_finished` returns ---


def _passed() -> JobResult:
    return JobResult(
        outcome=JobStatus.PASSED,
        duration_s=1.0,
        install_paid=False,
        install_s=0.0,
        log_tail="",
        driver="emulator",
        simulated=True,
    )


def _failed_entry() -> dict[str, object]:
    return {"attempt": 1, "outcome": JobStatus.FAILED.value, "reason": "", "retried": True}


def _end(start: Job) -> Job:
    return ended(
        start,
        _passed(),
        batch_id="b1",
        agent_id="agent-1",
        started_at="2026-11-29T10:00:01.000+00:00",
        finished_at="2026-11-29T10:00:02.000+00:00",
    )


def test_the_attempt_that_ends_a_job_is_recorded_as_not_retried() -> None:
    final = _end(job(JobStatus.RUNNING))
    assert final.status == JobStatus.PASSED
    assert [entry["retried"] for entry in final.history] == [False]


def test_a_pass_after_a_failed_run_makes_the_job_flaky() -> None:
    start = dataclasses.replace(job(JobStatus.RUNNING), history=[_failed_entry()])
    assert _end(start).flaky is True
    assert _end(job(JobStatus.RUNNING)).flaky is False


def test_a_flaky_job_stays_flaky_whatever_its_last_attempt() -> None:
    # flaky was set by an earlier pass after a failure; the history here shows no failed run.
    start = dataclasses.replace(job(JobStatus.RUNNING), flaky=True)
    assert _end(start).flaky is True


def test_a_job_whose_cancel_was_asked_is_not_retried_as_a_rerun() -> None:
    start = dataclasses.replace(job(JobStatus.RUNNING), retries=2)
    asked = dataclasses.replace(start, cancel_requested_at="2026-11-29T10:00:01.500+00:00")
    policy = RetryPolicy()
    failed = JobStatus.FAILED.value
    rerun = retry_decision(start, failed, None, "agent-1", policy=policy, jitter=0.5)
    cancel = retry_decision(asked, failed, None, "agent-1", policy=policy, jitter=0.5)
    assert rerun.action is Action.REQUEUE
    assert "cancel" not in rerun.note
    assert cancel.action is Action.REQUEUE
    assert cancel.note == "a cancel was asked: it ends cancelled"


@pytest.mark.parametrize(
    ("decision", "retried"),
    [
        (None, False),
        (Decision(Action.END), False),
        (Decision(Action.REQUEUE, delay_s=1.0), True),
    ],
)
def test_a_finished_report_is_retried_only_when_its_decision_requeues(
    decision: Decision | None, retried: bool
) -> None:
    finished = Finished(Verdict.APPLY if decision else Verdict.NOT_ALLOWED, None, decision)
    assert finished.retried is retried


def test_what_apply_finished_returns_cannot_be_changed() -> None:
    finished = Finished(Verdict.APPLY, job(JobStatus.RUNNING), Decision(Action.END))
    with pytest.raises(dataclasses.FrozenInstanceError):
        finished.decision = Decision(Action.REQUEUE)  # type: ignore[misc]
