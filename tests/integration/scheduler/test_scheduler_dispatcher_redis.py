"""The handler and the dispatcher driven directly on the real Redis (no broker, no thread):
the order of jobs in a group, what a dispatch pass leaves behind when enqueueing fails, how
groups take turns, and which targets the handlers mark for a pass."""

from __future__ import annotations

import logging
from typing import cast

import pytest
import redis

from qgjob_contract.events import EventType, make_event, timestamp_ms, utc_now
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch
from qgjob_contract.statuses import JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler.dispatch import Dispatcher, Enqueue, Requeuer, enqueue_batch
from qgjob_scheduler.grouping import group_score
from qgjob_scheduler.handlers import EventHandler

from .conftest import BATCH_MAX, ORG, World, submitted_event
from .test_scheduler_job_events import started

EMULATOR = Target.EMULATOR.value


def dispatcher(world: World, enqueue: Enqueue = enqueue_batch) -> Dispatcher:
    return Dispatcher(
        world.redis,
        world.rq_redis,
        Requeuer(world.redis, world.rq_redis),
        batch_max=BATCH_MAX,
        agent_timeout_s=60,
        enqueue=enqueue,
    )


def make_handler(world: World) -> EventHandler:
    return EventHandler(world.redis, take_back=dispatcher(world).take_back)


def scores(world: World, key: str) -> list[tuple[str, float]]:
    return cast(list[tuple[str, float]], world.redis.zrange(key, 0, -1, withscores=True))


def test_jobs_join_their_group_in_submission_order_then_by_priority(world: World) -> None:
    handler = make_handler(world)
    handler.handle(
        submitted_event(
            [
                world.store_job("v1", job_id="c"),
                world.store_job("v1", job_id="b", priority=10),
                world.store_job("v1", job_id="a"),
            ]
        )
    )
    created_at = world.next_time()  # one request: every job has the same created_at
    later = [world.store_job("v1", job_id=job_id, created_at=created_at) for job_id in "zyx"]
    handler.handle(submitted_event(later))
    handler.handle(submitted_event(later))  # redelivered: takes no new arrival number

    assert scores(world, Keys.group(EMULATOR, ORG, "v1")) == [
        ("b", group_score(10, 2)),
        ("c", group_score(1, 1)),
        ("a", group_score(1, 3)),
        ("z", group_score(1, 4)),
        ("y", group_score(1, 5)),
        ("x", group_score(1, 6)),
    ]
    assert world.redis.get(Keys.ARRIVAL_SEQ) == "6"


def test_a_batch_that_cannot_be_enqueued_is_handed_back_to_its_group(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    handler = make_handler(world)
    jobs = [world.store_job("v1") for _ in range(BATCH_MAX + 1)]
    handler.handle(submitted_event(jobs))
    handler.handle(world.heartbeat_event("emu-1"))
    group_before = scores(world, Keys.group(EMULATOR, ORG, "v1"))
    groups_before = scores(world, Keys.groups(EMULATOR))
    cancelled = jobs[1].job_id

    def failing_enqueue(_connection: redis.Redis, batch: Batch) -> None:
        assert world.agent("emu-1").current_batch_id == batch.batch_id  # handed over
        # meanwhile one job of the batch left it (cancelled): the undo leaves it alone
        world.redis.hset(Keys.job(cancelled), "status", JobStatus.CANCELLED.value)
        raise redis.ConnectionError("enqueue failed")

    caplog.set_level(logging.INFO, logger="qgjob_scheduler.dispatch")
    assert dispatcher(world, failing_enqueue).dispatch(EMULATOR) == []

    back = [job.job_id for job in jobs if job.job_id != cancelled]
    assert scores(world, Keys.group(EMULATOR, ORG, "v1")) == [
        (job_id, score) for job_id, score in group_before if job_id != cancelled
    ]
    assert scores(world, Keys.groups(EMULATOR)) == groups_before
    for job_id in back:
        job = world.job(job_id)
        assert job.status == JobStatus.QUEUED
        assert (job.assigned_agent, job.batch_id, job.assigned_at, job.attempts) == (
            None,
            None,
            None,
            0,
        )
    assert world.job(cancelled).status == JobStatus.CANCELLED
    assert world.agent("emu-1").current_batch_id is None
    assert world.redis.keys(Keys.batch("*")) == []
    assert world.batches("emu-1") == []
    undone = [
        r.getMessage()
        for r in caplog.records
        if "requeued (not_enqueued)" in r.getMessage() or "left it meanwhile" in r.getMessage()
    ]
    assert any(",".join(back[:2]) in message for message in undone), undone
    assert any(cancelled in message for message in undone), undone

    # the agent is free again and gets the same jobs, in the same order, as attempt 1
    [batch] = dispatcher(world).dispatch(EMULATOR)
    assert [job.job_id for job in batch.jobs] == back[:BATCH_MAX]
    assert [world.job(job_id).attempts for job_id in back[:BATCH_MAX]] == [1] * BATCH_MAX


def test_a_group_partly_taken_goes_behind_the_groups_that_were_waiting(world: World) -> None:
    handler = make_handler(world)
    handler.handle(submitted_event([world.store_job("busy") for _ in range(BATCH_MAX + 2)]))
    handler.handle(submitted_event([world.store_job("quiet")]))  # arrived after all of busy
    passes = dispatcher(world)

    handler.handle(world.heartbeat_event("emu-1"))
    before = timestamp_ms(utc_now())
    [first] = passes.dispatch(EMULATOR)
    assert (first.app_version_id, len(first.jobs)) == ("busy", BATCH_MAX)
    # busy re-arrived at the pop: now behind quiet, which waits since its own arrival
    groups = dict(scores(world, Keys.groups(EMULATOR)))
    assert groups[f"{ORG}:busy"] >= before > groups[f"{ORG}:quiet"]
    # a job created before the pop, whose event comes late, does not pull busy forward
    lagging = world.store_job("busy")
    handler.handle(submitted_event([lagging]))
    assert timestamp_ms(lagging.created_at) < groups[f"{ORG}:busy"]
    assert dict(scores(world, Keys.groups(EMULATOR))) == groups

    handler.handle(world.heartbeat_event("emu-2"))
    [second] = passes.dispatch(EMULATOR)
    assert second.app_version_id == "quiet"

    handler.handle(world.heartbeat_event("emu-3"))
    [third] = passes.dispatch(EMULATOR)
    assert (third.app_version_id, len(third.jobs)) == ("busy", 3)
    assert third.jobs[-1].job_id == lagging.job_id
    assert scores(world, Keys.groups(EMULATOR)) == []


def test_handlers_mark_the_targets_whose_situation_changed(world: World) -> None:
    handler = make_handler(world)
    device_job = world.store_job("v1", target=Target.DEVICE)
    gone = world.store_job("v1", target=Target.BROWSERSTACK, store=False)
    handler.handle(submitted_event([world.store_job("v1"), device_job, gone]))
    assert handler.take_dirty() == [Target.DEVICE.value, EMULATOR]  # nothing joined on bs
    assert handler.take_dirty() == []

    handler.handle(submitted_event([device_job]))  # redelivered: changes nothing
    handler.handle(world.heartbeat_event("bs-1", target=Target.BROWSERSTACK))  # it may be free
    assert handler.take_dirty() == [Target.BROWSERSTACK.value, Target.DEVICE.value]
    assert world.group("v1", Target.DEVICE) == [device_job.job_id]

    handler.handle(make_event(EventType.JOB_STARTED, started(device_job.job_id, "some-batch")))
    assert handler.take_dirty() == []  # a job report changes no agent or group
