"""`qgjob status` and `qgjob list`: human output, --json, and the query sent."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, Run

RECORD = {
    "job_id": "job-1",
    "org_id": "qualgent",
    "app_version_id": "xyz123",
    "test_path": "tests/onboarding.spec.js",
    "priority": 1,
    "target": "emulator",
    "status": "failed",
    "final": True,
    "assigned_agent": "emulator-7",
    "batch_id": "batch-9",
    "attempts": 1,
    "created_at": "2030-01-01T00:00:00.000+00:00",
    "assigned_at": "2030-01-01T00:00:01.000+00:00",
    "started_at": "2030-01-01T00:00:04.000+00:00",
    "finished_at": "2030-01-01T00:00:05.000+00:00",
    "result": {
        "outcome": "failed",
        "duration_s": 1.25,
        "install_paid": True,
        "install_s": 3.0,
        "log_tail": "expected 'Welcome'\nfound 'Error'",
        "driver": "simulator",
        "simulated": True,
    },
}


def test_status_shows_status_agent_and_result(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, RECORD)

    result = qgjob("status", "--job-id=job-1")

    assert result.exit_code == 0, result.output
    assert api.requests[0].url == "http://localhost:5000/v1/jobs/job-1"
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "job_id:          job-1",
        "status:          failed",
        "assigned_agent:  emulator-7",
    ]
    assert (
        "result:          failed in 1.25s, install paid (3.00s), driver simulator (simulated)"
        in (lines)
    )
    assert lines[-3:] == ["log_tail:", "  expected 'Welcome'", "  found 'Error'"]


def test_status_of_a_queued_job_shows_dashes_for_what_is_not_known(
    api: FakeApi, qgjob: Run
) -> None:
    api.respond(
        200, {**RECORD, "status": "queued", "final": False, "assigned_agent": None, "result": None}
    )

    result = qgjob("status", "--job-id=job-1")

    assert result.exit_code == 0, result.output
    assert "assigned_agent:  -" in result.stdout.splitlines()
    assert "result" not in result.stdout


def test_status_quotes_the_job_id_in_the_path(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, RECORD)

    qgjob("status", "--job-id=a/../b")

    assert api.requests[0].url == "http://localhost:5000/v1/jobs/a%2F..%2Fb"


def test_status_json_is_the_record(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, RECORD)

    result = qgjob("status", "--job-id=job-1", "--json")

    assert json.loads(result.stdout) == RECORD


def test_list_sends_only_the_filters_given_and_prints_a_table(api: FakeApi, qgjob: Run) -> None:
    api.respond(
        200,
        {
            "jobs": [
                RECORD,
                {
                    **RECORD,
                    "job_id": "job-2",
                    "status": "running",
                    "final": False,
                    "assigned_agent": None,
                },
            ],
            "next_cursor": None,
        },
    )

    result = qgjob("list", "--org-id=qualgent", "--status=failed", "--limit=2")

    assert result.exit_code == 0, result.output
    url = urlsplit(api.requests[0].url or "")
    assert url.path == "/v1/jobs"
    assert dict(parse_qsl(url.query)) == {"org_id": "qualgent", "status": "failed", "limit": "2"}
    header, first, second = result.stdout.splitlines()
    assert header.split() == [
        "JOB",
        "ID",
        "STATUS",
        "TARGET",
        "APP",
        "VERSION",
        "TEST",
        "AGENT",
        "CREATED",
    ]
    assert first.split() == [
        "job-1",
        "failed",
        "emulator",
        "xyz123",
        "tests/onboarding.spec.js",
        "emulator-7",
        "2030-01-01T00:00:00.000+00:00",
    ]
    assert second.split()[:2] == ["job-2", "running"]
    assert first.index("failed") == header.index("STATUS") == second.index("running")
    assert result.stderr == ""


def test_list_tells_how_to_get_the_next_page(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"jobs": [RECORD], "next_cursor": "c-42"})

    result = qgjob("list", "--target=emulator")

    assert result.exit_code == 0, result.output
    assert result.stderr == "more jobs: add --cursor c-42\n"
    qgjob("list", "--cursor=c-42")
    assert dict(parse_qsl(urlsplit(api.requests[1].url or "").query)) == {"cursor": "c-42"}


def test_list_json_is_the_page(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"jobs": [RECORD], "next_cursor": "c-42"})

    result = qgjob("list", "--json")

    assert json.loads(result.stdout) == {"jobs": [RECORD], "next_cursor": "c-42"}


def test_list_with_no_jobs_says_so(qgjob: Run) -> None:
    result = qgjob("list", "--app-version-id=none")

    assert result.exit_code == 0
    assert result.stdout == "no jobs\n"
