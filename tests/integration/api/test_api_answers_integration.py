"""Every route's success answer is what the OpenAPI document says it is (issue 9, point 5):
each body validates against the answer model of its endpoint (qgjob_api.endpoints, the
table the spec is generated from), and holds no field that model does not declare. Run on
the real Redis and RabbitMQ, every route called once at least."""

from __future__ import annotations

import base64
import typing
from typing import Any

import pika
import pytest
import redis
from flask.testing import FlaskClient
from pydantic import BaseModel, RootModel
from werkzeug.test import TestResponse

from qgjob_api import tokens
from qgjob_api.answers import JobPage
from qgjob_api.endpoints import ENDPOINTS
from qgjob_contract import deadletters
from qgjob_contract.events import utc_now
from qgjob_contract.roles import Role
from tests.integration.api.conftest import MakeClient

ADMIN = "admin-secret-for-tests-0123456789abcdef"
_AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
_JOB = {"org_id": "acme", "app_version_id": "v1", "test_path": "a.js"}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation may hold (through lists, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def undeclared(model: type[BaseModel], body: Any, where: str = "body") -> list[str]:
    """Fields of `body` (and of the records in it) that `model` does not declare."""
    if issubclass(model, RootModel):
        fitting = [m for m in _models(model.model_fields["root"].annotation) if _fits(m, body)]
        return undeclared(fitting[0], body, where) if fitting else [f"{where}: fits no form"]
    if not isinstance(body, dict):
        return []
    problems = [f"{where}.{name}" for name in body if name not in model.model_fields]
    for name, field in model.model_fields.items():
        inner = _models(field.annotation)
        value = body.get(name)
        values = value if isinstance(value, list) else [value]
        for item in values:
            for kind in inner[:1]:
                problems += undeclared(kind, item, f"{where}.{name}")
    return problems


def _fits(model: type[BaseModel], body: Any) -> bool:
    try:
        model.model_validate(body)
    except ValueError:
        return False
    return True


@pytest.fixture(params=["tokens", "off"])
def auth_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(
    make_client: MakeClient,
    amqp_channel: pika.adapters.blocking_connection.BlockingChannel,
    live_agents: list[str],
    auth_mode: str,
) -> FlaskClient:
    if auth_mode == "tokens":
        return make_client(auth_mode="tokens", admin_token=ADMIN)
    return make_client(auth_mode="off")


class Calls:
    """Sends requests (as the admin with tokens; with no token with auth off) and checks
    each 2xx answer against its endpoint."""

    def __init__(self, api: FlaskClient, auth_mode: str) -> None:
        self.api = api
        self.as_admin = _AS_ADMIN if auth_mode == "tokens" else {}
        self.adapter = api.application.url_map.bind("qgjob.test")
        self.seen: set[str] = set()

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.as_admin, **kwargs.pop("headers", {})}
        response: TestResponse = self.api.open(path, method=method, headers=headers, **kwargs)
        assert 200 <= response.status_code < 300, (path, response.get_data(as_text=True))
        endpoint, _ = self.adapter.match(path.partition("?")[0], method=method)
        self.seen.add(endpoint)
        answer = ENDPOINTS[endpoint].answer
        if answer is None:  # the document and its page: not answers of a model
            return response.get_data()
        assert response.status_code in (ENDPOINTS[endpoint].ok, ENDPOINTS[endpoint].also_ok)
        body = response.get_json()
        answer.model_validate(body)
        assert undeclared(answer, body) == [], (endpoint, undeclared(answer, body))
        return body


def test_every_routes_answer_is_its_documented_model(
    api: FlaskClient, redis_client: redis.Redis, auth_mode: str
) -> None:
    """Every route, under both auth modes."""
    call = Calls(api, auth_mode)
    submitted = call("POST", "/submit", json=_JOB)
    job_id = submitted["job_id"]
    call("GET", f"/status/{job_id}")
    call("GET", f"/v1/jobs/{job_id}")
    one = call("POST", "/v1/jobs", json=_JOB, headers={"Idempotency-Key": "k1"})
    call("POST", "/v1/jobs", json=[_JOB, _JOB])
    call("POST", "/v1/jobs", json={"jobs": [_JOB]})
    call("GET", "/v1/jobs?org_id=acme&limit=2")
    call("POST", "/v1/jobs/lookup", json={"job_ids": [job_id, one["job"]["job_id"]]})
    run = call("POST", "/v1/runs", json={**_without_test(_JOB), "tests": ["a.js", "b.js"]})
    call("GET", f"/v1/runs/{run['run_id']}")
    call("GET", "/v1/runs?org_id=acme")
    call("POST", f"/v1/jobs/{job_id}/cancel")
    call("POST", "/v1/jobs/cancel", json={"run_id": run["run_id"]})
    call("GET", "/v1/agents")
    letter = deadletters.DeadLetter(
        event_id="e-1",
        type="",
        routing_key="job.finished",
        reason="rejected",
        queue="qgjob.scheduler",
        dead_at_ms=1,
        body_b64=base64.b64encode(b"not an envelope").decode(),
    )
    deadletters.store(redis_client, letter)
    listed = call("GET", "/v1/admin/dead-letters?limit=5")
    assert [entry["event_id"] for entry in listed["dead_letters"]] == ["e-1"]
    replayed = call("POST", "/v1/admin/dead-letters/replay", json={"event_ids": ["e-1", "e-2"]})
    assert replayed == {"replayed": [], "missing": ["e-2"], "unreplayable": ["e-1"]}
    if auth_mode == "tokens":
        token_id = call("POST", "/v1/admin/tokens", json={"org_id": "acme", "role": "viewer"})[
            "token_id"
        ]
    else:  # no token is created with auth off: one made earlier, with tokens, is planted
        refused = api.post("/v1/admin/tokens", json={"org_id": "acme", "role": "viewer"})
        assert refused.status_code == 409, refused.get_data(as_text=True)
        assert refused.get_json()["error"] == "auth_off"
        call.seen.add("tokens.create_token")
        token_id, _, digest = tokens.mint()
        record = tokens.TokenRecord(
            token_id=token_id,
            org_id="acme",
            role=Role.VIEWER,
            name="made-with-tokens",
            created_at=utc_now(),
            digest=digest,
            expires_at=None,
        )
        tokens.store(redis_client, record, retention_s=60)
    listed_tokens = call("GET", "/v1/admin/tokens?org_id=acme")
    assert [entry["token_id"] for entry in listed_tokens["tokens"]] == [token_id]
    call("POST", f"/v1/admin/tokens/{token_id}/revoke")
    call("GET", "/healthz")
    call("GET", "/readyz")
    call("GET", "/openapi.json")
    call("GET", "/docs")
    assert call.seen == set(ENDPOINTS)


def _without_test(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if key != "test_path"}


def test_an_undeclared_field_is_found() -> None:
    """The checker above can fail: a field a model does not declare is reported."""
    assert undeclared(JobPage, {"jobs": [], "next_cursor": None, "extra": 1}) == ["body.extra"]
    assert undeclared(JobPage, {"jobs": [{"job_id": "j", "bogus": 1}], "next_cursor": None}) == [
        "body.jobs.bogus"
    ]
