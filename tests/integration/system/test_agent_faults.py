"""A real agent dies mid-batch (SIGKILL), with the real scheduler running: its unfinished jobs
go back to their group in order and run on another agent (or on its own restarted process)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from rq.job import Job as RqJob

from qgjob_contract import leases
from qgjob_contract.events import EventType, utc_now
from qgjob_contract.statuses import JobStatus, RequeueReason
from qgjob_contract.targets import Target
from qgjob_scheduler.config import Config
from tests.integration.agent.conftest import AgentProcess, EventLog
from tests.integration.scheduler.conftest import (
    ORG,
    World,
    running_scheduler,
    scheduler_config,
    wait_until,
)

from .conftest import (
    AGENT_TIMEOUT_S,
    REDISPATCH_BOUND_S,
    REPORT_GRACE_S,
    TICK_S,
    Agents,
    kill,
    paths,
    read_jobs,
    submit,
    wait_final,
)

BATCH = 4
SLOW_TEST_S = "0.6"  # long enough for the kill to land mid-batch


def _config(redis_url: str, rabbitmq_url: str, health_file: Path, *, timeout_s: float) -> Config:
    return dataclasses.replace(
        scheduler_config(redis_url, rabbitmq_url, health_file),
        batch_max_jobs=BATCH,
        agent_timeout_s=timeout_s,
        tick_s=TICK_S,
        report_grace_s=REPORT_GRACE_S,
    )


def _kill_mid_batch(
    world: World, agents: Agents, job_ids: list[str], agent_id: str | None = None
) -> tuple[AgentProcess, str, str, float]:
    """Start an agent, let it finish the first job of the batch, SIGKILL it; returns
    (the dead agent, the dead batch id, its instance id, time of the kill)."""
    victim = agents.start(agent_id, SIM_TEST_SECONDS=SLOW_TEST_S)
    wait_until(
        lambda: world.job(job_ids[0]).status == JobStatus.PASSED, "the batch's first job passed"
    )
    dead_batch = world.job(job_ids[-1]).batch_id
    assert dead_batch is not None
    instance = leases.read(world.redis, [victim.agent_id])[victim.agent_id].instance_id
    kill(victim.process)
    return victim, dead_batch, instance, time.monotonic()


def _requeued_from(world: World, job_ids: list[str], batch_id: str) -> list[str]:
    """The jobs whose history names `batch_id` as an attempt retried (read in one round trip)."""
    jobs = read_jobs(world.redis, job_ids)
    return [
        j
        for j in job_ids
        if any(h["batch_id"] == batch_id and h["retried"] for h in jobs[j].history)
    ]


def test_killed_agent_jobs_run_elsewhere_in_order_and_late_reports_change_nothing(
    world: World,
    *,
    agents: Agents,
    event_log: EventLog,
    redis_url: str,
    rabbitmq_url: str,
    health_file: Path,
) -> None:
    config = _config(redis_url, rabbitmq_url, health_file, timeout_s=AGENT_TIMEOUT_S)
    with running_scheduler(world, config):
        job_ids = submit(world, "v1", paths(BATCH))
        victim, dead_batch, dead_instance, killed_at = _kill_mid_batch(world, agents, job_ids)
        survivor = agents.start()

        # The dead batch's unfinished jobs come back with its history, then run on the survivor.
        wait_until(
            lambda: _requeued_from(world, job_ids, dead_batch),
            "the dead agent's jobs requeued",
            timeout=REDISPATCH_BOUND_S,
        )
        requeued = _requeued_from(world, job_ids, dead_batch)  # one script moved them all
        # The survivor's first report: its first job.started, or (when the outbox folded
        # the batch's job events into it) the batch.finished, whose reports come in run order.
        first_elsewhere = event_log.wait_for(
            lambda e: (
                e.type in {EventType.JOB_STARTED, EventType.BATCH_FINISHED}
                and e.payload["agent_id"] == survivor.agent_id
            ),
            timeout_s=REDISPATCH_BOUND_S,
        )
        redispatch_s = time.monotonic() - killed_at
        jobs = wait_final(world.redis, job_ids, "every job final")
        event_log.drain()

        # What a user sees: every job passed once, the requeued ones on their second attempt.
        assert {j.status for j in jobs.values()} == {JobStatus.PASSED.value}
        done_on_victim = [j for j in job_ids if j not in requeued]
        assert done_on_victim, "the first job finished before the kill"
        assert requeued == job_ids[len(done_on_victim) :], "the unfinished jobs are a suffix"
        for job_id in done_on_victim:
            assert (jobs[job_id].assigned_agent, jobs[job_id].attempts) == (victim.agent_id, 1)
            # its one attempt, the final one, is its history
            assert [(h["agent_id"], h["outcome"]) for h in jobs[job_id].history] == [
                (victim.agent_id, JobStatus.PASSED.value)
            ]
        for job_id in requeued:
            job = jobs[job_id]
            assert job.assigned_agent == survivor.agent_id
            assert job.batch_id != dead_batch
            assert job.attempts == 2
            lost, final = job.history
            assert (lost["agent_id"], lost["batch_id"], lost["instance_id"], lost["reason"]) == (
                victim.agent_id,
                dead_batch,
                dead_instance,
                RequeueReason.AGENT_LOST.value,
            )
            assert (final["agent_id"], final["outcome"]) == (
                survivor.agent_id,
                JobStatus.PASSED.value,
            )
        # In their order: the survivor ran them in the order they were submitted (its
        # batch.finished reports every job, in run order; the job.started it sent before a
        # batch ended are the first of them: the outbox folds only what still waited).
        ran = [
            job_id
            for e in event_log.of(EventType.BATCH_FINISHED)
            if e.payload["agent_id"] == survivor.agent_id
            for job_id in e.payload["reports"]
        ]
        assert ran == requeued
        started = [
            e.payload["job_id"]
            for e in event_log.of(EventType.JOB_STARTED)
            if e.payload["agent_id"] == survivor.agent_id
        ]
        assert started == ran[: len(started)]
        payload = first_elsewhere.payload
        first = payload.get("job_id") or next(iter(payload["reports"]))
        assert first == requeued[0]
        print(f"FIGURE killed agent -> its first job started elsewhere: {redispatch_s:.2f} s")
        assert redispatch_s <= REDISPATCH_BOUND_S
        # The dead agent's RQ job is withdrawn.
        assert not RqJob.exists(dead_batch, connection=world.rq_redis)

        # Late reports of the dead batch (a job.finished and its batch.finished) change nothing.
        before = read_jobs(world.redis, job_ids)
        late = requeued[-1]
        failed = {**jobs[late].result, "outcome": JobStatus.FAILED.value}  # type: ignore[dict-item]
        world.publish(
            EventType.JOB_FINISHED,
            {
                "job_id": late,
                "batch_id": dead_batch,
                "agent_id": victim.agent_id,
                "finished_at": utc_now(),
                "result": failed,
            },
        )
        world.publish(
            EventType.BATCH_FINISHED,
            {
                "agent_id": victim.agent_id,
                "instance_id": dead_instance,
                "seq": 1_000_000,
                "target": Target.EMULATOR.value,
                "state": "idle",
                "installed_app_version": "v1",
                "installed_org_id": ORG,
                "installs": 1,
                "jobs_run": BATCH,
                "batch_id": dead_batch,
                "reports": {
                    j: {"started_at": None, "finished_at": utc_now(), "result": failed}
                    for j in requeued
                },
            },
        )
        world.sync()
        time.sleep(REPORT_GRACE_S + 2 * TICK_S)  # past the grace: a settle would have run
        world.sync()
        assert read_jobs(world.redis, job_ids) == before


def test_restarted_agent_ends_its_old_batch_at_once_and_takes_work(
    world: World,
    agents: Agents,
    redis_url: str,
    rabbitmq_url: str,
    health_file: Path,
) -> None:
    long_timeout_s = 30.0  # the requeue must come from the new instance, not the lease expiry
    config = _config(redis_url, rabbitmq_url, health_file, timeout_s=long_timeout_s)
    with running_scheduler(world, config):
        job_ids = submit(world, "v1", paths(BATCH))
        _, dead_batch, dead_instance, killed_at = _kill_mid_batch(
            world, agents, job_ids, "emulator-restarting"
        )
        reborn = agents.start("emulator-restarting")

        wait_until(
            lambda: _requeued_from(world, job_ids, dead_batch),
            "the old instance's batch requeued",
            timeout=long_timeout_s,
        )
        requeue_s = time.monotonic() - killed_at
        requeued = _requeued_from(world, job_ids, dead_batch)  # one script moved them all
        jobs = wait_final(world.redis, job_ids, "every job final")
        new_instance = leases.read(world.redis, [reborn.agent_id])[reborn.agent_id].instance_id

        print(f"FIGURE restarted agent -> old batch requeued: {requeue_s:.2f} s")
        assert requeue_s < long_timeout_s / 3, f"requeued {requeue_s:.1f} s after the kill"
        assert new_instance != dead_instance
        assert {j.status for j in jobs.values()} == {JobStatus.PASSED.value}
        assert requeued == job_ids[BATCH - len(requeued) :]
        for job_id in requeued:
            job = jobs[job_id]
            assert job.attempts == 2
            assert job.batch_id != dead_batch
            assert [(h["instance_id"], h["reason"]) for h in job.history if h["retried"]] == [
                (dead_instance, RequeueReason.AGENT_RESTARTED.value)
            ]
            assert [h["outcome"] for h in job.history] == ["error", JobStatus.PASSED.value]
        assert not RqJob.exists(dead_batch, connection=world.rq_redis)
        assert world.agent(reborn.agent_id).instance_id == new_instance

        # The new instance is free and takes new work.
        more = submit(world, "v2", paths(2))
        more_jobs = wait_final(world.redis, more, "the new request final", timeout=20)
        assert {(j.status, j.assigned_agent, j.attempts) for j in more_jobs.values()} == {
            (JobStatus.PASSED.value, reborn.agent_id, 1)
        }
