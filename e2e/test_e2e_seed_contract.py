"""(c) The seed project's contract, exactly, through gunicorn: POST /submit and
GET /status/<job_id>, and the documented error bodies."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from e2e.conftest import Stack

# The /status body: the job record as README.md documents it (its "A job record" list, and
# the retry fields the scheduler sets), spelled out here so that a field the API gains, loses
# or renames fails this test instead of following the implementation.
RECORD_FIELDS = {
    "job_id",
    "org_id",
    "app_version_id",
    "test_path",
    "priority",
    "target",
    "created_at",
    "status",
    "assigned_agent",
    "batch_id",
    "attempts",
    "assigned_at",
    "started_at",
    "finished_at",
    "result",
    "run_id",
    "history",
    "retries",
    "timeout_s",
    "queue_ttl_s",
    "flaky",
    "cancel_requested_at",
    "cancel_requested_by",
    "submitted_by",
    "not_before_ms",
    "avoid_agent",
    "avoid_until_ms",
    "final",
}
# A final job's `result` (README: `reason` only when one is given: not for a pass).
RESULT_FIELDS = {
    "outcome",
    "duration_s",
    "install_paid",
    "install_s",
    "log_tail",
    "driver",
    "simulated",
}
# One entry of `history` (README, "History").
HISTORY_FIELDS = {
    "attempt",
    "agent_id",
    "batch_id",
    "instance_id",
    "assigned_at",
    "started_at",
    "finished_at",
    "outcome",
    "reason",
    "retried",
}
SUBMIT_FIELDS = {"message", "job_id", "assigned_agent"}


def _json_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """An error answer exactly as documented: JSON {"error", "message"[, "field"]}."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    expected = {"error", "message", "field"} if code == "validation_error" else {"error", "message"}
    assert set(body) == expected, body
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"].strip()
    assert "\n" not in body["message"]
    return body


def test_submit_returns_201_with_job_id_and_status_tracks_it_to_passed(stack: Stack) -> None:
    body = {
        "org_id": "qualgent",
        "app_version_id": f"seed-{uuid.uuid4().hex[:8]}",
        "test_path": "tests/onboarding.spec.js",
        "priority": 1,
        "target": "emulator",
    }
    response = stack.post("/submit", body)

    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    submitted = response.json()
    assert set(submitted) == SUBMIT_FIELDS
    assert isinstance(submitted["message"], str)
    assert submitted["message"].strip()
    assert submitted["assigned_agent"] is None  # the seed contract: null at submit
    job_id = submitted["job_id"]
    assert str(uuid.UUID(job_id)) == job_id

    status = stack.read(f"/status/{job_id}")  # rides out a 5xx only: the 200 is asserted
    assert status.status_code == 200, status.text
    assert status.headers["Content-Type"].startswith("application/json")
    record = status.json()
    assert set(record) == RECORD_FIELDS
    assert record["job_id"] == job_id
    assert record["status"] in {"queued", "assigned", "running", "passed"}
    assert record["final"] is (record["status"] == "passed")

    (final,) = stack.wait_final([job_id], timeout=60)
    status = stack.read(f"/status/{job_id}")
    assert status.status_code == 200, status.text
    record = status.json()
    assert record == final
    assert set(record) == RECORD_FIELDS
    assert record["status"] == "passed"
    assert record["final"] is True
    emulators = {a["agent_id"] for a in stack.agents() if a["target"] == "emulator"}
    assert record["assigned_agent"] in emulators
    assert record["batch_id"]
    # one attempt, the final one: its history is that attempt
    (entry,) = record["history"]
    assert set(entry) == HISTORY_FIELDS, entry
    assert (entry["attempt"], entry["outcome"], entry["retried"]) == (1, "passed", False)
    assert (entry["agent_id"], entry["batch_id"]) == (record["assigned_agent"], record["batch_id"])
    assert record["run_id"] is None or isinstance(record["run_id"], str)
    for field in ("org_id", "app_version_id", "test_path", "priority", "target"):
        assert record[field] == body[field]
    # It went queued -> assigned -> running -> passed: each step left its timestamp, in order.
    assert record["created_at"] <= record["assigned_at"] <= record["started_at"]
    assert record["started_at"] <= record["finished_at"]
    assert record["attempts"] == 1
    assert set(record["result"]) == RESULT_FIELDS, record["result"]
    assert record["result"]["outcome"] == "passed"
    assert record["result"]["simulated"] is True


def test_priority_and_target_default_to_1_and_emulator(stack: Stack) -> None:
    response = stack.post(
        "/submit",
        {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/defaults.spec.js"},
    )
    assert response.status_code == 201
    assert response.status_code == 201, response.text
    assert set(response.json()) == SUBMIT_FIELDS
    record = stack.job(response.json()["job_id"])
    assert set(record) == RECORD_FIELDS
    assert record["priority"] == 1
    assert record["target"] == "emulator"


def test_unknown_job_id_is_404_with_error(stack: Stack) -> None:
    _json_error(stack.get(f"/status/{uuid.uuid4()}"), 404, "not_found")


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
    error = _json_error(stack.post("/submit", body), 400, "validation_error")
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_non_json_body_is_400_json_error(stack: Stack, content_type: str) -> None:
    response = requests.post(
        stack.api_url + "/submit",
        data=b"org_id=qualgent&test_path=x",
        headers={"Content-Type": content_type},
        timeout=10,
    )
    _json_error(response, 400, "invalid_json")


def test_health_and_readiness(stack: Stack) -> None:
    assert stack.get("/healthz").status_code == 200
    ready = stack.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"redis": "ok", "rabbitmq": "ok"}}


def test_unknown_route_and_wrong_method_are_json_errors(stack: Stack) -> None:
    _json_error(stack.get("/nope"), 404, "not_found")
    _json_error(requests.delete(stack.api_url + "/submit", timeout=10), 405, "method_not_allowed")
