"""Cancel through the API against the real Redis and RabbitMQ: the marks on the records, the
one jobs.cancel_requested event, 409 on a final job, the bulk and run forms, the outage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask.testing import FlaskClient

from qgjob_contract.events import Envelope, EventType, is_timestamp
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from tests.integration.api.conftest import MakeClient

UNREACHABLE_AMQP = "amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1&socket_timeout=1"
JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}

Events = Callable[[], list[Envelope]]


def _submit(client: FlaskClient, count: int = 1) -> list[str]:
    jobs = [{**JOB, "test_path": f"tests/t{i}.spec.js"} for i in range(count)]
    response = client.post("/v1/jobs", json=jobs)
    assert response.status_code == 201, response.get_json()
    return [job["job_id"] for job in response.get_json()["jobs"]]


def _finish(redis_client: redis.Redis, job_id: str, status: str) -> None:
    """What the scheduler does when a job ends (the API only reads the status)."""
    redis_client.hset(Keys.job(job_id), mapping={"status": status})


def _record(redis_client: redis.Redis, job_id: str) -> Job:
    return Job.from_redis(redis_client.hgetall(Keys.job(job_id)))


def _only_cancel_event(events: Events) -> Envelope:
    cancels = [event for event in events() if event.type is EventType.JOBS_CANCEL_REQUESTED]
    assert len(cancels) == 1, cancels
    return cancels[0]


def test_cancel_of_a_queued_job_marks_it_publishes_one_event_and_answers_202(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    (job_id,) = _submit(client)
    scheduler_events()  # the jobs.submitted

    response = client.post(f"/v1/jobs/{job_id}/cancel")

    assert response.status_code == 202
    body = response.get_json()
    assert body["job_id"] == job_id
    assert body["status"] == "queued"  # the scheduler ends it; the API only asks
    assert body["cancel_requested_by"] == "anonymous"
    assert is_timestamp(body["cancel_requested_at"])
    stored = _record(redis_client, job_id)
    assert (stored.cancel_requested_at, stored.cancel_requested_by) == (
        body["cancel_requested_at"],
        "anonymous",
    )
    event = _only_cancel_event(scheduler_events)
    assert event.payload == {
        "job_ids": [job_id],
        "requested_by": "anonymous",
        "requested_at": body["cancel_requested_at"],
    }


def test_cancel_of_a_final_job_is_409_and_changes_nothing(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    (job_id,) = _submit(client)
    _finish(redis_client, job_id, "passed")
    before = redis_client.hgetall(Keys.job(job_id))
    scheduler_events()

    response = client.post(f"/v1/jobs/{job_id}/cancel")

    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "already_final"
    assert "already final (passed)" in body["message"]
    assert redis_client.hgetall(Keys.job(job_id)) == before
    assert scheduler_events() == []


def test_cancel_of_an_unknown_job_is_404(client: FlaskClient, scheduler_events: Events) -> None:
    response = client.post("/v1/jobs/no-such-job/cancel")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert scheduler_events() == []


def test_a_second_cancel_keeps_the_first_who_and_when_and_publishes_again(
    client: FlaskClient, scheduler_events: Events
) -> None:
    (job_id,) = _submit(client)
    scheduler_events()
    first = client.post(f"/v1/jobs/{job_id}/cancel").get_json()
    _only_cancel_event(scheduler_events)

    again = client.post(f"/v1/jobs/{job_id}/cancel")

    assert again.status_code == 202
    assert again.get_json()["cancel_requested_at"] == first["cancel_requested_at"]
    event = _only_cancel_event(scheduler_events)
    assert event.payload["job_ids"] == [job_id]


def test_bulk_cancel_says_which_were_requested_final_or_unknown(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    queued, done, running = _submit(client, 3)
    _finish(redis_client, done, "failed")
    _finish(redis_client, running, "running")
    scheduler_events()

    response = client.post(
        "/v1/jobs/cancel", json={"job_ids": [queued, done, "ghost", running, queued]}
    )

    assert response.status_code == 202
    assert response.get_json() == {
        "requested": [queued, running],
        "already_final": [{"job_id": done, "status": "failed"}],
        "not_found": ["ghost"],
    }
    event = _only_cancel_event(scheduler_events)
    assert event.payload["job_ids"] == [queued, running]
    assert _record(redis_client, done).cancel_requested_at is None


def test_bulk_cancel_with_nothing_left_to_cancel_is_200_and_publishes_nothing(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    (job_id,) = _submit(client)
    _finish(redis_client, job_id, "error")
    scheduler_events()

    response = client.post("/v1/jobs/cancel", json={"job_ids": [job_id, "ghost"]})

    assert response.status_code == 200
    assert response.get_json()["requested"] == []
    assert scheduler_events() == []


def test_cancel_of_a_run_asks_for_every_unfinished_job_of_it(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    run = {**{k: v for k, v in JOB.items() if k != "test_path"}, "tests": ["a.js", "b.js", "c.js"]}
    created = client.post("/v1/runs", json=run).get_json()
    first, second, third = created["job_ids"]
    _finish(redis_client, second, "passed")
    scheduler_events()

    response = client.post("/v1/jobs/cancel", json={"run_id": created["run_id"]})

    assert response.status_code == 202
    body = response.get_json()
    assert body["run_id"] == created["run_id"]
    assert body["requested"] == [first, third]
    assert body["already_final"] == [{"job_id": second, "status": "passed"}]
    assert _only_cancel_event(scheduler_events).payload["job_ids"] == [first, third]


def test_cancel_of_an_unknown_run_is_404(client: FlaskClient) -> None:
    response = client.post("/v1/jobs/cancel", json={"run_id": "no-such-run"})
    assert response.status_code == 404


def test_bad_bulk_bodies_are_400_naming_the_field(client: FlaskClient) -> None:
    cases: list[tuple[Any, str]] = [
        ({}, "body"),
        ({"job_ids": ["a"], "run_id": "r"}, "body"),
        ({"job_ids": []}, "job_ids"),
        ({"job_ids": [1]}, "job_ids"),
        ({"run_id": ""}, "run_id"),
        ({"jobs": ["a"]}, "jobs"),
        (["a"], "body"),
    ]
    for body, field in cases:
        response = client.post("/v1/jobs/cancel", json=body)
        assert response.status_code == 400, body
        assert response.get_json()["field"] == field, body


def test_broker_down_is_503_and_takes_the_marks_back(
    make_client: MakeClient, client: FlaskClient, redis_client: redis.Redis
) -> None:
    (job_id,) = _submit(client)
    offline = make_client(rabbitmq_url=UNREACHABLE_AMQP)

    response = offline.post(f"/v1/jobs/{job_id}/cancel")

    assert response.status_code == 503
    assert response.get_json()["error"] == "unavailable"
    stored = _record(redis_client, job_id)
    assert (stored.status, stored.cancel_requested_at, stored.cancel_requested_by) == (
        "queued",
        None,
        None,
    )
    # and the same cancel succeeds once the broker answers
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
