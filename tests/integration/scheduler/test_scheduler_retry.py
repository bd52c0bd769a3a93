"""Job control in the real scheduler (RabbitMQ, Redis): infrastructure errors retried after a
backoff on another agent, up to JOB_MAX_ATTEMPTS; failed tests rerun per `retries` (flaky);
timeouts not retried; queue waits that expire; cancels of queued, assigned and running jobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from qgjob_contract.events import EventType, utc_now
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch
from qgjob_contract.statuses import ErrorReason, JobStatus
from qgjob_scheduler.config import Config
from qgjob_scheduler.consumer import Consumer

from .conftest import World, scheduler_config, wait_until
from .test_scheduler_job_events import finished, started

BACKOFF_S = 0.3


@pytest.fixture
def config(redis_url: str, rabbitmq_url: str, health_file: Path) -> Config:
    return dataclasses.replace(
        scheduler_config(redis_url, rabbitmq_url, health_file),
        retry_backoff_s=BACKOFF_S,
        retry_avoid_s=3.0,
    )


def _submit(world: World, version: str = "v1", **fields: str) -> str:
    """A queued job with job-control fields set as the API stores them, then submitted."""
    job = world.store_job(version)
    if fields:
        world.redis.hset(Keys.job(job.job_id), mapping=fields)
    world.publish_submitted([job])
    return job.job_id


def _report(agent_id: str, job_id: str, batch_id: str, **result: Any) -> dict[str, Any]:
    return {**finished(job_id, batch_id, **result), "agent_id": agent_id, "finished_at": utc_now()}


def _only_job(rq_job: Any) -> tuple[str, Any]:
    batch = Batch.from_json(rq_job.args[0])
    [job] = batch.jobs
    return batch.batch_id, job


def test_an_install_error_is_retried_after_a_backoff_on_another_free_agent(
    world: World, scheduler: Consumer
) -> None:
    job_id = _submit(world)
    world.sync()
    world.heartbeat("emu-1")
    first_batch, first = _only_job(world.wait_batches("emu-1", 1)[0])
    assert first.attempt == 1
    world.heartbeat("emu-2")  # a second free agent
    failed_at = utc_now()
    report = _report("emu-1", job_id, first_batch, outcome="error", reason="install_failed")
    world.publish(EventType.JOB_FINISHED, report)
    world.batch_finished("emu-1", first_batch, "v1", installs=0, jobs_run=1, reported=[report])

    wait_until(lambda: world.job(job_id).status != JobStatus.ASSIGNED, "job requeued")
    second_batch, second = _only_job(world.wait_batches("emu-2", 1)[0])
    assert second.attempt == 2
    assert len(world.batches("emu-1")) == 1, "the agent it failed on took it again"
    job = world.job(job_id)
    # eligible only after the backoff (at least half of it: equal jitter)
    assert job.assigned_at is not None
    assert _ms(job.assigned_at) - _ms(failed_at) >= BACKOFF_S / 2 * 1000

    world.publish(EventType.JOB_STARTED, {**started(job_id, second_batch), "agent_id": "emu-2"})
    world.publish(EventType.JOB_FINISHED, _report("emu-2", job_id, second_batch))
    job = wait_until(
        lambda: (j := world.job(job_id)).status == JobStatus.PASSED and j, "job passed"
    )
    assert [(h["attempt"], h["agent_id"], h["outcome"], h["reason"]) for h in job.history] == [
        (1, "emu-1", "error", "install_failed"),
        (2, "emu-2", "passed", ""),
    ]
    assert [h["batch_id"] for h in job.history] == [first_batch, second_batch]
    assert [h["retried"] for h in job.history] == [True, False]
    assert not job.flaky


def test_an_infrastructure_error_ends_the_job_after_job_max_attempts(
    world: World, config: Config, scheduler: Consumer
) -> None:
    job_id = _submit(world)
    world.sync()
    for attempt in range(1, config.job_max_attempts + 1):
        world.heartbeat("emu-1")  # the only agent: it takes the job again after the avoid
        batch_id, job = _only_job(world.wait_batches("emu-1", attempt, timeout=20)[-1])
        assert job.attempt == attempt
        report = _report("emu-1", job_id, batch_id, outcome="error", reason="driver_error")
        world.publish(EventType.JOB_FINISHED, report)
        world.batch_finished("emu-1", batch_id, "v1", installs=1, jobs_run=attempt)
    job = wait_until(lambda: (j := world.job(job_id)).status == JobStatus.ERROR and j, "ended")
    assert job.result is not None
    assert job.result["reason"] == ErrorReason.DRIVER_ERROR
    assert [h["reason"] for h in job.history] == ["driver_error"] * config.job_max_attempts
    assert [h["retried"] for h in job.history] == [True, True, False]


@pytest.mark.parametrize(
    ("retries", "second", "status", "flaky"),
    [
        ("1", "passed", "passed", True),
        ("1", "failed", "failed", False),
        ("0", None, "failed", False),
    ],
)
def test_a_failed_test_is_rerun_as_often_as_the_job_asks(  # noqa: PLR0917 (parameters)
    world: World, scheduler: Consumer, retries: str, second: str | None, status: str, flaky: bool
) -> None:
    job_id = _submit(world, retries=retries)
    world.sync()
    world.heartbeat("emu-1")
    batch_id, _ = _only_job(world.wait_batches("emu-1", 1)[0])
    report = _report("emu-1", job_id, batch_id, outcome="failed")
    world.publish(EventType.JOB_FINISHED, report)
    world.batch_finished("emu-1", batch_id, "v1", installs=1, jobs_run=1, reported=[report])
    if second is not None:
        # rerun at once (no backoff), on the same build: the one agent, warm
        rerun_batch, rerun = _only_job(world.wait_batches("emu-1", 2)[-1])
        assert rerun.attempt == 2
        world.publish(EventType.JOB_FINISHED, _report("emu-1", job_id, rerun_batch, outcome=second))
    job = wait_until(lambda: (j := world.job(job_id)).status == status and j, f"job {status}")
    assert job.flaky is flaky
    assert [h["outcome"] for h in job.history] == ["failed", *([second] if second else [])]


def test_a_test_that_timed_out_is_not_retried(world: World, scheduler: Consumer) -> None:
    job_id = _submit(world, timeout_s="2.5")
    world.sync()
    world.heartbeat("emu-1")
    batch_id, job = _only_job(world.wait_batches("emu-1", 1)[0])
    assert job.timeout_s == 2.5  # the job's own timeout travels to the agent
    world.publish(
        EventType.JOB_FINISHED,
        _report("emu-1", job_id, batch_id, outcome="error", reason="timeout"),
    )
    job = wait_until(lambda: (j := world.job(job_id)).status == JobStatus.ERROR and j, "ended")
    assert job.result is not None
    assert job.result["reason"] == ErrorReason.TIMEOUT
    assert len(job.history) == 1


def test_a_job_no_agent_takes_in_time_expires(world: World, scheduler: Consumer) -> None:
    kept = _submit(world, "v-kept")
    job_id = _submit(world, "v-lonely", queue_ttl_s="1")
    job = wait_until(
        lambda: (j := world.job(job_id)).status == JobStatus.ERROR and j, "job expired", timeout=10
    )
    assert job.result is not None
    assert job.result["reason"] == ErrorReason.EXPIRED
    assert world.group("v-lonely") == []
    assert world.groups() == ["v-kept"]
    assert world.job(kept).status == JobStatus.QUEUED  # the default hour is far off


def test_a_queue_wait_ends_when_an_agent_takes_the_job_and_restarts_on_a_retry(
    world: World, scheduler: Consumer
) -> None:
    job_id = _submit(world, "v-taken")
    world.sync()
    assert world.redis.zscore(Keys.QUEUE_EXPIRY, job_id) is not None
    world.heartbeat("emu-1")
    batch_id, _ = _only_job(world.wait_batches("emu-1", 1)[0])
    # taken: nothing of it is left to expire (the zset holds only jobs that wait)
    assert world.redis.zscore(Keys.QUEUE_EXPIRY, job_id) is None

    report = _report("emu-1", job_id, batch_id, outcome="error", reason="driver_error")
    world.publish(EventType.JOB_FINISHED, report)
    wait_until(lambda: world.job(job_id).status == JobStatus.QUEUED, "job requeued")
    assert world.redis.zscore(Keys.QUEUE_EXPIRY, job_id) is not None


def _cancel(world: World, *job_ids: str, by: str = "tok-1") -> None:
    now = utc_now()
    for job_id in job_ids:  # as the API marks them before it publishes
        world.redis.hset(
            Keys.job(job_id), mapping={"cancel_requested_at": now, "cancel_requested_by": by}
        )
    world.publish(
        EventType.JOBS_CANCEL_REQUESTED,
        {"job_ids": list(job_ids), "requested_by": by, "requested_at": now},
    )


def test_cancel_ends_queued_and_assigned_jobs_and_leaves_a_running_one_to_its_agent(
    world: World, scheduler: Consumer
) -> None:
    assigned, running = world.submit_suite("v1", 2)
    world.sync()
    world.heartbeat("emu-1")
    batch_id = str(world.wait_batches("emu-1", 1)[0].id)
    queued = _submit(world, "v2")
    world.publish(EventType.JOB_STARTED, started(running, batch_id))
    wait_until(lambda: world.job(running).status == JobStatus.RUNNING, "running")

    _cancel(world, queued, assigned, running)
    world.sync()
    for job_id in (queued, assigned):
        job = world.job(job_id)
        assert job.status == JobStatus.CANCELLED
        assert (job.cancel_requested_by, job.finished_at is not None) == ("tok-1", True)
    assert world.group("v2") == []
    assert world.job(running).status == JobStatus.RUNNING  # its agent stops it
    world.publish(
        EventType.JOB_FINISHED,
        _report("emu-1", running, batch_id, outcome="cancelled", reason="cancelled"),
    )
    # the agent skipped `assigned`; a late report of it changes nothing either way
    world.publish(EventType.JOB_FINISHED, _report("emu-1", assigned, batch_id))
    world.batch_finished("emu-1", batch_id, "v1", installs=1, jobs_run=2)
    world.sync()
    assert world.job(running).status == JobStatus.CANCELLED
    assert world.job(assigned).status == JobStatus.CANCELLED


def test_a_cancel_racing_a_finish_leaves_the_first_final_status(
    world: World, scheduler: Consumer
) -> None:
    job_id = _submit(world)
    world.sync()
    world.heartbeat("emu-1")
    batch_id = str(world.wait_batches("emu-1", 1)[0].id)
    world.publish(EventType.JOB_STARTED, started(job_id, batch_id))
    world.publish(EventType.JOB_FINISHED, _report("emu-1", job_id, batch_id))
    _cancel(world, job_id)
    world.publish(
        EventType.JOB_FINISHED,
        _report("emu-1", job_id, batch_id, outcome="cancelled", reason="cancelled"),
    )
    world.sync()
    job = world.job(job_id)
    assert job.status == JobStatus.PASSED
    assert len(job.history) == 1


def test_a_retried_job_whose_cancel_was_asked_ends_cancelled(
    world: World, scheduler: Consumer
) -> None:
    job_id = _submit(world)
    world.sync()
    world.heartbeat("emu-1")
    batch_id = str(world.wait_batches("emu-1", 1)[0].id)
    world.publish(EventType.JOB_STARTED, started(job_id, batch_id))
    wait_until(lambda: world.job(job_id).status == JobStatus.RUNNING, "running")
    _cancel(world, job_id)  # asked while it runs: its driver then crashes
    world.publish(
        EventType.JOB_FINISHED,
        _report("emu-1", job_id, batch_id, outcome="error", reason="driver_error"),
    )
    job = wait_until(lambda: (j := world.job(job_id)).status == JobStatus.CANCELLED and j, "end")
    assert world.group("v1") == []
    assert [h["retried"] for h in job.history] == [False]


def _ms(timestamp: str) -> int:
    from qgjob_contract.events import timestamp_ms  # noqa: PLC0415

    return timestamp_ms(timestamp)


def test_a_retried_job_reported_only_by_its_batch_finished_keeps_its_attempt_times(
    world: World, scheduler: Consumer
) -> None:
    # The agent's outbox folded the job's job.started and job.finished into batch.finished:
    # the attempt's history still says when it started and finished (the agent's times).
    job_id = _submit(world)
    world.sync()
    world.heartbeat("emu-1")
    batch_id, _ = _only_job(world.wait_batches("emu-1", 1)[0])
    report = _report("emu-1", job_id, batch_id, outcome="error", reason="driver_error")
    start = started(job_id, batch_id)["started_at"]
    world.batch_finished(
        "emu-1", batch_id, "v1", installs=1, jobs_run=1, reported=[report], started_at=start
    )

    wait_until(lambda: world.job(job_id).status == JobStatus.QUEUED, "job requeued")
    [attempt] = world.job(job_id).history
    assert (attempt["started_at"], attempt["finished_at"]) == (start, report["finished_at"])
    assert (attempt["outcome"], attempt["reason"]) == (JobStatus.ERROR, ErrorReason.DRIVER_ERROR)
    assert attempt["retried"] is True
