"""A batch ends (batch.finished, or a heartbeat naming it as the agent's last batch): the
agent is freed at once, and once the report grace has passed the jobs it never reported end
`error` with reason `not_reported`; a report redelivered within the grace still applies.

These run with JOB_MAX_ATTEMPTS=1 (no retry left): how a not-reported job is retried instead
is test_scheduler_retry's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qgjob_contract.events import EventType
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch, Job
from qgjob_contract.statuses import ErrorReason, JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler import history
from qgjob_scheduler.config import Config
from qgjob_scheduler.consumer import Consumer

from .conftest import ORG, World, scheduler_config, wait_until
from .test_scheduler_job_events import finished, started


@pytest.fixture
def config(redis_url: str, rabbitmq_url: str, health_file: Path) -> Config:
    # A grace of 1.5 s: a report sent right after a heartbeat ended its batch is applied
    # well within it, even on a loaded machine.
    return dataclasses.replace(
        scheduler_config(redis_url, rabbitmq_url, health_file),
        job_max_attempts=1,
        report_grace_s=1.5,
    )


def _dispatch_suite(world: World, count: int) -> tuple[list[str], str]:
    """A suite of `count` jobs dispatched to emu-1 as one batch: (job ids, batch id)."""
    suite = world.submit_suite("v1", count)
    world.sync()
    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    batch = Batch.from_json(rq_job.args[0])
    assert [job.job_id for job in batch.jobs] == suite
    return suite, batch.batch_id


def _settled(world: World, job_id: str) -> Job:
    """The job once the reaper has settled it (after the report grace)."""
    return wait_until(
        lambda: (job := world.job(job_id)).status == JobStatus.ERROR and job,
        f"job {job_id} to be settled",
    )


def _assert_not_reported(job: Job, batch_id: str) -> None:
    assert job.status == JobStatus.ERROR
    assert job.batch_id == batch_id
    assert job.finished_at is not None
    assert job.result is not None
    assert job.result["outcome"] == JobStatus.ERROR
    assert job.result["reason"] == ErrorReason.NOT_REPORTED
    assert batch_id in job.result["log_tail"]


def test_batch_finished_ends_a_job_never_reported_as_error_and_the_agent_gets_the_next(
    world: World, scheduler: Consumer
) -> None:
    (passed, never_reported), batch_id = _dispatch_suite(world, 2)
    later = world.submit("v1")  # the agent is busy: it waits in its group

    world.publish(EventType.JOB_STARTED, started(passed, batch_id))
    world.publish(EventType.JOB_FINISHED, finished(passed, batch_id))
    world.batch_finished(
        "emu-1", batch_id, "v1", installs=1, jobs_run=1, reported=[finished(passed, batch_id)]
    )

    batches = world.wait_batches("emu-1", 2)
    assert [job.job_id for job in Batch.from_json(batches[1].args[0]).jobs] == [later]
    assert world.job(passed).status == JobStatus.PASSED
    _assert_not_reported(world.job(never_reported), batch_id)  # at once: the agent said so
    assert world.job(never_reported).attempts == 1


def test_agent_that_aborted_its_batch_is_freed_by_a_heartbeat_naming_it(
    world: World, scheduler: Consumer
) -> None:
    (reported, running, waiting), batch_id = _dispatch_suite(world, 3)
    world.publish(EventType.JOB_STARTED, started(reported, batch_id))
    world.publish(EventType.JOB_FINISHED, finished(reported, batch_id, outcome="failed"))
    world.publish(EventType.JOB_STARTED, started(running, batch_id))
    # the agent gave up on the batch (broker unreachable too long): no batch.finished, but
    # its heartbeats now name the batch as the last one it ended
    world.heartbeat("emu-1", last_batch_id=batch_id)

    wait_until(lambda: world.agent("emu-1").current_batch_id is None, "emu-1 freed")
    assert world.job(reported).status == JobStatus.FAILED
    _assert_not_reported(_settled(world, running), batch_id)
    _assert_not_reported(_settled(world, waiting), batch_id)

    # freed: it takes the next job; a late batch.finished of the old batch changes nothing
    later = world.submit("v1")
    [_, rq_job] = world.wait_batches("emu-1", 2)
    world.batch_finished("emu-1", batch_id, "v1", installs=1, jobs_run=2)
    world.heartbeat("emu-1", last_batch_id=batch_id)
    world.sync()
    assert world.agent("emu-1").current_batch_id == rq_job.id
    assert world.job(later).status == JobStatus.ASSIGNED
    assert world.job(running).status == JobStatus.ERROR


def test_heartbeat_naming_an_older_batch_leaves_the_outstanding_one_alone(
    world: World, scheduler: Consumer
) -> None:
    suite, batch_id = _dispatch_suite(world, 2)
    world.heartbeat("emu-1", last_batch_id="an-older-batch")
    world.heartbeat("emu-1", last_batch_id=None)
    world.sync()
    assert world.agent("emu-1").current_batch_id == batch_id
    assert all(world.job(job_id).status == JobStatus.ASSIGNED for job_id in suite)


def test_a_batch_finished_arriving_before_the_job_finished_keeps_the_reported_outcome(
    world: World, scheduler: Consumer
) -> None:
    # What a lost connection can do: the broker returns job.finished behind batch.finished.
    (job_id,), batch_id = _dispatch_suite(world, 1)
    report = finished(job_id, batch_id, outcome="failed")
    world.publish(EventType.JOB_STARTED, started(job_id, batch_id))
    world.batch_finished("emu-1", batch_id, "v1", installs=1, jobs_run=1, reported=[report])
    wait_until(lambda: world.job(job_id).status == JobStatus.FAILED, "the reported outcome")
    world.publish(EventType.JOB_FINISHED, report)  # late: changes nothing
    world.sync()

    done = world.job(job_id)
    assert (done.status, done.result) == (JobStatus.FAILED, report["result"])
    assert done.started_at == started(job_id, batch_id)["started_at"]
    assert not world.redis.exists(Keys.batch(batch_id))


def test_a_job_finished_redelivered_after_a_heartbeat_ended_its_batch_still_applies(
    world: World, scheduler: Consumer
) -> None:
    # The batch.finished was lost (dead-lettered): the heartbeat ends the batch, and its job
    # waits out the report grace, so its job.finished still applies.
    (job_id,), batch_id = _dispatch_suite(world, 1)
    world.publish(EventType.JOB_STARTED, started(job_id, batch_id))
    world.heartbeat("emu-1", last_batch_id=batch_id)
    wait_until(lambda: world.agent("emu-1").current_batch_id is None, "emu-1 freed")
    world.publish(EventType.JOB_FINISHED, finished(job_id, batch_id))
    world.sync()

    assert world.job(job_id).status == JobStatus.PASSED
    wait_until(lambda: not world.redis.exists(Keys.batch(batch_id)), "the batch settled")
    assert world.job(job_id).status == JobStatus.PASSED


def test_a_batch_finished_alone_ends_each_job_as_reported_and_feeds_the_history(
    world: World, scheduler: Consumer
) -> None:
    # What the agent's outbox sends when the tests ran faster than the broker confirmed
    # reports: their job.started and job.finished were folded into the batch.finished.
    suite, batch_id = _dispatch_suite(world, 3)
    records = [world.job(job_id) for job_id in suite]
    start = started(suite[0], batch_id)["started_at"]
    reports = [
        finished(suite[0], batch_id, duration_s=7.0, install_paid=True, install_s=9.0),
        finished(suite[1], batch_id, duration_s=11.0, install_paid=False, install_s=0.0),
        finished(
            suite[2], batch_id, outcome="failed", duration_s=0.5, install_paid=False, install_s=0.0
        ),
    ]
    world.batch_finished(
        "emu-1", batch_id, "v1", installs=1, jobs_run=3, reported=reports, started_at=start
    )

    wait_until(lambda: world.agent("emu-1").current_batch_id is None, "emu-1 freed")
    done = [world.job(job_id) for job_id in suite]
    assert [job.status for job in done] == [JobStatus.PASSED, JobStatus.PASSED, JobStatus.FAILED]
    assert [job.result for job in done] == [report["result"] for report in reports]
    assert all(job.started_at == start for job in done)  # never told by a job.started
    assert [job.history[-1]["instance_id"] for job in done] == [world.instance("emu-1")] * 3
    # the passing runs are learned as their job.finished would have been; the failed is not
    paths = [job.test_path for job in records]
    target = Target.EMULATOR.value
    assert history.test_estimates(world.redis, ORG, target, paths, default_s=99.0) == [
        7.0,
        11.0,
        11.0,  # never passed: the org's recent runs (p80 of 7 and 11), not the default 99
    ]
    assert history.install_estimates(world.redis, ORG, target, ["v1"], default_s=99.0) == [9.0]


def test_a_batch_finished_after_a_heartbeat_ended_its_batch_still_applies_its_reports(
    world: World, scheduler: Consumer
) -> None:
    # The batch.finished was held back (a handler error retried it) while the agent's next
    # heartbeat, naming the batch, ended it; its reports are the only word on jobs whose
    # job.finished the outbox folded into it.
    (reported, unreported), batch_id = _dispatch_suite(world, 2)
    earlier = world.next_seq("emu-1")  # the agent put the batch.finished before the heartbeat
    world.heartbeat("emu-1", last_batch_id=batch_id)
    wait_until(lambda: world.agent("emu-1").current_batch_id is None, "emu-1 freed")
    report = finished(reported, batch_id, duration_s=4.0)
    start = started(reported, batch_id)["started_at"]
    world.batch_finished(
        "emu-1",
        batch_id,
        "v1",
        installs=1,
        jobs_run=1,
        reported=[report],
        started_at=start,
        seq=earlier,
    )

    wait_until(lambda: world.job(reported).status == JobStatus.PASSED, "the reported outcome")
    done = world.job(reported)
    assert (done.result, done.started_at) == (report["result"], start)
    path = done.test_path
    target = Target.EMULATOR.value
    assert history.test_estimates(world.redis, ORG, target, [path], default_s=99.0) == [4.0]
    _assert_not_reported(_settled(world, unreported), batch_id)  # the reaper's, after the grace
    assert world.job(reported).status == JobStatus.PASSED
    wait_until(lambda: not world.redis.exists(Keys.batch(batch_id)), "the batch settled")
    assert world.redis.zscore(Keys.ENDED_BATCHES, batch_id) is None
