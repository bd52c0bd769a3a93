"""An agent that goes offline (it is stopping) while the scheduler has just bound a batch to
it: the batch goes back to its group unless the agent has started it."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer

from qgjob_contract.events import EventType
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch
from qgjob_contract.statuses import AgentState, JobStatus
from qgjob_scheduler.consumer import Consumer

from .conftest import BATCH_MAX, World, wait_until
from .test_scheduler_job_events import started


def _bind_suite(world: World) -> tuple[list[str], Batch]:
    """A suite bound to emu-1 as one batch its worker has not taken yet."""
    suite = world.submit_suite("v1", BATCH_MAX)
    world.sync()
    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    return suite, Batch.from_json(rq_job.args[0])


def _report_offline(world: World, how: EventType) -> None:
    if how is EventType.AGENT_HEARTBEAT:
        world.heartbeat("emu-1", state=AgentState.OFFLINE, last_batch_id="an-older-batch")
    else:  # the end of the batch it ran before, which it finished while stopping
        world.batch_finished(
            "emu-1", "an-older-batch", "v1", installs=1, jobs_run=2, state=AgentState.OFFLINE
        )


@pytest.mark.parametrize("how", [EventType.AGENT_HEARTBEAT, EventType.BATCH_FINISHED])
def test_a_batch_bound_to_an_agent_that_goes_offline_before_starting_it_goes_back(
    world: World, scheduler: Consumer, how: EventType
) -> None:
    suite, batch = _bind_suite(world)

    _report_offline(world, how)

    wait_until(lambda: world.agent("emu-1").current_batch_id is None, "emu-1 released")
    assert world.agent("emu-1").state == AgentState.OFFLINE
    assert world.group("v1") == suite  # back in its group, in its order
    for job_id in suite:
        job = world.job(job_id)
        assert job.status == JobStatus.QUEUED
        assert (job.assigned_agent, job.batch_id, job.assigned_at, job.attempts) == (
            None,
            None,
            None,
            0,
        )
    assert world.redis.exists(Keys.batch(batch.batch_id)) == 0
    assert world.batches("emu-1") == []
    assert not RqJob.exists(batch.batch_id, connection=world.rq_redis)

    # the jobs wait for the next free agent, which gets them as its first attempt
    world.heartbeat("emu-2")
    [rq_job] = world.wait_batches("emu-2", 1)
    assert [job.job_id for job in Batch.from_json(rq_job.args[0]).jobs] == suite
    assert all(world.job(job_id).attempts == 1 for job_id in suite)
    world.sync()
    assert world.batches("emu-1") == []


def test_an_agent_that_goes_offline_keeps_the_batch_it_says_it_runs(
    world: World, scheduler: Consumer
) -> None:
    suite, batch = _bind_suite(world)

    world.heartbeat("emu-1", state=AgentState.OFFLINE, current_batch_id=batch.batch_id)
    world.sync()

    assert world.agent("emu-1").current_batch_id == batch.batch_id
    assert all(world.job(job_id).status == JobStatus.ASSIGNED for job_id in suite)
    assert [rq_job.id for rq_job in world.batches("emu-1")] == [batch.batch_id]


# The next two offline reports do not name the batch as running (as when a heartbeat was
# taken just before the agent began it): the scheduler's own evidence keeps the batch.


def test_an_agent_that_goes_offline_keeps_the_batch_it_has_started(
    world: World, scheduler: Consumer
) -> None:
    suite, batch = _bind_suite(world)
    world.publish(EventType.JOB_STARTED, started(suite[0], batch.batch_id))

    _report_offline(world, EventType.AGENT_HEARTBEAT)
    world.sync()

    assert world.agent("emu-1").current_batch_id == batch.batch_id
    assert world.job(suite[0]).status == JobStatus.RUNNING
    assert all(world.job(job_id).status == JobStatus.ASSIGNED for job_id in suite[1:])
    assert world.group("v1") == []
    assert [rq_job.id for rq_job in world.batches("emu-1")] == [batch.batch_id]


def test_an_agent_that_goes_offline_keeps_the_batch_its_worker_has_taken(
    world: World, scheduler: Consumer
) -> None:
    suite, batch = _bind_suite(world)
    # its worker took the RQ job (installing the app: no job started yet), then it stopped
    taken = Queue.dequeue_any(
        [world.queue("emu-1")], None, connection=world.rq_redis, serializer=JSONSerializer
    )
    assert taken is not None

    _report_offline(world, EventType.BATCH_FINISHED)
    world.sync()

    assert world.agent("emu-1").current_batch_id == batch.batch_id
    assert all(world.job(job_id).status == JobStatus.ASSIGNED for job_id in suite)
    assert world.group("v1") == []
    assert RqJob.exists(batch.batch_id, connection=world.rq_redis)
