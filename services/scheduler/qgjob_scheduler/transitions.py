"""Agents' reports applied to job records: a pure decision, then an atomic write.

Also the end of a job its agent never reported: when its batch ends, a job of that batch that
is not final moves to `error` with reason `not_reported` (`end_unreported`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum

from redis import Redis
from redis.client import Pipeline

from qgjob_contract.events import JobFinished, JobReport, JobResult, JobStarted
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import ErrorReason, JobStatus, can_transition
from qgjob_scheduler.atomic import fields, transaction
from qgjob_scheduler.payloads import timestamp


class Verdict(StrEnum):
    APPLY = "apply"
    UNKNOWN_JOB = "unknown_job"  # no record (never stored, or rolled back by the API)
    STALE_BATCH = "stale_batch"  # the report is about a batch the job no longer belongs to
    NOT_ALLOWED = "not_allowed"  # a duplicate, or out of order (e.g. after a final status)


def decide(job: Job | None, batch_id: str, new_status: str) -> Verdict:
    """May a report from batch `batch_id` move `job` to `new_status`?"""
    if job is None:
        return Verdict.UNKNOWN_JOB
    if job.batch_id != batch_id:
        return Verdict.STALE_BATCH
    if not can_transition(job.status, new_status):
        return Verdict.NOT_ALLOWED
    return Verdict.APPLY


def not_reported_result(batch_id: str, agent_id: str) -> JobResult:
    """The result of a job whose batch ended on `agent_id` without a report for it."""
    return JobResult(
        outcome=JobStatus.ERROR,
        duration_s=0.0,
        install_paid=False,
        install_s=0.0,
        log_tail=f"batch {batch_id} ended on agent {agent_id} without a report for this job",
        driver="",  # no driver reported anything
        simulated=False,
        reason=ErrorReason.NOT_REPORTED.value,
    )


def end_unreported(job: Job | None, batch_id: str, agent_id: str, now: str) -> Job | None:
    """`job` moved to error/not_reported because its batch `batch_id` ended, or None when
    that does not apply: the job is gone, belongs to another batch now, or may not move to
    error from its status (it is final already)."""
    if job is None or decide(job, batch_id, JobStatus.ERROR) is not Verdict.APPLY:
        return None
    return dataclasses.replace(
        job,
        status=JobStatus.ERROR.value,
        finished_at=now,
        result=not_reported_result(batch_id, agent_id),
    )


def end_batch_job(
    job: Job | None, batch_id: str, agent_id: str, report: JobReport | None, now: str
) -> Job | None:
    """`job` as its batch's end leaves it, or None when the end does not change it (pure).

    A job the agent reported (`report`, from batch.finished) takes that outcome, as its
    job.finished would have given it (whichever of the two arrives first applies); one it did
    not report ends error/not_reported. A job already final, or of another batch, is left
    alone.
    """
    if report is None:
        return end_unreported(job, batch_id, agent_id, now)
    outcome = report["result"]["outcome"]
    if job is None or decide(job, batch_id, outcome) is not Verdict.APPLY:
        return None
    return dataclasses.replace(
        job,
        status=outcome.value if isinstance(outcome, JobStatus) else str(outcome),
        started_at=job.started_at or report["started_at"],
        finished_at=report["finished_at"],
        result=report["result"],
    )


def apply_started(store: Redis, payload: JobStarted) -> Verdict:
    """assigned -> running, with started_at."""
    return _apply(
        store,
        payload["job_id"],
        payload["batch_id"],
        JobStatus.RUNNING,
        lambda job: dataclasses.replace(
            job, status=JobStatus.RUNNING.value, started_at=timestamp(payload["started_at"])
        ),
    )


def apply_finished(store: Redis, payload: JobFinished) -> Verdict:
    """-> the reported outcome, with finished_at and the result."""
    outcome = payload["result"]["outcome"]
    return _apply(
        store,
        payload["job_id"],
        payload["batch_id"],
        outcome,
        lambda job: dataclasses.replace(
            job,
            status=outcome.value,
            finished_at=timestamp(payload["finished_at"]),
            result=payload["result"],
        ),
    )


def _apply(
    store: Redis,
    job_id: str,
    batch_id: str,
    new_status: JobStatus,
    change: Callable[[Job], Job],
) -> Verdict:
    key = Keys.job(job_id)

    def read_check_write(pipe: Pipeline) -> Verdict:
        raw = pipe.hgetall(key)
        job = Job.from_redis(raw) if raw else None
        verdict = decide(job, batch_id, new_status)
        pipe.multi()
        if job is not None and verdict is Verdict.APPLY:
            pipe.hset(key, mapping=fields(change(job).to_redis()))
        return verdict

    return transaction(store, key, read_check_write)
