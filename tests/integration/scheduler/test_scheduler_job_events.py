"""Agents' job reports applied to job records; poison messages dead-lettered."""

from __future__ import annotations

import pika

from qgjob_contract import deadletters, names
from qgjob_contract.deadletters import DeadLetter
from qgjob_contract.events import EventType, make_event
from qgjob_contract.statuses import JobStatus
from qgjob_scheduler.consumer import Consumer

from .conftest import World, wait_until

RESULT = {
    "outcome": "passed",
    "duration_s": 1.0,
    "install_paid": True,
    "install_s": 3.0,
    "log_tail": "1 passed",
    "driver": "simulator",
    "simulated": True,
}


def started(job_id: str, batch_id: str) -> dict[str, object]:
    return {
        "job_id": job_id,
        "batch_id": batch_id,
        "agent_id": "emu-1",
        "started_at": "2026-11-29T10:00:00.000+00:00",
    }


def finished(job_id: str, batch_id: str, **result: object) -> dict[str, object]:
    return {
        "job_id": job_id,
        "batch_id": batch_id,
        "agent_id": "emu-1",
        "finished_at": "2026-11-29T10:00:04.000+00:00",
        "result": {**RESULT, **result},
    }


def test_started_then_finished_moves_a_job_to_running_then_passed_once(
    world: World, scheduler: Consumer
) -> None:
    job_id = world.submit("v1")
    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    batch_id = rq_job.id

    world.publish(EventType.JOB_STARTED, started(job_id, "stale-batch"))
    world.sync()
    assert world.job(job_id).status == JobStatus.ASSIGNED

    world.publish(EventType.JOB_STARTED, started(job_id, batch_id))
    wait_until(lambda: world.job(job_id).status == JobStatus.RUNNING, "job running")
    assert world.job(job_id).started_at == "2026-11-29T10:00:00.000+00:00"

    world.publish(EventType.JOB_FINISHED, finished(job_id, batch_id))
    wait_until(lambda: world.job(job_id).status == JobStatus.PASSED, "job passed")
    done = world.job(job_id)
    assert done.finished_at == "2026-11-29T10:00:04.000+00:00"
    assert done.result == RESULT

    # duplicate, stale and out-of-order reports change nothing
    world.publish(EventType.JOB_FINISHED, finished(job_id, batch_id, outcome="failed"))
    world.publish(EventType.JOB_FINISHED, finished(job_id, "stale-batch", outcome="error"))
    world.publish(EventType.JOB_STARTED, started(job_id, batch_id))
    world.publish(EventType.JOB_FINISHED, finished("no-such-job", batch_id))
    world.sync()
    assert world.job(job_id) == done


def test_undecodable_and_invalid_messages_are_dead_lettered_and_consuming_goes_on(
    world: World,
    scheduler: Consumer,
    amqp_channel: pika.adapters.blocking_connection.BlockingChannel,
) -> None:
    amqp_channel.basic_publish(
        exchange=names.EXCHANGE,
        routing_key=EventType.JOBS_SUBMITTED.value,
        body=b"definitely not an event",
    )
    invalid = make_event(EventType.JOB_FINISHED, {"job_id": "j1"})  # no batch_id, no result
    world.publisher.publish(invalid)
    no_jobs = make_event(EventType.JOBS_SUBMITTED, {"jobs": []})
    world.publisher.publish(no_jobs)
    job_id = world.submit("v1")

    wait_until(lambda: world.group("v1") == [job_id], "the valid event after the poison ones")

    # the scheduler moves each dead letter from the dead-letter queue into the store
    def stored() -> list[DeadLetter]:
        return deadletters.listing(world.redis, 10)[1]

    letters = wait_until(lambda: len(stored()) == 3 and stored(), "three dead letters stored")
    assert {letter.body() for letter in letters} == {
        b"definitely not an event",
        invalid.encode(),
        no_jobs.encode(),
    }
    assert {letter.reason for letter in letters} == {"rejected"}
    assert {letter.event_id for letter in letters} >= {invalid.event_id, no_jobs.event_id}
    declared = amqp_channel.queue_declare(names.DEAD_LETTER_QUEUE, passive=True)
    assert declared.method.message_count == 0
