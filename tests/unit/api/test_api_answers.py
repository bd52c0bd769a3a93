"""Answers built through their models (qgjob_api.answers) are byte for byte what the routes
answered before (the seed contract), and the spec documents the headers the API reads and
sends (qgjob_api.openapi.finish)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from qgjob_api import answers, auth, openapi, ratelimits
from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_api.endpoints import ENDPOINTS
from qgjob_contract.records import Job


class _NoBroker:
    def publish(self, envelope: object) -> None:
        raise AssertionError("nothing is published here")

    def check(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app: Flask = create_app(
        Config(rate_limit_read="off", rate_limit_submit="off"), publisher_factory=_NoBroker
    )
    document: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    return document


def _jobs() -> list[Job]:
    plain = Job(
        job_id="j-1",
        org_id="acme",
        app_version_id="v1",
        test_path="a.js",
        priority=3,
        target="device",
        created_at="2026-12-02T00:00:00.000Z",
    )
    result = {
        "simulated": True,  # the agent's order, an unknown key, a missing one: kept as is
        "outcome": "failed",
        "zzz": [1, {"b": 2, "a": 1}],
        "duration_s": 0.25,
    }
    ended = Job(
        **{
            **plain.__dict__,
            "status": "failed",
            "result": result,  # type: ignore[dict-item]
            "history": [{"attempt": 1, "outcome": "failed", "extra": None}],
            "timeout_s": 1.5,
            "retries": 2,
            "not_before_ms": 12,
            "submitted_by": "0123456789abcdef",
        }
    )
    return [plain, ended]


@pytest.mark.parametrize("job", _jobs(), ids=["queued", "ended"])
def test_a_job_record_is_the_seeds_record_byte_for_byte(job: Job) -> None:
    assert json.dumps(answers.job_record(job)) == json.dumps(job.to_api())


def test_the_seed_submit_answer_keeps_its_three_fields() -> None:
    body = {"message": "Job submitted successfully", "job_id": "j-1", "assigned_agent": None}
    assert json.dumps(answers.shown(answers.SubmitAnswer, body)) == json.dumps(body)


def test_an_answer_that_breaks_its_model_is_refused() -> None:
    with pytest.raises(ValueError, match="requested"):
        answers.shown(answers.CancelAnswer, {"already_final": [], "not_found": []})


def test_the_submit_routes_document_the_idempotency_headers(spec: dict[str, Any]) -> None:
    for path in ("/submit", "/v1/jobs", "/v1/runs"):
        operation = spec["paths"][path]["post"]
        names = {(p["in"], p["name"]) for p in operation["parameters"]}
        assert ("header", "Idempotency-Key") in names, path
        ok = next(code for code in operation["responses"] if code.startswith("2"))
        assert "Idempotent-Replayed" in operation["responses"][ok]["headers"], path
    lookup = spec["paths"]["/v1/jobs/lookup"]["post"]
    assert "Idempotency-Key" not in {p["name"] for p in lookup.get("parameters", [])}


def test_429_and_503_document_retry_after(spec: dict[str, Any]) -> None:
    for item in spec["paths"].values():
        for operation in item.values():
            for code in ("429", "503"):
                if code in operation["responses"]:
                    assert "Retry-After" in operation["responses"][code]["headers"]
    assert "429" in spec["paths"]["/v1/jobs"]["get"]["responses"]


def test_with_tokens_the_bearer_scheme_guards_all_but_the_probes() -> None:
    config = Config(
        rate_limit_read="off",
        rate_limit_submit="off",
        auth_mode="tokens",
        admin_token="x" * 40,
    )
    app = create_app(config, publisher_factory=_NoBroker)
    headers = {"Authorization": f"Bearer {'x' * 40}"}
    spec = app.test_client().get("/openapi.json", headers=headers).get_json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path in ("/healthz", "/readyz"):
        assert spec["paths"][path]["get"]["security"] == []
    assert {"bearer": []} in spec["security"]


def test_with_auth_off_no_operation_requires_a_token(spec: dict[str, Any]) -> None:
    assert "bearer" in spec["components"]["securitySchemes"]  # described, for clients
    assert not spec.get("security")
    for item in spec["paths"].values():
        for operation in item.values():
            assert not operation.get("security"), operation["operationId"]


def test_every_endpoint_has_one_entry_for_access_budget_and_contract() -> None:
    assert set(auth.ACCESS) == set(ENDPOINTS) == set(openapi.OPERATIONS)
    assert {n for n, e in ENDPOINTS.items() if e.changes} == ratelimits.SUBMIT_ENDPOINTS
