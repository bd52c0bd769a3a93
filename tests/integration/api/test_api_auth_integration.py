"""Auth modes, tokens, roles and org isolation of every route, on the real Redis and
RabbitMQ (issue 9)."""

from __future__ import annotations

import hashlib
from typing import Any

import pika
import pytest
import redis
from flask.testing import FlaskClient

from qgjob_api import tokens
from qgjob_api.auth import ACCESS, Access
from qgjob_contract.names import Keys
from qgjob_contract.roles import Role
from tests.integration.api.conftest import MakeClient

ADMIN = "admin-secret-for-tests-0123456789abcdef"
# A value for each path parameter, so every rule can be requested.
_ARGS = {"job_id": "x", "run_id": "x", "token_id": "0123456789abcdef"}


def _job(org: str, i: int = 0) -> dict[str, Any]:
    return {"org_id": org, "app_version_id": "v1", "test_path": f"t{i}.js"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(
    make_client: MakeClient, amqp_channel: pika.adapters.blocking_connection.BlockingChannel
) -> FlaskClient:
    return make_client(auth_mode="tokens", admin_token=ADMIN)


def _token(api: FlaskClient, org: str, role: Role, **extra: Any) -> dict[str, Any]:
    response = api.post(
        "/v1/admin/tokens",
        json={"org_id": org, "role": role.value, **extra},
        headers=_bearer(ADMIN),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _every_rule(api: FlaskClient) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) of every route of the app."""
    found = []
    for rule in api.application.url_map.iter_rules():
        path = rule.build(_ARGS, append_unknown=False)[1]  # type: ignore[index]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def test_every_route_but_the_probes_needs_a_token(api: FlaskClient) -> None:
    rules = _every_rule(api)
    assert {endpoint for endpoint, _, _ in rules} <= set(ACCESS), "a route has no access entry"
    for endpoint, method, path in rules:
        response = api.open(path, method=method, json={})
        if ACCESS[endpoint] is Access.PUBLIC:
            assert response.status_code in (200, 503), (method, path)
            continue
        assert response.status_code == 401, (method, path, response.get_data(as_text=True))
        assert response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer qgjob_0123456789abcdef_" + "A" * 43,  # well formed, no such token
        "Bearer " + "x" * 600,
    ],
)
def test_unknown_or_malformed_tokens_are_401(api: FlaskClient, header: str) -> None:
    response = api.get("/v1/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    assert set(response.get_json()) == {"error", "message"}


def test_a_token_is_shown_once_and_stored_only_as_its_hash(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    created = _token(api, "acme", Role.SUBMITTER, name="ci")
    secret = created["token"]
    token_id, raw_secret = secret.removeprefix("qgjob_").split("_", 1)
    assert created["token_id"] == token_id
    stored = redis_client.hgetall(Keys.token(token_id))
    assert stored["digest"] == hashlib.sha256(raw_secret.encode()).hexdigest()
    assert not any(raw_secret in value for value in stored.values())
    listed = api.get("/v1/admin/tokens", headers=_bearer(ADMIN)).get_json()["tokens"]
    assert [t["token_id"] for t in listed] == [token_id]
    assert "token" not in listed[0]
    assert "digest" not in listed[0]
    assert listed[0] | {} == {k: v for k, v in created.items() if k != "token"}


def test_a_submitter_submits_for_its_org_and_is_recorded_by_id(api: FlaskClient) -> None:
    created = _token(api, "acme", Role.SUBMITTER)
    response = api.post("/v1/jobs", json=_job("acme"), headers=_bearer(created["token"]))
    assert response.status_code == 201, response.get_data(as_text=True)
    job = response.get_json()["job"]
    assert job["submitted_by"] == created["token_id"]
    seed = api.post("/submit", json=_job("acme"), headers=_bearer(created["token"]))
    assert seed.status_code == 201
    assert {"message", "job_id", "assigned_agent"} <= set(seed.get_json())  # (+ warning)
    run = api.post(
        "/v1/runs",
        json={"org_id": "acme", "app_version_id": "v1", "tests": ["a.js"]},
        headers=_bearer(created["token"]),
    )
    assert run.status_code == 201
    job_id = run.get_json()["job_ids"][0]
    read = api.get(f"/v1/jobs/{job_id}", headers=_bearer(created["token"]))
    assert read.get_json()["submitted_by"] == created["token_id"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/submit", _job("beta")),
        ("/v1/jobs", _job("beta")),
        ("/v1/jobs", [_job("acme"), _job("beta")]),
        ("/v1/runs", {"org_id": "beta", "app_version_id": "v1", "tests": ["a.js"]}),
    ],
)
def test_a_submission_for_another_org_is_403(
    api: FlaskClient, redis_client: redis.Redis, path: str, body: Any
) -> None:
    created = _token(api, "acme", Role.SUBMITTER)
    response = api.post(path, json=body, headers=_bearer(created["token"]))
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert redis_client.zcard(Keys.JOBS_BY_TIME) == 0


def test_a_viewer_reads_its_org_but_cannot_submit(api: FlaskClient) -> None:
    viewer = _token(api, "acme", Role.VIEWER)["token"]
    submitter = _token(api, "acme", Role.SUBMITTER)["token"]
    job = api.post("/v1/jobs", json=_job("acme"), headers=_bearer(submitter)).get_json()["job"]
    for path, body in (("/submit", _job("acme")), ("/v1/jobs", _job("acme"))):
        refused = api.post(path, json=body, headers=_bearer(viewer))
        assert refused.status_code == 403, path
    assert api.get(f"/v1/jobs/{job['job_id']}", headers=_bearer(viewer)).status_code == 200
    assert api.get(f"/status/{job['job_id']}", headers=_bearer(viewer)).status_code == 200


def test_another_orgs_jobs_and_runs_are_not_found_and_not_listed(api: FlaskClient) -> None:
    acme = _token(api, "acme", Role.SUBMITTER)["token"]
    beta = _token(api, "beta", Role.SUBMITTER)["token"]
    job = api.post("/v1/jobs", json=_job("acme"), headers=_bearer(acme)).get_json()["job"]
    run = api.post(
        "/v1/runs",
        json={"org_id": "acme", "app_version_id": "v1", "tests": ["a.js"]},
        headers=_bearer(acme),
    ).get_json()
    api.post("/v1/jobs", json=_job("beta"), headers=_bearer(beta))
    for path in (
        f"/v1/jobs/{job['job_id']}",
        f"/status/{job['job_id']}",
        f"/v1/runs/{run['run_id']}",
    ):
        response = api.get(path, headers=_bearer(beta))
        assert response.status_code == 404, path
        assert response.get_json()["error"] == "not_found"
    lookup = api.post("/v1/jobs/lookup", json={"job_ids": [job["job_id"]]}, headers=_bearer(beta))
    assert lookup.status_code == 404
    for query in ({}, {"org_id": "acme"}):
        jobs = api.get("/v1/jobs", query_string=query, headers=_bearer(beta)).get_json()["jobs"]
        assert {j["org_id"] for j in jobs} <= {"beta"}, query
        runs = api.get("/v1/runs", query_string=query, headers=_bearer(beta)).get_json()["runs"]
        assert runs == [], query
    mine = api.get("/v1/jobs", headers=_bearer(acme)).get_json()["jobs"]
    assert {j["org_id"] for j in mine} == {"acme"}
    assert len(mine) == 2
    everyone = api.get("/v1/jobs", headers=_bearer(ADMIN)).get_json()["jobs"]
    assert {j["org_id"] for j in everyone} == {"acme", "beta"}


@pytest.mark.parametrize("role", [Role.SUBMITTER, Role.VIEWER])
def test_agents_dead_letters_and_tokens_are_admin_only(api: FlaskClient, role: Role) -> None:
    token = _token(api, "acme", role)["token"]
    org_admin = _token(api, "acme", Role.ADMIN)["token"]
    for method, path, body in (
        ("GET", "/v1/agents", None),
        ("GET", "/v1/admin/dead-letters", None),
        ("POST", "/v1/admin/dead-letters/replay", {"all": True}),
        ("GET", "/v1/admin/tokens", None),
        ("POST", "/v1/admin/tokens", {"org_id": "acme", "role": "admin"}),
    ):
        refused = api.open(path, method=method, json=body, headers=_bearer(token))
        assert refused.status_code == 403, (method, path)
        allowed = api.open(path, method=method, json=body, headers=_bearer(org_admin))
        assert allowed.status_code in (200, 201), (method, path)


def test_a_revoked_token_stops_at_once(api: FlaskClient) -> None:
    created = _token(api, "acme", Role.SUBMITTER)
    assert api.get("/v1/jobs", headers=_bearer(created["token"])).status_code == 200
    revoked = api.post(f"/v1/admin/tokens/{created['token_id']}/revoke", headers=_bearer(ADMIN))
    assert revoked.status_code == 200
    assert revoked.get_json()["token"]["revoked_at"]
    response = api.get("/v1/jobs", headers=_bearer(created["token"]))
    assert response.status_code == 401
    assert "revoked" in response.get_json()["message"]
    unknown = api.post("/v1/admin/tokens/ffffffffffffffff/revoke", headers=_bearer(ADMIN))
    assert unknown.status_code == 404
    bad = api.post("/v1/admin/tokens/not-an-id/revoke", headers=_bearer(ADMIN))
    assert bad.status_code == 400


def test_an_expired_token_is_401(api: FlaskClient, redis_client: redis.Redis) -> None:
    token_id, secret, hashed = tokens.mint()
    tokens.store(
        redis_client,
        tokens.TokenRecord(
            token_id=token_id,
            org_id="acme",
            role=Role.VIEWER,
            name="",
            created_at="2020-01-01T00:00:00.000Z",
            digest=hashed,
            expires_at="2020-01-02T00:00:00.000Z",
        ),
        retention_s=20 * 365 * 24 * 3600,  # kept past its expiry: still known, refused
    )
    response = api.get("/v1/jobs", headers=_bearer(secret))
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"org_id": "acme", "role": "owner"},
        {"org_id": "a:b", "role": "viewer"},
        {"org_id": "acme", "role": "viewer", "extra": 1},
        {"org_id": "acme", "role": "viewer", "expires_in_s": 0},
        {"org_id": "acme", "role": "viewer", "name": "line\nbreak"},
    ],
)
def test_a_bad_token_request_is_400(api: FlaskClient, body: dict[str, Any]) -> None:
    response = api.post("/v1/admin/tokens", json=body, headers=_bearer(ADMIN))
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


def test_with_auth_off_nothing_asks_for_a_token(client: FlaskClient) -> None:
    response = client.post("/v1/jobs", json=_job("acme"))
    assert response.status_code == 201
    assert response.get_json()["job"]["submitted_by"] is None
    assert client.get("/v1/agents").status_code == 200
    assert client.get("/v1/admin/dead-letters").status_code == 200
    ignored = client.get("/v1/jobs", headers=_bearer("qgjob_0123456789abcdef_" + "A" * 43))
    assert ignored.status_code == 200


def test_with_auth_off_no_token_can_be_created(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    """With auth off every caller is an admin: a token minted then would be anyone's, and it
    would still work once the API runs with QGJOB_AUTH=tokens."""
    response = client.post("/v1/admin/tokens", json={"org_id": "acme", "role": "admin"})
    assert response.status_code == 409
    assert response.get_json()["error"] == "auth_off"
    assert "QGJOB_AUTH=tokens" in response.get_json()["message"]
    assert client.get("/v1/admin/tokens").get_json()["tokens"] == []
    assert not list(redis_client.scan_iter(Keys.token("*")))


def test_a_method_a_route_lacks_is_a_405_and_an_unknown_path_a_401(api: FlaskClient) -> None:
    for path in ("/healthz", "/v1/jobs/x", "/v1/admin/tokens"):
        response = api.open(path, method="TRACE")
        assert response.status_code == 405, path
        assert response.get_json()["error"] == "method_not_allowed"
    hidden = api.get("/v1/no-such-route")
    assert hidden.status_code == 401  # without a token, not even a 404 says what exists
    assert api.get("/v1/no-such-route", headers=_bearer(ADMIN)).status_code == 404


def test_a_malformed_path_id_is_a_400_after_the_token_check(api: FlaskClient) -> None:
    assert api.get("/v1/jobs/a%0Ab").status_code == 401
    response = api.get("/v1/jobs/a%0Ab", headers=_bearer(ADMIN))
    assert response.status_code == 400
    assert response.get_json()["field"] == "job_id"


def test_cancel_needs_a_submitter_of_the_jobs_org(api: FlaskClient) -> None:
    acme = _token(api, "acme", Role.SUBMITTER)
    beta = _token(api, "beta", Role.SUBMITTER)
    viewer = _token(api, "acme", Role.VIEWER)
    made = api.post("/v1/jobs", json=[_job("acme", 1)], headers=_bearer(acme["token"]))
    (job_id,) = [job["job_id"] for job in made.get_json()["jobs"]]
    run = api.post(
        "/v1/runs",
        json={"org_id": "acme", "app_version_id": "v1", "tests": ["r.js"]},
        headers=_bearer(acme["token"]),
    ).get_json()

    refused = api.post(f"/v1/jobs/{job_id}/cancel", headers=_bearer(viewer["token"]))
    assert refused.status_code == 403
    hidden = api.post(f"/v1/jobs/{job_id}/cancel", headers=_bearer(beta["token"]))
    assert hidden.status_code == 404  # another org's job: as if it did not exist
    bulk = api.post("/v1/jobs/cancel", json={"job_ids": [job_id]}, headers=_bearer(beta["token"]))
    assert bulk.status_code == 200
    assert bulk.get_json()["not_found"] == [job_id]
    assert bulk.get_json()["requested"] == []
    by_run = api.post(
        "/v1/jobs/cancel", json={"run_id": run["run_id"]}, headers=_bearer(beta["token"])
    )
    assert by_run.status_code == 404
    untouched = api.get(f"/v1/jobs/{job_id}", headers=_bearer(acme["token"])).get_json()
    assert untouched["cancel_requested_at"] is None

    done = api.post(f"/v1/jobs/{job_id}/cancel", headers=_bearer(acme["token"]))
    assert done.status_code == 202
    assert done.get_json()["cancel_requested_by"] == acme["token_id"]
