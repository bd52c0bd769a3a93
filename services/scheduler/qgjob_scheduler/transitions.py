"""Agents' reports applied to job records: a pure decision, then an atomic write."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum

from redis import Redis
from redis.client import Pipeline

from qgjob_contract.events import JobFinished, JobStarted
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import JobStatus, can_transition
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
