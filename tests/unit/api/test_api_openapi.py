"""The OpenAPI document (qgjob_api.openapi) against the app's routes, the README's route
tables and the CLI's requests: one contract, spelled once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask import Flask
from pydantic import BaseModel
from requests.adapters import BaseAdapter

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_api.openapi import LEGACY, OPERATIONS
from qgjob_api.store import Cursor
from qgjob_cli.client import Client
from qgjob_contract.records import Job

README = Path(__file__).resolve().parents[3] / "README.md"
_ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)", re.MULTILINE)
_METHODS = {"get", "post", "put", "patch", "delete"}


class _NoBroker:
    def publish(self, envelope: object) -> None:
        raise AssertionError("nothing is published here")

    def check(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture(scope="module")
def app() -> Flask:
    config = Config(rate_limit_read="off", rate_limit_submit="off")
    return create_app(config, publisher_factory=_NoBroker)


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def _operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in _METHODS
    }


def _routes(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        found |= {(m, path) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    return found


def test_the_document_is_openapi_3_1_with_every_route(app: Flask, spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    assert _operations(spec) == _routes(app)
    assert set(app.view_functions) == set(OPERATIONS)


def test_every_operation_documents_json_errors(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            answers = operation["responses"]
            # every route: an outage, a method it lacks, a head past the guards' bounds
            assert {"503", "405", "431"} <= set(answers), (method, path)
            for code, answer in answers.items():
                if code.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    schema = schemas[ref.rsplit("/", 1)[-1]]
                    assert {"error", "message"} <= set(schema["required"]), (method, path, code)


def test_the_seed_routes_are_marked_legacy(spec: dict[str, Any]) -> None:
    legacy = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in _METHODS and operation.get("deprecated")
    }
    assert legacy == {("POST", "/submit"), ("GET", "/status/{job_id}")}
    assert LEGACY in spec["paths"]["/submit"]["post"]["tags"]


def test_the_job_record_schema_has_every_contract_field(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    record = schemas["JobRecord"]
    expected = {name for name in Job.__dataclass_fields__} | {"final"}
    assert set(record["properties"]) == expected
    assert set(record["required"]) == expected


def test_bodies_are_the_validated_models(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/runs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/RunIn")
    run_in = spec["components"]["schemas"]["RunIn"]
    assert run_in["additionalProperties"] is False
    assert set(run_in["required"]) == {"org_id", "app_version_id", "tests"}


def test_the_readme_route_tables_match_the_spec(spec: dict[str, Any]) -> None:
    readme = README.read_text()
    rows = {(method, re.sub(r"<([^>]+)>", r"{\1}", path)) for method, path in _ROW.findall(readme)}
    assert rows == _operations(spec)


class _Recorder(BaseAdapter):
    """Records every request the CLI's client sends, and answers 404 (the CLI raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 404
        response._content = b'{"error": "not_found", "message": "recorded"}'
        response.headers["Content-Type"] = "application/json"
        response.request = request
        return response

    def close(self) -> None: ...


def _cli_requests() -> list[requests.PreparedRequest]:
    recorder = _Recorder()
    session = requests.Session()
    session.mount("http://", recorder)
    client = Client("http://qgjob.test", session=session, token="t")  # noqa: S106
    job = {"org_id": "acme", "app_version_id": "v1", "test_path": "a.js", "target": "device"}
    calls = [
        lambda: client.submit([job]),
        lambda: client.get_job("j-1"),
        lambda: client.lookup_jobs(["j-1"]),
        lambda: client.create_run(
            {"org_id": "acme", "app_version_id": "v1", "targets": ["device"], "tests": ["a.js"]}
        ),
        lambda: client.get_run("r-1"),
        lambda: client.list_runs(org_id="acme", limit=5, cursor=Cursor(1, "j").encode()),
        lambda: client.list_jobs(org_id="acme", status="failed", target="device", limit=5),
        lambda: client.dead_letters(10),
        lambda: client.replay_dead_letters(["e-1"]),
        lambda: client.replay_dead_letters(None),
        lambda: client.create_token("acme", "viewer", name="ci", expires_in_s=60),
        lambda: client.list_tokens("acme"),
        lambda: client.revoke_token("0123456789abcdef"),
        lambda: client.cancel_jobs(job_ids=["j-1"]),
        lambda: client.cancel_jobs(run_id="r-1"),
    ]
    for call in calls:
        with pytest.raises(Exception, match="recorded"):
            call()
    return recorder.sent


def test_every_request_the_cli_sends_is_an_operation_with_a_valid_body(app: Flask) -> None:
    adapter = app.url_map.bind("qgjob.test")
    for sent in _cli_requests():
        assert sent.method is not None
        assert sent.url is not None
        parts = urlsplit(sent.url)
        endpoint, _ = adapter.match(parts.path, method=sent.method)
        operation = OPERATIONS[endpoint]
        query: type[BaseModel] | None = operation["query"]
        if parts.query:
            assert query is not None, (sent.method, parts.path)
            query.model_validate(dict(parse_qsl(parts.query)))
        body: type[BaseModel] | None = operation["json"]
        if sent.body:
            assert body is not None, (sent.method, parts.path)
            body.model_validate(json.loads(sent.body))
