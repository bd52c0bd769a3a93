"""The scheduler against real RabbitMQ and Redis: grouping, dispatch, agent bookkeeping."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rq import Queue

from qgjob_contract import names
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch
from qgjob_contract.statuses import AgentState, JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler.consumer import Consumer

from .conftest import BATCH_MAX, World, running_scheduler, scheduler_config, wait_until


def test_submitted_jobs_wait_in_their_groups_while_no_agent_is_free(
    world: World, scheduler: Consumer
) -> None:
    first = world.store_job("v1")
    rolled_back = world.store_job("v1", store=False)  # the API removed it after a failure
    other = world.store_job("v2", target=Target.DEVICE)
    last = world.store_job("v1")
    world.publish_submitted([first, rolled_back, other, last])  # one request, mixed
    world.sync()

    assert world.group("v1") == [first.job_id, last.job_id]
    assert world.groups() == ["v1"]
    assert world.group("v2", Target.DEVICE) == [other.job_id]
    assert world.groups(Target.DEVICE) == ["v2"]
    assert all(world.job(job.job_id).status == JobStatus.QUEUED for job in [first, other, last])
    assert world.redis.exists(Keys.job(rolled_back.job_id)) == 0
    assert Queue.all(connection=world.rq_redis) == []


def test_a_suite_submitted_while_agents_are_free_goes_to_one_agent_as_one_batch(
    world: World, scheduler: Consumer
) -> None:
    world.heartbeat("emu-1")
    world.heartbeat("emu-2")
    world.sync()

    suite = world.submit_suite("v1", BATCH_MAX)
    batches = wait_until(
        lambda: world.batches("emu-1") + world.batches("emu-2"), "the suite's batch"
    )
    world.sync()
    [rq_job] = world.batches("emu-1") + world.batches("emu-2")
    assert batches == [rq_job]
    assert [job.job_id for job in Batch.from_json(rq_job.args[0]).jobs] == suite
    assert world.groups() == []


def test_a_suite_is_dispatched_in_submission_order_whatever_its_job_ids(
    world: World, scheduler: Consumer
) -> None:
    suite = world.submit_suite("v1", BATCH_MAX, job_ids=["job-c", "job-b", "job-a"])
    world.sync()
    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    assert [job.job_id for job in Batch.from_json(rq_job.args[0]).jobs] == suite


def test_dispatch_follows_events_without_waiting_for_the_tick(
    world: World, redis_url: str, rabbitmq_url: str, health_file: Path
) -> None:
    config = replace(scheduler_config(redis_url, rabbitmq_url, health_file), tick_s=60.0)
    with running_scheduler(world, config):
        wait_until(health_file.exists, "the first tick")
        job_id = world.submit("v1")
        world.sync()
        world.heartbeat("emu-1")
        [rq_job] = world.wait_batches("emu-1", 1, timeout=5.0)
        assert [job.job_id for job in Batch.from_json(rq_job.args[0]).jobs] == [job_id]


def test_idle_agent_heartbeat_produces_one_batch_of_one_version(
    world: World, scheduler: Consumer
) -> None:
    v1 = [world.submit("v1") for _ in range(BATCH_MAX + 1)]
    urgent = world.submit("v1", priority=5)  # arrives last, runs first
    v2 = world.submit("v2")
    world.sync()

    world.heartbeat("emu-1")
    world.sync()

    [rq_job] = world.wait_batches("emu-1", 1)
    assert rq_job.func_name == names.RUN_BATCH_FUNCTION
    batch = Batch.from_json(rq_job.args[0])
    assert rq_job.id == batch.batch_id
    assert (batch.agent_id, batch.target, batch.app_version_id) == ("emu-1", "emulator", "v1")
    assert [job.job_id for job in batch.jobs] == [urgent, *v1[: BATCH_MAX - 1]]
    for job_id in [urgent, *v1[: BATCH_MAX - 1]]:
        job = world.job(job_id)
        assert job.status == JobStatus.ASSIGNED
        assert (job.assigned_agent, job.batch_id, job.attempts) == ("emu-1", batch.batch_id, 1)
        assert job.assigned_at is not None
    # what did not fit stays queued in its group
    assert world.group("v1") == v1[BATCH_MAX - 1 :]
    assert world.group("v2") == [v2]
    assert all(world.job(j).status == JobStatus.QUEUED for j in [*v1[BATCH_MAX - 1 :], v2])
    assert world.agent("emu-1").current_batch_id == batch.batch_id
    # the batch record in Redis says the same
    stored = world.redis.hgetall(Keys.batch(batch.batch_id))
    assert Batch.from_json({**stored, "jobs": json.loads(stored["jobs"])}) == batch


def test_busy_agent_gets_nothing_more_until_its_batch_finishes(
    world: World, scheduler: Consumer
) -> None:
    first = world.submit("v1")
    world.sync()
    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    first_batch = rq_job.id

    second = world.submit("v1")
    # its worker has not picked the batch up yet: it still reports idle, its last batch older
    world.heartbeat(
        "emu-1", state=AgentState.IDLE, current_batch_id=None, last_batch_id="some-older-batch"
    )
    world.batch_finished("emu-1", "some-older-batch", "v1", installs=1, jobs_run=0)
    world.sync()
    assert len(world.batches("emu-1")) == 1
    assert world.job(second).status == JobStatus.QUEUED
    assert world.group("v1") == [second]
    assert world.agent("emu-1").current_batch_id == first_batch

    world.batch_finished("emu-1", first_batch, "v1", installs=1, jobs_run=1)
    batches = world.wait_batches("emu-1", 2)
    next_batch = Batch.from_json(batches[1].args[0])
    assert [job.job_id for job in next_batch.jobs] == [second]
    agent = world.agent("emu-1")
    assert (agent.installed_app_version, agent.installs, agent.jobs_run) == ("v1", 1, 1)
    assert agent.current_batch_id == next_batch.batch_id
    assert world.job(first).batch_id == first_batch
    assert world.groups() == []


def test_free_agent_takes_the_version_it_has_installed_first(
    world: World, scheduler: Consumer
) -> None:
    old = world.submit("v-old")
    warm = world.submit("v-warm")
    world.sync()

    world.heartbeat("emu-warm", installed="v-warm")
    [warm_batch] = world.wait_batches("emu-warm", 1)
    assert Batch.from_json(warm_batch.args[0]).app_version_id == "v-warm"
    assert world.job(warm).assigned_agent == "emu-warm"
    assert world.job(old).status == JobStatus.QUEUED

    world.heartbeat("emu-cold")
    [cold_batch] = world.wait_batches("emu-cold", 1)
    assert Batch.from_json(cold_batch.args[0]).app_version_id == "v-old"
    assert world.job(old).assigned_agent == "emu-cold"


def test_agents_only_take_work_of_their_own_target(world: World, scheduler: Consumer) -> None:
    device_job = world.submit("v1", target=Target.DEVICE)
    world.sync()
    world.heartbeat("emu-1")
    world.sync()
    assert world.batches("emu-1") == []

    world.heartbeat("dev-1", target=Target.DEVICE)
    [rq_job] = world.wait_batches("dev-1", 1)
    assert [j.job_id for j in Batch.from_json(rq_job.args[0]).jobs] == [device_job]


def test_offline_agent_gets_no_batch(world: World, scheduler: Consumer) -> None:
    world.submit("v1")
    world.heartbeat("emu-1", state=AgentState.OFFLINE)
    world.sync()
    assert world.batches("emu-1") == []
    assert world.agent("emu-1").state == AgentState.OFFLINE


def test_duplicate_submitted_event_does_not_requeue_an_assigned_job(
    world: World, scheduler: Consumer
) -> None:
    job_id = world.submit("v1")
    world.heartbeat("emu-1")
    world.wait_batches("emu-1", 1)

    world.submit("v1", job_id=job_id, store=False)  # redelivered jobs.submitted
    world.sync()
    assert world.job(job_id).status == JobStatus.ASSIGNED
    assert world.group("v1") == []
