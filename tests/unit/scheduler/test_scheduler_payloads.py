"""Event payloads are checked before anything is written; bad ones are InvalidEvent."""

from __future__ import annotations

from typing import Any

import pytest

from qgjob_contract.events import AgentHeartbeat, JobFinished, JobsSubmitted, utc_now
from qgjob_scheduler.errors import InvalidEvent
from qgjob_scheduler.payloads import parse, timestamp


def finished(**result: Any) -> dict[str, Any]:
    return {
        "job_id": "j1",
        "batch_id": "b1",
        "agent_id": "emu-1",
        "finished_at": "2026-11-29T10:00:01.250+00:00",
        "result": {
            "outcome": "passed",
            "duration_s": 1.0,
            "install_paid": True,
            "install_s": 3.0,
            "log_tail": "ok",
            "driver": "simulator",
            "simulated": True,
            **result,
        },
    }


def heartbeat(**overrides: Any) -> dict[str, Any]:
    payload = {
        "agent_id": "emu-1",
        "instance_id": "i1",
        "seq": 1,
        "target": "emulator",
        "state": "idle",
        "installed_app_version": None,
        "installed_org_id": None,
        "installs": 0,
        "jobs_run": 0,
        "current_batch_id": None,
        "last_batch_id": "b0",
        "sent_at": utc_now(),
        "extra_field_from_a_newer_agent": 1,
    }
    payload.update(overrides)
    return payload


def test_valid_finished_keeps_its_result_without_absent_optional_fields() -> None:
    payload = parse(JobFinished, finished())
    assert payload["result"] == finished()["result"]
    with_reason = parse(JobFinished, finished(outcome="error", reason="install_failed"))
    assert with_reason["result"]["reason"] == "install_failed"


@pytest.mark.parametrize("outcome", ["running", "queued", "assigned", "exploded"])
def test_finished_with_a_non_final_outcome_is_invalid(outcome: str) -> None:
    with pytest.raises(InvalidEvent, match="outcome"):
        parse(JobFinished, finished(outcome=outcome))


@pytest.mark.parametrize("missing", ["job_id", "batch_id", "finished_at", "result"])
def test_finished_missing_a_field_is_invalid(missing: str) -> None:
    payload = finished()
    del payload[missing]
    with pytest.raises(InvalidEvent, match=missing):
        parse(JobFinished, payload)


def test_heartbeat_ignores_unknown_fields_and_checks_enums() -> None:
    assert parse(AgentHeartbeat, heartbeat())["agent_id"] == "emu-1"
    with pytest.raises(InvalidEvent, match="target"):
        parse(AgentHeartbeat, heartbeat(target="mainframe"))
    with pytest.raises(InvalidEvent, match="state"):
        parse(AgentHeartbeat, heartbeat(state="sleepy"))
    with pytest.raises(InvalidEvent, match="installs"):
        parse(AgentHeartbeat, heartbeat(installs=-1))
    with pytest.raises(InvalidEvent, match="seq"):
        parse(AgentHeartbeat, heartbeat(seq=0))
    with pytest.raises(InvalidEvent, match="instance_id"):
        parse(AgentHeartbeat, heartbeat(instance_id=""))


def test_timestamps_without_a_time_zone_are_invalid() -> None:
    with pytest.raises(InvalidEvent, match="sent_at"):
        parse(AgentHeartbeat, heartbeat(sent_at="2026-11-29T10:00:00"))


def submitted(**overrides: Any) -> dict[str, Any]:
    return {
        "job_id": "j1",
        "org_id": "qualgent",
        "app_version_id": "xyz123",
        "test_path": "tests/a.spec.js",
        "priority": 1,
        "target": "emulator",
        "created_at": utc_now(),
        **overrides,
    }


def test_submitted_keeps_every_job_in_order() -> None:
    payload = parse(JobsSubmitted, {"jobs": [submitted(job_id="j1"), submitted(job_id="j2")]})
    assert [job["job_id"] for job in payload["jobs"]] == ["j1", "j2"]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"jobs": []}, "jobs"),
        ({}, "jobs"),
        ({"jobs": [submitted(), submitted(job_id="")]}, "job_id"),
        ({"jobs": [submitted(target="mainframe")]}, "target"),
        ({"jobs": [submitted(created_at="2026-11-29T10:00:00")]}, "created_at"),
    ],
)
def test_submitted_with_no_job_or_one_bad_job_is_invalid(
    payload: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidEvent, match=problem):
        parse(JobsSubmitted, payload)


def test_timestamps_are_stored_in_utc_with_milliseconds() -> None:
    assert timestamp("2026-11-29T11:00:01.25+01:00") == "2026-11-29T10:00:01.250+00:00"
