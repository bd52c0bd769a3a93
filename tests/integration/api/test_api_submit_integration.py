"""Submitting jobs against the real Redis and RabbitMQ: stored, announced, or refused whole."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from qgjob_contract.events import Envelope, EventType
from qgjob_contract.names import Keys
from qgjob_contract.records import Job

# Nothing listens on port 1: connections are refused at once.
UNREACHABLE_AMQP = "amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1&socket_timeout=1"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

SEED_JOB = {
    "org_id": "qualgent",
    "app_version_id": "xyz123",
    "test_path": "tests/onboarding.spec.js",
    "priority": 4,
    "target": "device",
}
# The record as the API shows it: every field of the contract's Job, plus `final`.
RECORD_FIELDS = {field.name for field in dataclasses.fields(Job)} | {"final"}

Events = Callable[[], list[Envelope]]


def _stored_job_ids(redis_client: redis.Redis) -> list[str]:
    ids: list[str] = redis_client.zrange(Keys.JOBS_BY_TIME, 0, -1)
    assert sorted(ids) == sorted(
        k.removeprefix(Keys.job("")) for k in redis_client.keys(Keys.job("*"))
    )
    return ids


def _job(i: int, **overrides: Any) -> dict[str, Any]:
    return {**SEED_JOB, "test_path": f"tests/t{i}.spec.js", **overrides}


def _submitted_ids(event: Envelope) -> list[str]:
    assert event.type is EventType.JOBS_SUBMITTED
    return [job["job_id"] for job in event.payload["jobs"]]


def test_submit_stores_the_record_and_publishes_one_jobs_submitted(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    response = client.post("/submit", json=SEED_JOB)
    assert response.status_code == 201
    job_id = response.get_json()["job_id"]

    stored = Job.from_redis(redis_client.hgetall(Keys.job(job_id)))
    assert (stored.org_id, stored.app_version_id, stored.test_path) == (
        "qualgent",
        "xyz123",
        "tests/onboarding.spec.js",
    )
    assert (stored.priority, stored.target, stored.status) == (4, "device", "queued")
    assert _stored_job_ids(redis_client) == [job_id]

    (event,) = scheduler_events()
    assert event.type is EventType.JOBS_SUBMITTED
    assert event.payload == {"jobs": [stored.submitted_payload()]}


def test_seed_contract_field_by_field(client: FlaskClient, live_agents: list[str]) -> None:
    response = client.post("/submit", json=SEED_JOB)
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    submitted = response.get_json()
    assert set(submitted) == {"message", "job_id", "assigned_agent"}
    assert submitted["message"] == "Job submitted successfully"
    assert submitted["assigned_agent"] is None
    assert str(uuid.UUID(submitted["job_id"])) == submitted["job_id"]

    status = client.get(f"/status/{submitted['job_id']}")
    assert status.status_code == 200
    record = status.get_json()
    assert set(record) == RECORD_FIELDS
    for field, value in SEED_JOB.items():
        assert record[field] == value
    assert record["job_id"] == submitted["job_id"]
    assert record["status"] == "queued"
    assert record["final"] is False
    assert record["attempts"] == 0
    for field in ("assigned_agent", "batch_id", "assigned_at", "started_at", "finished_at"):
        assert record[field] is None
    assert record["result"] is None
    assert record["created_at"].endswith("+00:00")


def test_seed_submit_without_priority_and_target_defaults_them(client: FlaskClient) -> None:
    body = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}
    job_id = client.post("/submit", json=body).get_json()["job_id"]
    record = client.get(f"/status/{job_id}").get_json()
    assert (record["priority"], record["target"]) == (1, "emulator")


@pytest.mark.parametrize("path", ["/status/{}", "/v1/jobs/{}"])
def test_unknown_job_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(path.format(uuid.uuid4()))
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "not_found"
    assert body["message"]


def test_seed_bad_input_is_400_and_nothing_is_stored_or_published(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    response = client.post("/submit", json={**SEED_JOB, "test_path": "../etc/passwd"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "test_path"
    assert _stored_job_ids(redis_client) == []
    assert scheduler_events() == []


def test_v1_single_job_returns_its_record(client: FlaskClient, scheduler_events: Events) -> None:
    response = client.post("/v1/jobs", json=SEED_JOB)
    assert response.status_code == 201
    record = response.get_json()["job"]
    assert set(record) == RECORD_FIELDS
    assert client.get(f"/v1/jobs/{record['job_id']}").get_json() == record
    assert [_submitted_ids(event) for event in scheduler_events()] == [[record["job_id"]]]


@pytest.mark.parametrize("wrap", [False, True])
def test_v1_batch_stores_every_job_and_publishes_one_event_carrying_them_all(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events, wrap: bool
) -> None:
    jobs = [_job(i, app_version_id=f"v{i % 2}") for i in range(50)]
    response = client.post("/v1/jobs", json={"jobs": jobs} if wrap else jobs)
    assert response.status_code == 201
    records = response.get_json()["jobs"]
    assert [record["test_path"] for record in records] == [job["test_path"] for job in jobs]
    ids = [record["job_id"] for record in records]
    assert len(set(ids)) == 50
    assert sorted(_stored_job_ids(redis_client)) == sorted(ids)

    # one event on the scheduler's queue, carrying every job of the request, in order
    (event,) = scheduler_events()
    assert _submitted_ids(event) == ids
    stored = [Job.from_redis(redis_client.hgetall(Keys.job(job_id))) for job_id in ids]
    assert event.payload == {"jobs": [job.submitted_payload() for job in stored]}
    for record in records:
        assert client.get(f"/v1/jobs/{record['job_id']}").get_json() == record


def test_each_request_publishes_its_own_event(
    client: FlaskClient, scheduler_events: Events
) -> None:
    first = [
        record["job_id"]
        for record in client.post("/v1/jobs", json=[_job(0), _job(1)]).get_json()["jobs"]
    ]
    second = client.post("/submit", json=_job(2)).get_json()["job_id"]
    events = scheduler_events()
    assert [_submitted_ids(event) for event in events] == [first, [second]]
    assert len({event.event_id for event in events}) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([_job(0), _job(1), _job(2, priority=True)], "jobs[2].priority"),
        ({"jobs": [_job(0), _job(1, target="toaster")]}, "jobs[1].target"),
        ([], "jobs"),
        ([_job(i) for i in range(51)], "jobs"),
    ],
)
def test_v1_batch_is_all_or_nothing(
    client: FlaskClient,
    redis_client: redis.Redis,
    scheduler_events: Events,
    body: Any,
    field: str,
) -> None:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert (error["error"], error["field"]) == ("validation_error", field)
    assert error["message"].startswith(f"{field}: ")
    assert _stored_job_ids(redis_client) == []
    assert scheduler_events() == []


@pytest.mark.parametrize(
    ("path", "body"), [("/submit", SEED_JOB), ("/v1/jobs", [_job(0), _job(1)])]
)
def test_unreachable_broker_is_503_and_leaves_no_record(
    make_client: Callable[..., FlaskClient],
    redis_client: redis.Redis,
    path: str,
    body: Any,
) -> None:
    client = make_client(rabbitmq_url=UNREACHABLE_AMQP)
    response = client.post(path, json=body)
    assert response.status_code == 503
    error = response.get_json()
    assert error["error"] == "unavailable"
    assert "RabbitMQ" in error["message"]
    assert _stored_job_ids(redis_client) == []


def test_unreachable_redis_is_503_and_publishes_nothing(
    make_client: Callable[..., FlaskClient], scheduler_events: Events
) -> None:
    client = make_client(redis_url=UNREACHABLE_REDIS)
    response = client.post("/submit", json=SEED_JOB)
    assert response.status_code == 503
    assert "Redis" in response.get_json()["message"]
    assert scheduler_events() == []


def test_readyz_is_200_when_both_servers_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"redis": "ok", "rabbitmq": "ok"}}


@pytest.mark.parametrize(
    ("overrides", "failed"),
    [
        ({"rabbitmq_url": UNREACHABLE_AMQP}, {"redis": "ok", "rabbitmq": "unreachable"}),
        ({"redis_url": UNREACHABLE_REDIS}, {"redis": "unreachable", "rabbitmq": "ok"}),
    ],
)
def test_readyz_is_503_naming_the_unreachable_server(
    make_client: Callable[..., FlaskClient], overrides: dict[str, str], failed: dict[str, str]
) -> None:
    response = make_client(**overrides).get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "unavailable"
    assert body["checks"] == failed
    (name,) = [name for name, state in failed.items() if state != "ok"]
    assert name in body["message"]
