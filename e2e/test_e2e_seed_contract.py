"""(c) The seed project's contract, field by field: POST /submit and GET /status/<job_id>."""

from __future__ import annotations

import uuid

import pytest
import requests

from e2e.conftest import Stack


def test_submit_returns_201_with_job_id_and_status_tracks_it_to_passed(stack: Stack) -> None:
    body = {
        "org_id": "qualgent",
        "app_version_id": f"seed-{uuid.uuid4().hex[:8]}",
        "test_path": "tests/onboarding.spec.js",
        "priority": 1,
        "target": "emulator",
    }
    response = stack.post("/submit", body)

    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    submitted = response.json()
    assert isinstance(submitted["message"], str)
    assert submitted["message"]
    job_id = submitted["job_id"]
    assert isinstance(job_id, str)
    assert job_id
    assert submitted["assigned_agent"] is None or isinstance(submitted["assigned_agent"], str)

    status = stack.get(f"/status/{job_id}")
    assert status.status_code == 200
    record = status.json()
    assert record["job_id"] == job_id
    assert record["status"] in {"queued", "assigned", "running", "passed"}
    assert "assigned_agent" in record

    (final,) = stack.wait_final([job_id], timeout=60)
    record = stack.get(f"/status/{job_id}").json()
    assert record == final
    assert record["status"] == "passed"
    assert record["assigned_agent"].startswith("emulator-")
    for field in ("org_id", "app_version_id", "test_path", "priority", "target"):
        assert record[field] == body[field]
    # It went queued -> assigned -> running -> passed: each step left its timestamp, in order.
    assert record["created_at"] <= record["assigned_at"] <= record["started_at"]
    assert record["started_at"] <= record["finished_at"]
    assert record["attempts"] == 1
    assert record["result"]["simulated"] is True


def test_priority_and_target_default_to_1_and_emulator(stack: Stack) -> None:
    response = stack.post(
        "/submit",
        {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/defaults.spec.js"},
    )
    assert response.status_code == 201
    record = stack.get(f"/status/{response.json()['job_id']}").json()
    assert record["priority"] == 1
    assert record["target"] == "emulator"


def test_unknown_job_id_is_404_with_error(stack: Stack) -> None:
    response = stack.get(f"/status/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"app_version_id": "v", "test_path": "tests/a.js"}, "org_id"),
        ({"org_id": "o", "app_version_id": "v", "test_path": "../etc/passwd"}, "test_path"),
        ({"org_id": "o", "app_version_id": "v", "test_path": "t.js", "priority": 99}, "priority"),
        (
            {"org_id": "o", "app_version_id": "v", "test_path": "t.js", "target": "toaster"},
            "target",
        ),
        ({"org_id": "o" * 10_000, "app_version_id": "v", "test_path": "t.js"}, "org_id"),
        ({"org_id": "o", "app_version_id": "v", "test_path": "t.js", "priority": "1"}, "priority"),
        ({"org_id": "o", "app_version_id": 7, "test_path": "t.js"}, "app_version_id"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    response = stack.post("/submit", body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "validation_error"
    assert error["field"] == field
    assert field in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_non_json_body_is_400_json_error(stack: Stack, content_type: str) -> None:
    response = requests.post(
        stack.api_url + "/submit",
        data=b"org_id=qualgent&test_path=x",
        headers={"Content-Type": content_type},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert response.json()["message"]


def test_health_and_readiness(stack: Stack) -> None:
    assert stack.get("/healthz").status_code == 200
    assert stack.get("/readyz").status_code == 200
