"""Runs against the real Redis and RabbitMQ: one run = one request, one event, all or nothing;
read back whole (counts, timings, jobs) in one request; listed newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from qgjob_api import run_store
from qgjob_contract.events import Envelope, EventType
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import JobStatus

UNREACHABLE_AMQP = "amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1&socket_timeout=1"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
RUN = {
    "org_id": "qualgent",
    "app_version_id": "1.4.0+42",
    "targets": ["emulator", "device"],
    "tests": ["tests/login.spec.js", "tests/checkout.spec.js"],
    "priority": 3,
}
Events = Callable[[], list[Envelope]]


def _create(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/runs", json={**RUN, **overrides})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _finish(
    redis_client: redis.Redis,
    job_id: str,
    status: str,
    *,
    started_at: str,
    finished_at: str,
    log_tail: str = "the log",
) -> None:
    """Move a job to a final status the way the scheduler stores it (the whole record)."""
    job = Job.from_redis(redis_client.hgetall(Keys.job(job_id)))
    job.status, job.started_at, job.finished_at = status, started_at, finished_at
    job.result = {  # type: ignore[typeddict-item]
        "outcome": status,
        "duration_s": 0.5,
        "install_paid": False,
        "install_s": 0.0,
        "log_tail": log_tail,
        "driver": "simulator",
        "simulated": True,
    }
    redis_client.hset(Keys.job(job_id), mapping=job.to_redis())  # type: ignore[arg-type]


def test_a_matrix_run_stores_one_job_per_test_and_target_and_publishes_one_event(
    client: FlaskClient, redis_client: redis.Redis, scheduler_events: Events
) -> None:
    body = _create(client)

    run_id, job_ids = body["run_id"], body["job_ids"]
    jobs = [Job.from_redis(redis_client.hgetall(Keys.job(job_id))) for job_id in job_ids]
    assert [(job.test_path, job.target) for job in jobs] == [
        ("tests/login.spec.js", "emulator"),
        ("tests/login.spec.js", "device"),
        ("tests/checkout.spec.js", "emulator"),
        ("tests/checkout.spec.js", "device"),
    ]
    assert {job.run_id for job in jobs} == {run_id}
    assert {(job.org_id, job.app_version_id, job.priority, job.status) for job in jobs} == {
        ("qualgent", "1.4.0+42", 3, "queued")
    }
    (event,) = scheduler_events()
    assert event.type is EventType.JOBS_SUBMITTED
    assert [job["job_id"] for job in event.payload["jobs"]] == job_ids
    assert redis_client.zscore(Keys.RUNS_BY_TIME, run_id) is not None

    run = body["run"]
    assert run["run_id"] == run_id
    assert run["total"] == 4
    assert run["counts"]["queued"] == 4
    assert run["finished"] is False
    assert [job["job_id"] for job in run["jobs"]] == job_ids


def test_targets_default_to_the_emulator(client: FlaskClient) -> None:
    response = client.post(
        "/v1/runs",
        json={"org_id": "qualgent", "app_version_id": "v1", "tests": ["tests/a.spec.js"]},
    )
    assert response.status_code == 201
    assert [job["target"] for job in response.get_json()["run"]["jobs"]] == ["emulator"]


def test_reading_a_run_gives_counts_timings_and_compact_jobs(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    job_ids = _create(client)["job_ids"]
    _finish(
        redis_client,
        job_ids[0],
        "passed",
        started_at="2030-01-01T00:00:01.000+00:00",
        finished_at="2030-01-01T00:00:02.000+00:00",
    )
    _finish(
        redis_client,
        job_ids[1],
        "failed",
        started_at="2030-01-01T00:00:03.000+00:00",
        finished_at="2030-01-01T00:00:09.500+00:00",
        log_tail="expected 1, got 2",
    )

    running = client.get(f"/v1/runs/{_run_id(redis_client, job_ids[0])}").get_json()
    assert running["counts"] == {
        "queued": 2,
        "assigned": 0,
        "running": 0,
        "passed": 1,
        "failed": 1,
        "error": 0,
        "cancelled": 0,
    }
    assert running["finished"] is False
    timings = running["timings"]
    assert timings["first_started_at"] == "2030-01-01T00:00:01.000+00:00"
    assert timings["last_finished_at"] == "2030-01-01T00:00:09.500+00:00"
    passed, failed = running["jobs"][:2]
    assert "log_tail" not in passed["result"]  # a passed job's log is not carried
    assert failed["result"]["log_tail"] == "expected 1, got 2"
    assert failed["final"] is True
    assert running["jobs"][2]["final"] is False

    for job_id in job_ids[2:]:
        _finish(
            redis_client,
            job_id,
            "error",
            started_at="2030-01-01T00:00:04.000+00:00",
            finished_at="2030-01-01T00:00:05.000+00:00",
        )
    done = client.get(f"/v1/runs/{_run_id(redis_client, job_ids[0])}").get_json()
    assert done["finished"] is True
    assert done["timings"]["created_at"] == done["created_at"]
    # Finished: elapsed runs to the last job's end, not to the server's clock.
    assert done["timings"]["last_finished_at"] == "2030-01-01T00:00:09.500+00:00"
    assert done["counts"]["error"] == 2


def _run_id(redis_client: redis.Redis, job_id: str) -> str:
    run_id = Job.from_redis(redis_client.hgetall(Keys.job(job_id))).run_id
    assert run_id is not None
    return run_id


def test_a_run_of_the_largest_size_is_read_whole_in_one_request(
    make_client: Any, amqp_channel: Any
) -> None:
    client = make_client(max_jobs_per_request=600)
    tests = [f"tests/t{i}.spec.js" for i in range(300)]
    body = _create(client, tests=tests)
    assert len(body["job_ids"]) == 600

    run = client.get(f"/v1/runs/{body['run_id']}").get_json()
    assert [job["job_id"] for job in run["jobs"]] == body["job_ids"]
    assert run["counts"]["queued"] == 600


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tests": []}, "tests"),
        ({"tests": None}, "tests"),
        ({"tests": ["../up.spec.js"]}, "tests[0]"),
        ({"tests": ["tests/a.js", "tests/a.js"]}, "tests[1]"),
        ({"targets": ["emulator", "phone"]}, "targets[1]"),
        ({"targets": []}, "targets"),
        ({"targets": ["device", "device"]}, "targets[1]"),
        ({"priority": 11}, "priority"),
        ({"org_id": "no spaces"}, "org_id"),
        ({"colour": "blue"}, "colour"),
        ({"tests": [f"tests/t{i}.js" for i in range(26)]}, "tests"),  # 26 x 2 > 50 jobs
    ],
)
def test_bad_runs_are_400_naming_the_field_and_nothing_is_kept(
    client: FlaskClient,
    redis_client: redis.Redis,
    scheduler_events: Events,
    overrides: dict[str, Any],
    field: str,
) -> None:
    body = {key: value for key, value in {**RUN, **overrides}.items() if value is not None}
    response = client.post("/v1/runs", json=body)

    assert response.status_code == 400
    answer = response.get_json()
    assert set(answer) == {"error", "message", "field"}
    assert answer["error"] == "validation_error"
    assert answer["field"] == field
    assert _records(redis_client) == []
    assert scheduler_events() == []


def test_a_body_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    response = client.post("/v1/runs", json=["tests/a.js"])
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


def test_unknown_run_is_404(client: FlaskClient) -> None:
    response = client.get("/v1/runs/no-such-run")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_unreachable_broker_is_503_and_keeps_neither_run_nor_jobs(
    make_client: Any, redis_client: redis.Redis
) -> None:
    client = make_client(rabbitmq_url=UNREACHABLE_AMQP)
    response = client.post("/v1/runs", json=RUN)

    assert response.status_code == 503
    assert response.get_json()["error"] == "unavailable"
    assert _records(redis_client) == []


def test_unreachable_redis_is_503_and_publishes_nothing(
    make_client: Any, amqp_channel: Any, scheduler_events: Events
) -> None:
    response = make_client(redis_url=UNREACHABLE_REDIS).post("/v1/runs", json=RUN)
    assert response.status_code == 503
    assert scheduler_events() == []


def test_runs_are_listed_newest_first_filtered_by_org_and_paged(client: FlaskClient) -> None:
    first = _create(client)["run_id"]
    other = _create(client, org_id="someone-else")["run_id"]
    last = _create(client)["run_id"]

    listed = client.get("/v1/runs").get_json()
    assert [run["run_id"] for run in listed["runs"]] == [last, other, first]
    assert listed["next_cursor"] is None
    assert listed["runs"][0]["counts"]["queued"] == 4
    assert "jobs" not in listed["runs"][0]

    seen, cursor = [], None
    while True:
        params = {"org_id": "qualgent", "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/runs", query_string=params).get_json()
        seen += [run["run_id"] for run in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [last, first]


@pytest.mark.parametrize(
    ("query", "field"), [({"limit": "0"}, "limit"), ({"cursor": "zzz"}, "cursor")]
)
def test_bad_run_listing_parameters_are_400(
    client: FlaskClient, query: dict[str, str], field: str
) -> None:
    response = client.get("/v1/runs", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["field"] == field


def test_lookup_reads_many_jobs_in_one_request_in_the_order_asked(client: FlaskClient) -> None:
    job_ids = _create(client)["job_ids"]
    asked = list(reversed(job_ids))

    response = client.post("/v1/jobs/lookup", json={"job_ids": asked})
    assert response.status_code == 200
    jobs = response.get_json()["jobs"]
    assert [job["job_id"] for job in jobs] == asked
    assert {job["status"] for job in jobs} == {JobStatus.QUEUED.value}


def test_lookup_of_an_unknown_job_is_404_and_bad_bodies_are_400(client: FlaskClient) -> None:
    job_ids = _create(client)["job_ids"]
    unknown = client.post("/v1/jobs/lookup", json={"job_ids": [*job_ids, "nope"]})
    assert unknown.status_code == 404
    assert "nope" in unknown.get_json()["message"]

    empty = client.post("/v1/jobs/lookup", json={"job_ids": []})
    assert (empty.status_code, empty.get_json()["field"]) == (400, "job_ids")
    too_many = client.post("/v1/jobs/lookup", json={"job_ids": [str(i) for i in range(51)]})
    assert (too_many.status_code, too_many.get_json()["field"]) == (400, "job_ids")


def test_a_run_page_ends_early_once_its_runs_hold_the_job_budget(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_store, "LIST_JOB_BUDGET", 5)  # each run here has 4 jobs
    runs = [_create(client)["run_id"] for _ in range(3)]

    first = client.get("/v1/runs").get_json()
    assert [run["run_id"] for run in first["runs"]] == [runs[2], runs[1]]
    assert first["next_cursor"] is not None
    rest = client.get("/v1/runs", query_string={"cursor": first["next_cursor"]}).get_json()
    assert [run["run_id"] for run in rest["runs"]] == [runs[0]]


def _records(client: redis.Redis) -> list[str]:
    """Every qgjob key but the rate limiter's counters (a request is counted either way)."""
    return [k for k in client.keys("qgjob:*") if not k.startswith(Keys.RATE_LIMIT_PREFIX)]
