"""Agents' reports applied to job records: a pure decision, then an atomic write.

Also the end of a job its agent never reported: when its batch ends, a job of that batch that
is not final moves to `error` with reason `not_reported` (`end_unreported`).

An attempt's end is recorded in the job's `history` (`retry.attempt_entry`), and a job whose
outcome `retry.decide` retries is not written here: `apply_finished` returns the decision,
and the caller hands the job to the requeue script (the one way back to a group).

Each report costs two round trips (`atomic.guarded`): the job read (with its batch's
instance), then its new record written only if the job is still as read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum

from redis import Redis

from qgjob_contract.events import JobFinished, JobReport, JobResult, JobStarted
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import ErrorReason, JobStatus, can_transition
from qgjob_scheduler import retry
from qgjob_scheduler.atomic import Guard, guarded
from qgjob_scheduler.payloads import timestamp
from qgjob_scheduler.retry import Action, Decision, RetryPolicy


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


def ended(
    job: Job,
    result: JobResult,
    *,
    batch_id: str,
    agent_id: str,
    started_at: str | None,
    finished_at: str,
    instance_id: str = "",
) -> Job:
    """`job` with `result` as its final outcome: the attempt joins its history, and a pass
    after a failed run makes it flaky (pure)."""
    outcome = str(result["outcome"])
    entry = retry.attempt_entry(
        attempt=job.attempts,
        agent_id=agent_id,
        batch_id=batch_id,
        instance_id=instance_id,
        assigned_at=job.assigned_at,
        started_at=started_at,
        finished_at=finished_at,
        outcome=outcome,
        reason=result.get("reason"),
        retried=False,
    )
    return dataclasses.replace(
        job,
        status=outcome,
        started_at=started_at,
        finished_at=finished_at,
        result=result,
        history=retry.with_entry(job.history, entry),
        flaky=job.flaky or retry.is_flaky(outcome, job.history),
    )


def end_unreported(job: Job | None, batch_id: str, agent_id: str, now: str) -> Job | None:
    """`job` moved to error/not_reported because its batch `batch_id` ended, or None when
    that does not apply: the job is gone, belongs to another batch now, or may not move to
    error from its status (it is final already)."""
    if job is None or decide(job, batch_id, JobStatus.ERROR) is not Verdict.APPLY:
        return None
    return ended(
        job,
        not_reported_result(batch_id, agent_id),
        batch_id=batch_id,
        agent_id=agent_id,
        started_at=job.started_at,
        finished_at=now,
    )


def end_batch_job(
    job: Job | None,
    batch_id: str,
    agent_id: str,
    report: JobReport | None,
    now: str,
    *,
    instance_id: str = "",
) -> Job | None:
    """`job` as its batch's end leaves it, or None when the end does not change it (pure).

    A job the agent reported (`report`, from batch.finished) takes that outcome, as its
    job.finished would have given it (whichever of the two arrives first applies; the
    agent's outbox drops the job.finished, and the job.started, it had not sent yet when the
    batch ended); one it did not report ends error/not_reported. A job already final, or of
    another batch, is left alone. `instance_id` is the agent instance the batch was bound to,
    as the attempt's history records it.
    """
    if report is None:
        return end_unreported(job, batch_id, agent_id, now)
    outcome = report["result"]["outcome"]
    if job is None or decide(job, batch_id, outcome) is not Verdict.APPLY:
        return None
    result = report["result"]
    status = outcome.value if isinstance(outcome, JobStatus) else str(outcome)
    return ended(
        job,
        JobResult(**{**result, "outcome": status}),  # type: ignore[typeddict-item]
        batch_id=batch_id,
        agent_id=agent_id,
        started_at=job.started_at or report["started_at"],
        finished_at=report["finished_at"],
        instance_id=instance_id,
    )


def retry_decision(
    job: Job, outcome: str, reason: str | None, agent_id: str, *, policy: RetryPolicy, jitter: float
) -> Decision:
    """`retry.decide` for the attempt of `job` that ended `outcome` on `agent_id` (pure)."""
    return retry.decide(
        outcome,
        reason,
        job.history,
        retries=job.retries,
        agent_id=agent_id,
        cancel_requested=job.cancel_requested_at is not None,
        policy=policy,
        jitter=jitter,
    )


def started(job: Job, started_at: str) -> Job:
    """`job` moved to running at `started_at` (pure): what a job.started does, also from a
    batch.finished's report of a job whose job.started was never sent."""
    return dataclasses.replace(
        job, status=JobStatus.RUNNING.value, started_at=timestamp(started_at)
    )


def apply_started(store: Redis, payload: JobStarted) -> Verdict:
    """assigned -> running, with started_at."""
    return _apply(
        store,
        payload["job_id"],
        payload["batch_id"],
        JobStatus.RUNNING,
        lambda job: started(job, payload["started_at"]),
    )


@dataclasses.dataclass(frozen=True)
class Finished:
    """What `apply_finished` did: its verdict, and, when the attempt's outcome is retried
    (nothing written then), the job as it was and the decision for the requeue script."""

    verdict: Verdict
    job: Job | None = None
    decision: Decision | None = None

    @property
    def retried(self) -> bool:
        return self.decision is not None and self.decision.action is Action.REQUEUE


def apply_finished(
    store: Redis,
    payload: JobFinished,
    policy: RetryPolicy | None = None,
    jitter: Callable[[], float] = lambda: 0.5,
) -> Finished:
    """-> the reported outcome, with finished_at, the result and the attempt in `history`;
    unless `retry.decide` retries it: then nothing is written (see `Finished`)."""
    result = payload["result"]
    outcome = result["outcome"].value
    key = Keys.job(payload["job_id"])
    batch_id = payload["batch_id"]

    def read_check_write(guard: Guard) -> Finished:
        (raw,), (instance_id,) = guard.read(
            [key], also=lambda pipe: pipe.hget(Keys.batch(batch_id), "instance_id")
        )
        job = Job.from_redis(raw) if raw else None
        verdict = decide(job, batch_id, outcome)
        decision = None
        if job is not None and verdict is Verdict.APPLY:
            decision = retry_decision(
                job,
                outcome,
                result.get("reason"),
                payload["agent_id"],
                policy=policy or RetryPolicy(),
                jitter=jitter(),
            )
        if job is not None and decision is not None and decision.action is Action.END:
            final = ended(
                job,
                JobResult(**{**result, "outcome": outcome}),  # type: ignore[typeddict-item]
                batch_id=batch_id,
                agent_id=payload["agent_id"],
                started_at=job.started_at,
                finished_at=timestamp(payload["finished_at"]),
                instance_id=str(instance_id or ""),
            )
            guard.hset(key, final.to_redis())
        return Finished(verdict, job, decision)

    return guarded(store, read_check_write)


def _apply(
    store: Redis,
    job_id: str,
    batch_id: str,
    new_status: JobStatus,
    change: Callable[[Job], Job],
) -> Verdict:
    key = Keys.job(job_id)

    def read_check_write(guard: Guard) -> Verdict:
        (raw,), _ = guard.read([key])
        job = Job.from_redis(raw) if raw else None
        verdict = decide(job, batch_id, new_status)
        if job is not None and verdict is Verdict.APPLY:
            guard.hset(key, change(job).to_redis())
        return verdict

    return guarded(store, read_check_write)
