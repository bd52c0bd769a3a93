"""Listing jobs (filters, newest first, cursor pages) and agents against the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from qgjob_contract import leases
from qgjob_contract.events import utc_now
from qgjob_contract.leases import LeaseRenewer
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent
from qgjob_contract.statuses import AgentState, JobStatus
from qgjob_contract.targets import Target


def _submit(client: FlaskClient, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/v1/jobs", json=jobs)
    assert response.status_code == 201, response.get_data(as_text=True)
    records: list[dict[str, Any]] = response.get_json()["jobs"]
    return records


def _job(org: str, version: str, target: str, i: int = 0) -> dict[str, Any]:
    return {"org_id": org, "app_version_id": version, "test_path": f"t{i}.js", "target": target}


def _newest_first(records: list[dict[str, Any]]) -> list[str]:
    """The documented order: creation time descending, then job_id descending."""
    ordered = sorted(records, key=lambda r: (r["created_at"], r["job_id"]), reverse=True)
    return [record["job_id"] for record in ordered]


def _list(client: FlaskClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/jobs", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    page: dict[str, Any] = response.get_json()
    assert set(page) == {"jobs", "next_cursor"}
    return page


@pytest.fixture
def jobs(client: FlaskClient, redis_client: redis.Redis) -> list[dict[str, Any]]:
    """Seven jobs over two orgs, two versions and three targets; two of them passed."""
    records = _submit(client, [_job("acme", "v1", "emulator", i) for i in range(3)])
    records += _submit(client, [_job("acme", "v2", "device"), _job("beta", "v1", "device")])
    records += _submit(client, [_job("beta", "v2", "browserstack", i) for i in range(2)])
    for record in (records[0], records[5]):  # as the scheduler would, on job.finished
        redis_client.hset(Keys.job(record["job_id"]), "status", JobStatus.PASSED.value)
        record["status"] = JobStatus.PASSED.value
    return records


def test_list_without_filters_is_every_job_newest_first(
    client: FlaskClient, jobs: list[dict[str, Any]]
) -> None:
    page = _list(client)
    assert [record["job_id"] for record in page["jobs"]] == _newest_first(jobs)
    assert page["next_cursor"] is None
    by_id = {record["job_id"]: record for record in jobs}
    for record in page["jobs"]:
        assert record == {**by_id[record["job_id"]], "final": record["status"] == "passed"}


@pytest.mark.parametrize(
    "filters",
    [
        {"org_id": "acme"},
        {"app_version_id": "v2"},
        {"status": "passed"},
        {"status": "queued"},
        {"target": "device"},
        {"org_id": "beta", "app_version_id": "v2", "target": "browserstack"},
        {"org_id": "beta", "status": "passed"},
        {"org_id": "nobody"},
    ],
)
def test_list_filters(
    client: FlaskClient, jobs: list[dict[str, Any]], filters: dict[str, str]
) -> None:
    expected = [r for r in jobs if all(r[name] == value for name, value in filters.items())]
    page = _list(client, **filters)
    assert [record["job_id"] for record in page["jobs"]] == _newest_first(expected)
    assert page["next_cursor"] is None


def test_pages_cover_every_job_once_even_when_jobs_arrive_between_pages(
    client: FlaskClient,
) -> None:
    # One request: 7 jobs share one creation time, so pages must split a tie.
    first = _submit(client, [_job("acme", "v1", "emulator", i) for i in range(7)])
    first += _submit(client, [_job("acme", "v1", "emulator", 7)])

    seen: list[str] = []
    page = _list(client, limit=3)
    seen += [record["job_id"] for record in page["jobs"]]
    later = _submit(client, [_job("acme", "v1", "emulator", 8)])  # newer than every page
    while page["next_cursor"] is not None:
        assert len(page["jobs"]) == 3
        page = _list(client, limit=3, cursor=page["next_cursor"])
        seen += [record["job_id"] for record in page["jobs"]]

    assert seen == _newest_first(first)
    assert later[0]["job_id"] not in seen
    assert _list(client, limit=1)["jobs"][0]["job_id"] == later[0]["job_id"]


def test_pages_split_a_tie_longer_than_one_redis_read(make_client: Any) -> None:
    client = make_client(max_jobs_per_request=450)
    records = _submit(client, [_job("acme", "v1", "emulator", i) for i in range(450)])
    sizes, seen = [], []
    page = _list(client, limit=200)
    while True:
        sizes.append(len(page["jobs"]))
        seen += [record["job_id"] for record in page["jobs"]]
        if page["next_cursor"] is None:
            break
        page = _list(client, limit=200, cursor=page["next_cursor"])
    assert seen == _newest_first(records)
    assert sizes == [200, 200, 50]


def test_pages_with_a_filter(client: FlaskClient) -> None:
    records = _submit(
        client, [_job("acme" if i % 2 else "beta", "v1", "emulator", i) for i in range(10)]
    )
    seen: list[str] = []
    cursor = None
    while True:
        page = _list(client, org_id="acme", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [record["job_id"] for record in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == _newest_first([r for r in records if r["org_id"] == "acme"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"target": "toaster"}, "target"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_bad_list_parameters_are_400(
    client: FlaskClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/jobs", query_string=params)
    assert response.status_code == 400
    error = response.get_json()
    assert (error["error"], error["field"]) == ("validation_error", field)


def test_agents_are_listed_from_their_records_with_liveness(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    fresh = Agent(
        agent_id="emulator-a1",
        target=Target.EMULATOR.value,
        state=AgentState.BUSY.value,
        installed_app_version="xyz123",
        installs=2,
        jobs_run=17,
        last_heartbeat=utc_now(),
        current_batch_id="batch-9",
    )
    stale_time = datetime.now(UTC) - timedelta(seconds=60)
    stale = Agent(
        agent_id="device-b2",
        target=Target.DEVICE.value,
        state=AgentState.IDLE.value,
        last_heartbeat=stale_time.isoformat(timespec="milliseconds"),
    )
    for agent in (fresh, stale):
        redis_client.hset(Keys.agent(agent.agent_id), mapping=agent.to_redis())  # type: ignore[arg-type]
    redis_client.sadd(Keys.AGENTS, fresh.agent_id, stale.agent_id, "gone-without-record")
    # liveness is the lease's, on Redis TIME: one renewed now, one renewed a minute ago
    LeaseRenewer(redis_client, fresh.agent_id, "i-fresh").renew()
    LeaseRenewer(redis_client, stale.agent_id, "i-stale").renew()
    redis_client.hset(
        Keys.lease(stale.agent_id), "renewed_ms", leases.redis_now_ms(redis_client) - 60_000
    )

    response = client.get("/v1/agents")
    assert response.status_code == 200
    assert response.get_json() == {
        "agents": [
            {
                "agent_id": "device-b2",
                "target": "device",
                "state": "idle",
                "installed_app_version": None,
                "installed_org_id": None,
                "installs": 0,
                "jobs_run": 0,
                "last_heartbeat": stale.last_heartbeat,
                "current_batch_id": None,
                "instance_id": None,
                "seq": 0,
                "alive": False,
            },
            {
                "agent_id": "emulator-a1",
                "target": "emulator",
                "state": "busy",
                "installed_app_version": "xyz123",
                "installed_org_id": None,
                "installs": 2,
                "jobs_run": 17,
                "last_heartbeat": fresh.last_heartbeat,
                "current_batch_id": "batch-9",
                "instance_id": None,
                "seq": 0,
                "alive": True,
            },
        ]
    }


def test_no_agents_is_an_empty_list(client: FlaskClient) -> None:
    assert client.get("/v1/agents").get_json() == {"agents": []}
