"""Dead letters end to end with the real scheduler and the real admin API: an invalid event is
dead-lettered at once, a handler that keeps raising is retried with backoff and then
dead-lettered, both are stored and listed, and a replay republishes an entry once."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from qgjob_contract import deadletters, names
from qgjob_contract.events import Envelope, EventType, make_event, utc_now
from qgjob_contract.names import Keys
from qgjob_contract.statuses import JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler.config import Config
from qgjob_scheduler.consumer import retry_backoff_s
from tests.integration.api.conftest import MakeClient
from tests.integration.scheduler.conftest import World, running_scheduler, wait_until

from .conftest import FINAL_LINE

HANDLER_ERROR = "unexpected error handling"


def _stored(world: World, event_id: str) -> deadletters.DeadLetter | None:
    _, letters = deadletters.listing(world.redis, 100)
    return next((letter for letter in letters if letter.event_id == event_id), None)


def _messages(caplog: pytest.LogCaptureFixture, *parts: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if all(p in r.getMessage() for p in parts)]


def _running_job_with_corrupt_record(world: World) -> tuple[str, Envelope, dict[str, Any]]:
    """A running job whose record is corrupt (priority is not a number), and the valid
    job.finished of its batch: the handler raises on it at every delivery."""
    job = world.store_job("v1")
    batch_id = "batch-of-a-corrupt-job"
    world.redis.hset(
        Keys.job(job.job_id),
        mapping={
            "status": JobStatus.RUNNING.value,
            "batch_id": batch_id,
            "assigned_agent": "agent-x",
            "attempts": "1",
            "priority": "not-a-number",
        },
    )
    result = {
        "outcome": JobStatus.PASSED.value,
        "duration_s": 0.1,
        "install_paid": False,
        "install_s": 0.0,
        "log_tail": "ok",
        "driver": "simulator",
        "simulated": True,
    }
    finished = make_event(
        EventType.JOB_FINISHED,
        {
            "job_id": job.job_id,
            "batch_id": batch_id,
            "agent_id": "agent-x",
            "finished_at": utc_now(),
            "result": result,
        },
    )
    return job.job_id, finished, result


def test_invalid_event_dead_lettered_at_once_bug_retried_then_dead_lettered_replay_once(
    world: World,
    config: Config,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qgjob_scheduler")
    api = make_client()
    with running_scheduler(world, config):
        # 1. Schema-invalid: dead-lettered at once, never retried.
        invalid = make_event(EventType.JOB_FINISHED, {"job_id": "no-such-fields"})
        world.publisher.publish(invalid)
        letter = wait_until(lambda: _stored(world, invalid.event_id), "the invalid event stored")
        assert (letter.type, letter.reason, letter.routing_key) == (
            EventType.JOB_FINISHED.value,
            "rejected",
            EventType.JOB_FINISHED.value,
        )
        assert letter.queue == names.SCHEDULER_QUEUE
        assert _messages(caplog, HANDLER_ERROR, invalid.event_id) == []

        # 2. A handler bug: a valid job.finished whose job record is corrupt (priority is not
        # a number) makes the handler raise on every delivery.
        job_id, finished, result = _running_job_with_corrupt_record(world)
        published_at = time.monotonic()
        world.publisher.publish(finished)
        # An event behind it in the queue waits for the retries (one active consumer, in order).
        seq = str(world.heartbeat("agent-behind", target=Target.BROWSERSTACK, lease=False))
        wait_until(
            lambda: world.redis.hget(Keys.agent("agent-behind"), "seq") == seq,
            "the event behind the failing one applied",
            60,
        )
        behind_s = time.monotonic() - published_at
        print(f"FIGURE event behind a failing one applied after {behind_s:.2f} s")
        letter = wait_until(
            lambda: _stored(world, finished.event_id), "the failing event dead-lettered", 60
        )
        took_s = time.monotonic() - published_at
        failures = _messages(caplog, HANDLER_ERROR, finished.event_id)
        assert letter.reason == "delivery_limit"
        # Retried up to the delivery limit, each time after its backoff, logged with its ids.
        assert len(failures) == names.DELIVERY_LIMIT + 1
        assert all(job_id in line for line in failures)
        assert took_s >= sum(retry_backoff_s(n) for n in range(1, names.DELIVERY_LIMIT + 1))
        assert world.redis.hget(Keys.job(job_id), "status") == JobStatus.RUNNING.value

        # 3. The operator lists them through the admin API.
        listed = api.get("/v1/admin/dead-letters")
        assert listed.status_code == 200
        body = listed.get_json()
        assert body["total"] == 2
        assert {e["event_id"]: e["reason"] for e in body["dead_letters"]} == {
            invalid.event_id: "rejected",
            finished.event_id: "delivery_limit",
        }

        # 4. The bug is fixed (the record repaired), the event replayed: applied once.
        world.redis.hset(Keys.job(job_id), "priority", "1")
        replay = api.post("/v1/admin/dead-letters/replay", json={"event_ids": [finished.event_id]})
        assert replay.status_code == 200
        assert replay.get_json() == {
            "replayed": [finished.event_id],
            "missing": [],
            "unreplayable": [],
        }
        again = api.post("/v1/admin/dead-letters/replay", json={"event_ids": [finished.event_id]})
        assert again.get_json()["missing"] == [finished.event_id]
        wait_until(lambda: world.job(job_id).status == JobStatus.PASSED, "the replay applied")
        world.sync()
        repaired = world.job(job_id)
        assert (repaired.status, repaired.result, repaired.attempts) == (
            JobStatus.PASSED.value,
            result,
            1,
        )
        applied = [m[1] for r in caplog.records for m in FINAL_LINE.finditer(r.getMessage())]
        assert applied.count(job_id) == 1
        assert _stored(world, finished.event_id) is None

        # 5. Replaying the invalid one republishes it once: it fails again, dead-lettered anew.
        replay = api.post("/v1/admin/dead-letters/replay", json={"event_ids": [invalid.event_id]})
        assert replay.get_json()["replayed"] == [invalid.event_id]
        wait_until(lambda: _stored(world, invalid.event_id), "the invalid event stored again")
        world.sync()
        assert len(_messages(caplog, "dead-lettered", invalid.event_id)) == 2
        assert deadletters.listing(world.redis, 100)[0] == 1
