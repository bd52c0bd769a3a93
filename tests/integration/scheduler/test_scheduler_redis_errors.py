"""A Redis error while the scheduler applies an event: consuming stops and starts again, so
the events are applied in the order they were published and none is dead-lettered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pytest
import redis
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from qgjob_contract import names
from qgjob_contract.events import EventType
from qgjob_contract.statuses import JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler import transitions
from qgjob_scheduler.config import Config
from qgjob_scheduler.dispatch import Dispatcher, Requeuer
from qgjob_scheduler.handlers import EventHandler

from .conftest import (
    World,
    running_scheduler,
    submitted_event,
    wait_until,
)
from .test_scheduler_job_events import RESULT, finished, started


class FailingTwice:
    """`apply`, except that its first two calls raise `error`."""

    def __init__(self, apply: Callable[..., Any], error: redis.RedisError) -> None:
        self.apply, self.error, self.calls = apply, error, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls <= 2:
            raise self.error
        return self.apply(*args)


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Connection reset by peer"),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ReadOnlyError("You can't write against a read only replica."),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_redis_error_neither_reorders_nor_dead_letters_events(
    world: World,
    config: Config,
    amqp_channel: pika.adapters.blocking_connection.BlockingChannel,
    monkeypatch: pytest.MonkeyPatch,
    error: redis.RedisError,
) -> None:
    # a job dispatched to emu-1 before the consumer runs
    requeuer = Requeuer(world.redis, world.rq_redis)
    dispatcher = Dispatcher(world.redis, world.rq_redis, requeuer, batch_max=3, agent_timeout_s=60)
    handler = EventHandler(world.redis, take_back=dispatcher.take_back)
    job = world.store_job("v1")
    handler.handle(submitted_event([job]))
    handler.handle(world.heartbeat_event("emu-1"))
    [batch] = dispatcher.dispatch(Target.EMULATOR.value)
    # its agent ran it; the consumer receives the three reports together (one prefetch)
    world.publish(EventType.JOB_STARTED, started(job.job_id, batch.batch_id))
    world.publish(EventType.JOB_FINISHED, finished(job.job_id, batch.batch_id))
    world.batch_finished(
        "emu-1",
        batch.batch_id,
        "v1",
        installs=1,
        jobs_run=1,
        reported=[finished(job.job_id, batch.batch_id)],
    )
    # applying the job.finished fails twice: once after the job.started was applied, once as
    # the first event of the next connection (which then backs off)
    flaky = FailingTwice(transitions.apply_finished, error)
    monkeypatch.setattr(transitions, "apply_finished", flaky)

    with running_scheduler(world, config):
        wait_until(lambda: world.agent("emu-1").current_batch_id is None, "the batch ended")
        world.sync()

    assert flaky.calls == 3
    done = world.job(job.job_id)
    assert (done.status, done.result) == (JobStatus.PASSED, RESULT)
    declared = amqp_channel.queue_declare(names.DEAD_LETTER_QUEUE, passive=True)
    assert declared.method.message_count == 0
