"""`qgjob submit` without --wait: the request it sends and what it prints."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, Run


def test_submit_prints_the_job_id_and_sends_the_default_target_and_priority(
    qgjob: Run, api: FakeApi
) -> None:
    # The challenge's own example: neither --target nor --priority.
    result = qgjob(
        "submit", "--org-id=qualgent", "--app-version-id=xyz123", "--test=tests/onboarding.spec.js"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == list(api.jobs)
    assert api.bodies() == [
        [
            {
                "org_id": "qualgent",
                "app_version_id": "xyz123",
                "test_path": "tests/onboarding.spec.js",
                "priority": 1,
                "target": "emulator",
            }
        ]
    ]
    assert api.requests[0].url == "http://localhost:5000/v1/jobs"


def test_repeated_test_sends_one_request_with_one_job_each_and_prints_ids_in_order(
    qgjob: Run, api: FakeApi
) -> None:
    result = qgjob(
        "submit",
        "--org-id",
        "acme",
        "--app-version-id",
        "v2",
        "--test",
        "a.spec.js",
        "--test",
        "b.spec.js",
        "--test",
        "c.spec.js",
        "--target",
        "device",
        "--priority",
        "5",
    )

    assert result.exit_code == 0, result.output
    assert len(api.requests) == 1
    (body,) = api.bodies()
    assert [job["test_path"] for job in body] == ["a.spec.js", "b.spec.js", "c.spec.js"]
    assert {(job["target"], job["priority"], job["org_id"]) for job in body} == {
        ("device", 5, "acme")
    }
    ids = result.stdout.splitlines()
    assert [api.jobs[i]["test_path"] for i in ids] == ["a.spec.js", "b.spec.js", "c.spec.js"]


def test_submit_json_prints_the_records(qgjob: Run, api: FakeApi) -> None:
    result = qgjob("submit", "--org-id=o", "--app-version-id=v", "--test=t1", "--test=t2", "--json")

    assert result.exit_code == 0, result.output
    jobs = json.loads(result.stdout)["jobs"]
    assert [job["job_id"] for job in jobs] == list(api.jobs)
    assert {job["status"] for job in jobs} == {"queued"}


def test_api_url_comes_from_qgjob_api_url(qgjob: Run, api: FakeApi) -> None:
    result = qgjob(
        "submit",
        "--org-id=o",
        "--app-version-id=v",
        "--test=t",
        env={"QGJOB_API_URL": "https://qgjob.example.com:8443/"},
    )

    assert result.exit_code == 0, result.output
    assert api.requests[0].url == "https://qgjob.example.com:8443/v1/jobs"


def test_api_url_option_wins_over_the_environment(qgjob: Run, api: FakeApi) -> None:
    result = qgjob(
        "--api-url=http://option:1",
        "submit",
        "--org-id=o",
        "--app-version-id=v",
        "--test=t",
        env={"QGJOB_API_URL": "http://env:2"},
    )

    assert result.exit_code == 0, result.output
    assert api.requests[0].url == "http://option:1/v1/jobs"


def test_timeout_without_wait_is_a_usage_error(qgjob: Run, api: FakeApi) -> None:
    result = qgjob("submit", "--org-id=o", "--app-version-id=v", "--test=t", "--timeout=5")

    assert result.exit_code == 2
    assert result.stderr == "qgjob: error: --timeout needs --wait (see 'qgjob submit --help')\n"
    assert api.requests == []
