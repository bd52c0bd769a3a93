"""Job options (retries, timeout_s, queue_ttl_s) stored on the records, and the warning a
submission to a target without a live agent carries, against the real Redis and RabbitMQ."""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient

from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import AgentState
from tests.integration.api.conftest import add_live_agent

JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}
SEED_FIELDS = {"message", "job_id", "assigned_agent"}


def _record(redis_client: redis.Redis, job_id: str) -> Job:
    return Job.from_redis(redis_client.hgetall(Keys.job(job_id)))


@pytest.fixture
def live_emulator(redis_client: redis.Redis) -> str:
    return add_live_agent(redis_client, "emulator")


def test_options_are_stored_on_every_job_of_a_request(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    body = [
        {**JOB, "retries": 2, "timeout_s": 120, "queue_ttl_s": 30.5},
        {**JOB, "test_path": "b.js"},
    ]
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 201
    with_options, plain = (job["job_id"] for job in response.get_json()["jobs"])
    stored = _record(redis_client, with_options)
    assert (stored.retries, stored.timeout_s, stored.queue_ttl_s) == (2, 120.0, 30.5)
    default = _record(redis_client, plain)
    assert (default.retries, default.timeout_s, default.queue_ttl_s) == (0, None, None)


def test_run_options_apply_to_every_job_and_are_shown_on_the_run(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    run = {"org_id": "qualgent", "app_version_id": "v", "tests": ["a.js", "b.js"], "retries": 1}
    created = client.post("/v1/runs", json={**run, "timeout_s": 60}).get_json()
    assert created["run"]["retries"] == 1
    assert created["run"]["timeout_s"] == 60
    for job_id in created["job_ids"]:
        assert (_record(redis_client, job_id).retries, _record(redis_client, job_id).timeout_s) == (
            1,
            60.0,
        )
    assert client.get(f"/v1/runs/{created['run_id']}").get_json()["retries"] == 1


def test_the_seed_submit_takes_the_options_too(
    client: FlaskClient, redis_client: redis.Redis, live_emulator: str
) -> None:
    response = client.post("/submit", json={**JOB, "retries": 5, "queue_ttl_s": 3600})
    assert response.status_code == 201
    assert set(response.get_json()) == SEED_FIELDS
    stored = _record(redis_client, response.get_json()["job_id"])
    assert (stored.retries, stored.queue_ttl_s) == (5, 3600.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("retries", 6), ("retries", -1), ("timeout_s", 0), ("queue_ttl_s", "60"), ("timeout_s", 1e9)],
)
def test_bad_options_are_400_naming_the_field(
    client: FlaskClient, redis_client: redis.Redis, field: str, value: object
) -> None:
    response = client.post("/submit", json={**JOB, field: value})
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert redis_client.zcard(Keys.JOBS_BY_TIME) == 0


def test_seed_submit_keeps_exactly_its_keys_when_an_agent_is_live(
    client: FlaskClient, live_emulator: str
) -> None:
    response = client.post("/submit", json=JOB)
    assert response.status_code == 201
    assert set(response.get_json()) == SEED_FIELDS


def test_no_live_agent_is_accepted_with_a_warning_naming_the_target(
    client: FlaskClient, redis_client: redis.Redis, live_emulator: str
) -> None:
    response = client.post("/submit", json={**JOB, "target": "device"})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == SEED_FIELDS | {"warning"}
    assert "no live agent" in body["warning"]
    assert "'device'" in body["warning"]
    assert _record(redis_client, body["job_id"]).status == "queued"


def test_warning_on_jobs_and_runs_names_only_the_targets_without_agents(
    client: FlaskClient, live_emulator: str
) -> None:
    jobs = client.post("/v1/jobs", json=[JOB, {**JOB, "target": "browserstack"}]).get_json()
    assert "'browserstack'" in jobs["warning"]
    assert "'emulator'" not in jobs["warning"]
    one = client.post("/v1/jobs", json=JOB).get_json()
    assert "warning" not in one
    run = {"org_id": "qualgent", "app_version_id": "v", "tests": ["a.js"]}
    matrix = client.post("/v1/runs", json={**run, "targets": ["emulator", "device"]}).get_json()
    assert "'device'" in matrix["warning"]
    assert "warning" not in client.post("/v1/runs", json=run).get_json()


def test_an_offline_or_expired_agent_is_not_live(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    add_live_agent(redis_client, "device", AgentState.OFFLINE)
    stale = add_live_agent(redis_client, "emulator")
    redis_client.hset(Keys.lease(stale), "renewed_ms", "1")  # renewed in 1970
    for target in ("device", "emulator"):
        body = client.post("/submit", json={**JOB, "target": target}).get_json()
        assert f"'{target}'" in body["warning"]


def test_the_warning_follows_agents_as_they_come_go_offline_and_leave(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    # One API process across the changes: it reads the agents anew on every submit (it
    # only remembers which ids to read), so no answer is stale.
    def warned() -> bool:
        return "warning" in client.post("/submit", json={**JOB, "target": "device"}).get_json()

    assert warned()
    agent_id = add_live_agent(redis_client, "device")
    assert not warned()  # a new agent: the set changed
    redis_client.hset(Keys.agent(agent_id), "state", AgentState.OFFLINE.value)
    assert warned()  # the same set: its record is read again
    redis_client.hset(Keys.agent(agent_id), "state", AgentState.IDLE.value)
    assert not warned()
    redis_client.hset(Keys.lease(agent_id), "renewed_ms", "1")
    assert warned()  # its lease expired
    redis_client.srem(Keys.AGENTS, agent_id)
    other = add_live_agent(redis_client, "device")
    assert not warned()  # one left, another came
    redis_client.srem(Keys.AGENTS, other)
    assert warned()  # none left
