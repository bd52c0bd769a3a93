"""Idempotency-Key on POST /submit, /v1/jobs and /v1/runs, against the real Redis and
RabbitMQ: a repeat creates nothing and answers the first answer; another body is 422; two
concurrent requests with one key create the jobs once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from qgjob_api.idempotency import key_ttl_s
from qgjob_contract.events import Envelope, EventType
from qgjob_contract.names import Keys
from tests.integration.api.conftest import MakeClient

UNREACHABLE_AMQP = "amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1&socket_timeout=1"
JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}
RUN = {"org_id": "qualgent", "app_version_id": "xyz123", "tests": ["a.js", "b.js"]}

Events = Callable[[], list[Envelope]]


def _count_jobs(redis_client: redis.Redis) -> int:
    return int(redis_client.zcard(Keys.JOBS_BY_TIME))


def _job_ids(answer: dict[str, Any]) -> list[str]:
    if "job_id" in answer:
        return [answer["job_id"]]
    if "job_ids" in answer:
        return list(answer["job_ids"])
    return [job["job_id"] for job in answer["jobs"]]


def _submits(events: Events) -> int:
    return sum(1 for event in events() if event.type is EventType.JOBS_SUBMITTED)


@pytest.mark.parametrize(
    ("path", "body"),
    [("/submit", JOB), ("/v1/jobs", [JOB, {**JOB, "test_path": "b.js"}]), ("/v1/runs", RUN)],
)
def test_a_repeat_with_the_same_key_answers_the_first_answer_and_creates_nothing(
    client: FlaskClient,
    redis_client: redis.Redis,
    scheduler_events: Events,
    path: str,
    body: Any,
) -> None:
    headers = {"Idempotency-Key": "ci-build-42"}
    first = client.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    created = _count_jobs(redis_client)
    assert _submits(scheduler_events) == 1

    again = client.post(path, json=body, headers=headers)

    assert again.status_code == 201
    assert _job_ids(again.get_json()) == _job_ids(first.get_json())
    if path != "/v1/runs":  # a run's view also says how long it has been running
        assert again.get_json() == first.get_json()  # the records, read again, unchanged
    else:
        assert again.get_json()["run_id"] == first.get_json()["run_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _count_jobs(redis_client) == created
    assert _submits(scheduler_events) == 0


def test_the_same_key_with_another_body_is_422_and_creates_nothing(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "k1"}
    assert client.post("/v1/jobs", json=JOB, headers=headers).status_code == 201

    other = client.post("/v1/jobs", json={**JOB, "priority": 5}, headers=headers)

    assert other.status_code == 422
    assert other.get_json()["error"] == "idempotency_key_reused"
    # another route with the same key is another request too
    assert client.post("/submit", json=JOB, headers=headers).status_code == 422
    assert _count_jobs(redis_client) == 1


def test_key_order_in_the_body_does_not_make_another_request(client: FlaskClient) -> None:
    headers = {"Idempotency-Key": "k2"}
    first = client.post("/submit", json=JOB, headers=headers).get_json()
    reordered = dict(reversed(list(JOB.items())))
    assert client.post("/submit", json=reordered, headers=headers).get_json() == first


def test_a_key_is_scoped_to_the_org(client: FlaskClient, redis_client: redis.Redis) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    mine = client.post("/submit", json=JOB, headers=headers)
    theirs = client.post("/submit", json={**JOB, "org_id": "other-org"}, headers=headers)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.get_json()["job_id"] != theirs.get_json()["job_id"]
    assert _count_jobs(redis_client) == 2


def test_the_key_lives_a_day_or_the_retention_if_shorter(
    make_client: MakeClient, redis_client: redis.Redis, amqp_channel: object
) -> None:
    short = make_client(job_retention_s=90)
    assert short.post("/submit", json=JOB, headers={"Idempotency-Key": "t"}).status_code == 201
    (key,) = redis_client.keys(Keys.idempotency("*", "*"))
    assert 0 < redis_client.ttl(key) <= key_ttl_s(90) == 90


def test_a_refused_request_leaves_the_key_free_for_its_retry(
    make_client: MakeClient, client: FlaskClient, redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    offline = make_client(rabbitmq_url=UNREACHABLE_AMQP)
    assert offline.post("/submit", json=JOB, headers=headers).status_code == 503
    assert _count_jobs(redis_client) == 0

    retried = client.post("/submit", json=JOB, headers=headers)

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert _count_jobs(redis_client) == 1


def test_a_bad_key_is_400_naming_the_header(client: FlaskClient) -> None:
    for key in ("", "x" * 256, "caf\u00e9"):
        response = client.post("/submit", json=JOB, headers={"Idempotency-Key": key})
        assert response.status_code == 400, key
        assert response.get_json()["field"] == "Idempotency-Key"


def test_concurrent_requests_with_one_key_create_the_jobs_once(
    make_client: MakeClient, redis_client: redis.Redis, amqp_channel: object
) -> None:
    clients = [make_client() for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def post(api: FlaskClient) -> None:
        barrier.wait()
        response = api.post("/v1/runs", json=RUN, headers={"Idempotency-Key": "race"})
        with lock:
            answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=post, args=(api,)) for api in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(answers) == len(clients)
    assert _count_jobs(redis_client) == len(RUN["tests"])
    run_ids = {body["run_id"] for status, body in answers if status == 201}
    assert len(run_ids) == 1
    # the others waited for the first answer, or were told to retry (never a second run)
    assert all(
        status == 201 or body["error"] == "idempotency_in_progress" for status, body in answers
    )


def test_a_repeat_answers_the_jobs_as_they_are_now_and_keeps_only_their_ids(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "later"}
    first = client.post("/v1/jobs", json=JOB, headers=headers).get_json()
    job_id = first["job"]["job_id"]
    redis_client.hset(Keys.job(job_id), "status", "running")  # the scheduler moved it on

    again = client.post("/v1/jobs", json=JOB, headers=headers).get_json()

    assert again["job"]["job_id"] == job_id
    assert again["job"]["status"] == "running"
    (key,) = redis_client.keys(Keys.idempotency("*", "*"))
    assert job_id in redis_client.get(key)
    assert "test_path" not in redis_client.get(key)  # not the whole record


def test_the_warning_is_repeated_with_the_answer(client: FlaskClient) -> None:
    headers = {"Idempotency-Key": "warned"}
    first = client.post("/v1/runs", json=RUN, headers=headers).get_json()
    again = client.post("/v1/runs", json=RUN, headers=headers).get_json()
    assert "no live agent" in first["warning"]
    assert again["warning"] == first["warning"]
