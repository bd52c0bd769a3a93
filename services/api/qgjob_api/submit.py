"""The submit flow shared by POST /submit, POST /v1/jobs and POST /v1/runs.

Store the records (status queued), then publish ONE jobs.submitted event carrying every job
of the request, in order, with publisher confirms: the scheduler sees a submitted suite whole
and can put it in one batch. The jobs are accepted only when both succeeded; otherwise the
records are removed and the caller answers 503 (the scheduler skips the jobs of a
jobs.submitted whose records are gone).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

import redis

from qgjob_api import store
from qgjob_api.errors import Unavailable
from qgjob_api.run_record import Run
from qgjob_api.validation import JobIn, RunIn
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import Envelope, EventType, JobsSubmitted, make_event, utc_now
from qgjob_contract.records import Job

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What the API needs of qgjob_contract.amqp.ConfirmingPublisher."""

    def publish(self, envelope: Envelope) -> None: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


def new_jobs(
    inputs: Sequence[JobIn],
    *,
    run_id: str | None = None,
    created_at: str | None = None,
    submitted_by: str | None = None,
) -> list[Job]:
    """Records for validated jobs: fresh ids, status queued, one creation time per request."""
    created_at = created_at or utc_now()
    return [
        Job(
            job_id=str(uuid.uuid4()),
            org_id=job.org_id,
            app_version_id=job.app_version_id,
            test_path=job.test_path,
            priority=job.priority,
            target=job.target.value,
            created_at=created_at,
            run_id=run_id,
            submitted_by=submitted_by,
            retries=job.retries,
            timeout_s=job.timeout_s,
            queue_ttl_s=job.queue_ttl_s,
        )
        for job in inputs
    ]


def submit_jobs(
    client: redis.Redis,
    publisher: Publisher,
    inputs: Sequence[JobIn],
    *,
    submitted_by: str | None = None,
) -> list[Job]:
    """Accept jobs: stored and their events confirmed, or nothing (raises Unavailable).
    `submitted_by` is the submitting token's id (None with auth off)."""
    jobs = new_jobs(inputs, submitted_by=submitted_by)
    _accept(client, publisher, jobs, run=None)
    return jobs


def submit_run(
    client: redis.Redis, publisher: Publisher, run_in: RunIn, *, submitted_by: str | None = None
) -> tuple[Run, list[Job]]:
    """Accept a run: its record and its jobs (each with its run_id) stored in one MULTI, then
    ONE jobs.submitted event for all of them, confirmed; or nothing (raises Unavailable)."""
    run_id = str(uuid.uuid4())
    created_at = utc_now()
    jobs = new_jobs(run_in.jobs(), run_id=run_id, created_at=created_at, submitted_by=submitted_by)
    run = Run(
        run_id=run_id,
        org_id=run_in.org_id,
        app_version_id=run_in.app_version_id,
        targets=[target.value for target in run_in.targets],
        tests=list(run_in.tests),
        priority=run_in.priority,
        created_at=created_at,
        job_ids=_ids(jobs),
        retries=run_in.retries,
        timeout_s=run_in.timeout_s,
        queue_ttl_s=run_in.queue_ttl_s,
    )
    _accept(client, publisher, jobs, run=run)
    log.info("run submitted run_id=%s jobs=%d", run_id, len(jobs))
    return run, jobs


def _accept(client: redis.Redis, publisher: Publisher, jobs: list[Job], *, run: Run | None) -> None:
    run_id = None if run is None else run.run_id
    try:
        store.create_jobs(client, jobs, run)
    except redis.RedisError as exc:
        log.error("storing jobs failed (%s); job_ids=%s", exc, _ids(jobs))
        _roll_back(client, jobs, run_id)  # EXEC may have run before the connection broke
        raise Unavailable("the job store (Redis) is unavailable; nothing was submitted") from exc
    event = make_event(
        EventType.JOBS_SUBMITTED, JobsSubmitted(jobs=[job.submitted_payload() for job in jobs])
    )
    try:
        publisher.publish(event)
    except Exception as exc:
        log.error(
            "publishing %s event_id=%s failed (%s); removing job_ids=%s",
            event.type.value,
            event.event_id,
            exc,
            _ids(jobs),
        )
        _roll_back(client, jobs, run_id)
        if isinstance(exc, PublishError):
            raise Unavailable(
                "the event broker (RabbitMQ) is unavailable; nothing was submitted"
            ) from exc
        raise
    for job in jobs:
        log.info(
            "job submitted job_id=%s org_id=%s app_version_id=%s target=%s priority=%d "
            "submitted_by=%s (event_id=%s)",
            job.job_id,
            job.org_id,
            job.app_version_id,
            job.target,
            job.priority,
            job.submitted_by or "-",
            event.event_id,
        )


def _roll_back(client: redis.Redis, jobs: Sequence[Job], run_id: str | None) -> None:
    try:
        store.delete_jobs(client, _ids(jobs), run_id)
    except redis.RedisError:
        log.exception(
            "could not remove refused jobs: their records stay queued with no event; job_ids=%s",
            _ids(jobs),
        )


def _ids(jobs: Sequence[Job]) -> list[str]:
    return [job.job_id for job in jobs]
