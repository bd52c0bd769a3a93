"""Hostile input refused before it reaches Redis (qgjob_api.guards): path ids, request
heads, JSON depth; through the app, whose routes never run for these requests."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_api.errors import HeaderTooLarge, InvalidJson, ValidationFailed
from qgjob_api.guards import (
    MAX_HEADER_FIELDS,
    MAX_HEADER_VALUE,
    MAX_JSON_DEPTH,
    check_depth,
    check_headers,
    check_path_id,
)


class _NoBroker:
    def publish(self, envelope: object) -> None:
        raise AssertionError("nothing is published here")

    def check(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture(scope="module")
def app() -> Flask:
    # Redis on a closed port: a request that reached Redis would answer 503, not 4xx.
    config = Config(
        redis_url="redis://127.0.0.1:1/0", rate_limit_read="off", rate_limit_submit="off"
    )
    return create_app(config, publisher_factory=_NoBroker)


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_depth_at_the_limit_passes_and_one_more_is_refused() -> None:
    check_depth(_nested(MAX_JSON_DEPTH))
    check_depth({"a": [{"b": _nested(MAX_JSON_DEPTH - 3)}]})
    with pytest.raises(InvalidJson, match=f"deeper than {MAX_JSON_DEPTH}"):
        check_depth(_nested(MAX_JSON_DEPTH + 1))


def test_path_ids_must_be_plain_identifiers() -> None:
    check_path_id("job_id", "3f2a-9c.x_1")
    check_path_id("token_id", "0123456789abcdef")
    check_path_id("other", "anything at all\n")  # not a key name: not checked here
    for bad in ("a b", "a\nb", "a:b", "*", "x" * 129, "é", "a/b"):
        with pytest.raises(ValidationFailed):
            check_path_id("job_id", bad)
    with pytest.raises(ValidationFailed, match="16 hex digits"):
        check_path_id("token_id", "0123456789ABCDEF")


def test_heads_are_bounded() -> None:
    check_headers([("X", "v" * MAX_HEADER_VALUE)] * MAX_HEADER_FIELDS)
    with pytest.raises(HeaderTooLarge):
        check_headers([("X", "v")] * (MAX_HEADER_FIELDS + 1))
    with pytest.raises(HeaderTooLarge):
        check_headers([("X", "v" * (MAX_HEADER_VALUE + 1))])


@pytest.mark.parametrize(
    "path", ["/v1/jobs/a%0Ab", "/v1/jobs/a%20b", "/v1/runs/%2A", "/v1/jobs/" + "x" * 129]
)
def test_a_malformed_path_id_is_a_400_before_redis(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert body["field"] in {"job_id", "run_id"}


def test_a_deep_body_is_a_400_before_redis(app: Flask) -> None:
    body = json.dumps({"jobs": _nested(MAX_JSON_DEPTH + 5)})
    response = app.test_client().post("/v1/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert "deeper than" in response.get_json()["message"]


def test_a_very_deep_body_is_a_400_not_a_crash(app: Flask) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = app.test_client().post("/v1/runs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


def test_too_many_or_too_long_header_fields_are_a_431(app: Flask) -> None:
    client = app.test_client()
    many = {f"X-Filler-{i}": "1" for i in range(MAX_HEADER_FIELDS + 1)}
    response = client.get("/v1/jobs/abc", headers=many)
    assert response.status_code == 431
    assert response.get_json()["error"] == "header_too_large"
    long_one = client.get("/v1/jobs/abc", headers={"X-Long": "v" * (MAX_HEADER_VALUE + 1)})
    assert long_one.status_code == 431


def test_the_spec_states_the_path_id_patterns(app: Flask) -> None:
    spec = app.test_client().get("/openapi.json").get_json()
    (param,) = spec["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"]
    assert param["schema"]["pattern"] == "^[A-Za-z0-9._-]+$"
    assert param["schema"]["maxLength"] == 128
    listing = spec["paths"]["/v1/jobs"]["get"]["parameters"]
    assert all(p["allowEmptyValue"] for p in listing)
