"""`qgjob run`, `wait`, `rerun` and `runs` against the fake API: requests, progress on a
terminal and in a log, the final report, JSON, JUnit and every exit code of a wait."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import xmlschema

from qgjob_cli.exit_codes import ExitCode
from tests.unit.cli.test_cli_errors import without_submit_retries

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, FakeClock, Run

SCHEMA = xmlschema.XMLSchema(Path(__file__).parents[2] / "schemas" / "junit.xsd")
RUN = ("run", "--org-id=qualgent", "--app-version-id=xyz123")


def run_bodies(api: FakeApi) -> list[dict[str, Any]]:
    return [
        json.loads(r.body or b"{}") for r in api.requests if r.url and r.url.endswith("/v1/runs")
    ]


def test_a_matrix_run_is_one_request_and_each_poll_is_one_request(
    qgjob: Run, api: FakeApi, clock: FakeClock
) -> None:
    result = qgjob(*RUN, "--target=emulator", "--target=device", "tests/a.js", "tests/b.js")

    assert result.exit_code == 0, result.output
    assert run_bodies(api) == [
        {
            "org_id": "qualgent",
            "app_version_id": "xyz123",
            "targets": ["emulator", "device"],
            "tests": ["tests/a.js", "tests/b.js"],
            "priority": 1,
        }
    ]
    polls = [r for r in api.requests if r.method == "GET"]
    assert [r.url for r in polls] == ["http://localhost:5000/v1/runs/run-1"] * 3
    assert clock.sleeps == [1.0, 1.0]
    assert result.stdout == "run run-1: 4 jobs: 4 passed in 2s\n"


def test_org_id_comes_from_the_environment_and_the_token_is_a_bearer_header(
    qgjob: Run, api: FakeApi
) -> None:
    result = qgjob(
        "run",
        "--app-version-id=v",
        "tests/a.js",
        env={"QGJOB_ORG_ID": "from-env", "QGJOB_TOKEN": "s3cret"},
    )

    assert result.exit_code == 0, result.output
    assert run_bodies(api)[0]["org_id"] == "from-env"
    assert {r.headers.get("Authorization") for r in api.requests} == {"Bearer s3cret"}
    assert "s3cret" not in result.output


def test_no_token_sends_no_authorization_header(qgjob: Run, api: FakeApi) -> None:
    qgjob(*RUN, "tests/a.js")
    assert all("Authorization" not in r.headers for r in api.requests)


def test_flags_win_over_the_environment(qgjob: Run, api: FakeApi) -> None:
    result = qgjob(
        "--api-url=http://flag:1", *RUN, "tests/a.js", env={"QGJOB_API_URL": "http://env:2"}
    )
    assert result.exit_code == 0, result.output
    assert run_bodies(api)[0]["org_id"] == "qualgent"
    assert api.requests[0].url == "http://flag:1/v1/runs"


def test_globs_and_tests_from_a_file_are_expanded_in_order_once_each(
    qgjob: Run, api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tests" / "auth").mkdir(parents=True)
    for name in ("tests/b.spec.js", "tests/a.spec.js", "tests/auth/login.spec.js"):
        (tmp_path / name).write_text("// test\n")
    (tmp_path / "suite.txt").write_text("# smoke suite\n\ntests/extra.spec.js\ntests/*.spec.js\n")
    monkeypatch.chdir(tmp_path)

    result = qgjob(*RUN, "tests/**/*.spec.js", "--tests-from=suite.txt")

    assert result.exit_code == 0, result.output
    assert run_bodies(api)[0]["tests"] == [
        "tests/a.spec.js",
        "tests/auth/login.spec.js",
        "tests/b.spec.js",
        "tests/extra.spec.js",
    ]


def test_a_glob_matching_nothing_is_a_usage_error(
    qgjob: Run, api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = qgjob(*RUN, "tests/*.spec.js")

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.count("\n") == 1
    assert "matches no file" in result.stderr
    assert api.requests == []


def test_no_tests_is_a_usage_error(qgjob: Run, api: FakeApi) -> None:
    result = qgjob(*RUN)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("qgjob: error: no tests given")
    assert api.requests == []


def test_in_a_log_progress_is_plain_lines_and_each_failure_its_own_line(
    qgjob: Run, clock: FakeClock
) -> None:
    result = qgjob(*RUN, "tests/a.js", "tests/x_fail.js", "tests/infra.js", "--poll-interval=5")

    assert result.exit_code == ExitCode.TESTS_FAILED
    assert "\r" not in result.stderr
    assert "\x1b" not in result.stderr
    assert result.stderr.splitlines() == [
        "run run-1: 3 jobs (3 tests x 1 target), app version xyz123",
        "0/3 final | 3 assigned | 0s elapsed",
        # 5 s later: not yet 10 s since the last status line, so none
        "FAILED tests/x_fail.js [emulator] on emulator-1 after 0.50s",
        "ERROR tests/infra.js [emulator] on emulator-1 after 0.50s: driver_error",
        "3/3 final | 1 passed, 1 failed, 1 error | 10s elapsed",
    ]
    assert result.stdout.splitlines() == [
        "FAILED tests/x_fail.js [emulator] on emulator-1 after 0.50s",
        "ERROR tests/infra.js [emulator] on emulator-1 after 0.50s: driver_error",
        "run run-1: 3 jobs: 1 error, 1 failed, 1 passed in 10s",
    ]


def test_in_a_log_a_status_line_comes_at_most_every_10_seconds(
    qgjob: Run, clock: FakeClock
) -> None:
    result = qgjob(*RUN, "tests/slow.js", "--poll-interval=2", "--timeout=25")

    status_lines = [line for line in result.stderr.splitlines() if " final | " in line]
    # polls at 0, 2, ..., 24 and the deadline at 25 s: lines at 0, 10, 20
    assert [line.rsplit("| ", 1)[1] for line in status_lines] == [
        "0s elapsed",
        "10s elapsed",
        "20s elapsed",
    ]
    assert result.exit_code == ExitCode.WAIT_TIMEOUT


def test_on_a_terminal_progress_is_one_redrawn_line_with_time_left(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/a.js", "tests/slow.js", "tests/b_fail.js", "--timeout=3", tty=True)

    frames = result.stderr.split("\r\x1b[2K")
    drawn = [frame for frame in frames if " final | " in frame]
    assert drawn[0] == "0/3 final | 3 assigned | 0s elapsed"
    assert drawn[1] == "0/3 final | 3 running | 1s elapsed"
    assert drawn[2] == "2/3 final | 1 running, 1 passed, 1 failed | 2s elapsed, about 1s left"
    # the failure line is printed on a line of its own, the status line erased first
    assert "\r\x1b[2KFAILED tests/b_fail.js [emulator] on emulator-1 after 0.50s\n" in (
        result.stderr
    )
    assert result.stderr.endswith(
        "\r\x1b[2Kqgjob: error: gave up waiting after 3 s: 1 of 3 jobs not final\n"
    )
    assert result.exit_code == ExitCode.TESTS_FAILED


def test_quiet_prints_only_the_summary(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/a.js", "tests/x_fail.js", "--quiet")

    assert result.exit_code == ExitCode.TESTS_FAILED
    assert result.stderr == ""
    assert result.stdout == "run run-1: 2 jobs: 1 failed, 1 passed in 2s\n"


def test_json_is_one_document_with_the_run_and_the_exit_code(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/a.js", "tests/cancel.js", "--json")

    assert result.exit_code == ExitCode.CANCELLED == 8
    assert result.stderr == ""
    body = json.loads(result.stdout)
    assert body["timed_out"] is False
    assert body["exit_code"] == 8
    (run,) = body["runs"]
    assert run["finished"] is True
    assert [job["status"] for job in run["jobs"]] == ["passed", "cancelled"]


@pytest.mark.parametrize(
    ("tests", "extra", "code"),
    [
        (["tests/a.js", "tests/b.js"], [], ExitCode.OK),
        (["tests/a.js", "tests/x_fail.js", "tests/infra.js"], [], ExitCode.TESTS_FAILED),
        (["tests/a.js", "tests/infra.js", "tests/cancel.js"], [], ExitCode.INFRA_ERROR),
        (["tests/a.js", "tests/slow.js"], ["--timeout=2"], ExitCode.WAIT_TIMEOUT),
        (["tests/a.js", "tests/cancel.js"], [], ExitCode.CANCELLED),
    ],
    ids=["passed", "failed", "infra-error", "timeout", "cancelled"],
)
def test_every_exit_code_of_a_wait(
    qgjob: Run, tests: list[str], extra: list[str], code: ExitCode
) -> None:
    assert qgjob(*RUN, *tests, *extra).exit_code == code


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda api: api.fail(requests.ConnectionError("refused")), ExitCode.UNREACHABLE),
        (lambda api: api.respond(503, {"error": "unavailable", "message": "x"}), 4),
        (lambda api: api.respond(400, {"error": "validation_error", "message": "x"}), 2),
    ],
    ids=["unreachable", "server-error", "rejected"],
)
def test_request_failures_exit_with_their_code_on_one_line(
    qgjob: Run, api: FakeApi, setup: Any, code: int
) -> None:
    setup(api)
    result = qgjob(*RUN, "tests/a.js")
    assert result.exit_code == code
    stderr = without_submit_retries(result.stderr)
    assert stderr.count("\n") == 1
    assert stderr.startswith("qgjob: error: ")


def validate(path: Path) -> Any:
    """The report, checked against the schema, decoded with its types (counts are ints,
    times Decimals; a case's single failure, error or skip is a dict, not a list)."""
    SCHEMA.validate(str(path))
    return SCHEMA.to_dict(str(path))


def test_junit_has_a_suite_per_target_and_a_case_per_job_and_validates(
    qgjob: Run, tmp_path: Path
) -> None:
    report = tmp_path / "out" / "junit.xml"
    result = qgjob(
        *RUN,
        "--target=emulator",
        "--target=device",
        "tests/auth/login.js",
        "tests/x_fail.js",
        "tests/infra.js",
        "tests/cancel.js",
        f"--junit={report}",
    )

    assert result.exit_code == ExitCode.TESTS_FAILED
    doc = validate(report)
    assert (doc["@tests"], doc["@failures"], doc["@errors"]) == (8, 2, 2)
    emulator, device = doc["testsuite"]
    assert (emulator["@name"], device["@name"]) == ("qgjob.emulator", "qgjob.device")
    assert (emulator["@tests"], emulator["@failures"], emulator["@errors"]) == (4, 1, 1)
    assert emulator["@skipped"] == 1
    properties = {p["@name"]: p["@value"] for p in emulator["properties"]["property"]}
    assert properties["run_id"] == "run-1"
    assert properties["run_url"] == "http://localhost:5000/v1/runs/run-1"
    cases = {case["@name"]: case for case in emulator["testcase"]}
    assert cases["login.js"]["@classname"] == "tests.auth"
    assert cases["login.js"]["@time"] == Decimal("0.500")
    assert "failure" not in cases["login.js"]
    failure = cases["x_fail.js"]["failure"]
    assert failure["@message"] == "test failed on emulator-1 (attempt 1)"
    assert failure["$"] == "line one\nline two"
    error = cases["infra.js"]["error"]
    assert error["@message"] == "driver_error on emulator-1 (attempt 1)"
    assert cases["cancel.js"]["skipped"]["@message"] == "cancelled"


def test_junit_is_written_when_the_wait_times_out(qgjob: Run, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = qgjob(*RUN, "tests/a.js", "tests/slow.js", "--timeout=2", f"--junit={report}")

    assert result.exit_code == ExitCode.WAIT_TIMEOUT
    doc = validate(report)
    (suite,) = doc["testsuite"]
    cases = {case["@name"]: case for case in suite["testcase"]}
    assert "error" not in cases["a.js"]
    assert cases["slow.js"]["error"]["@type"] == "unfinished"


def test_junit_is_written_with_what_was_known_when_the_server_goes_away(
    qgjob: Run, api: FakeApi, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    api.fail(requests.ConnectionError("gone"), from_request=2)  # submit and one poll answer

    result = qgjob(*RUN, "tests/a.js", f"--junit={report}")

    assert result.exit_code == ExitCode.UNREACHABLE
    doc = validate(report)
    assert doc["testsuite"][0]["testcase"][0]["error"]["@type"] == "unfinished"


def test_a_rerun_attempt_is_noted_as_a_suite_property(
    qgjob: Run, api: FakeApi, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    original = api._create  # every job looks like it needed a second attempt

    def flaky(body: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
        job = original(body, run_id)
        api.jobs[job["job_id"]].update(
            attempts=2, history=[{"agent_id": "emulator-7", "reason": "agent_lost"}]
        )
        return job

    api._create = flaky  # type: ignore[method-assign]
    assert qgjob(*RUN, "tests/a.js", f"--junit={report}").exit_code == 0

    properties = {
        p["@name"]: p["@value"] for p in validate(report)["testsuite"][0]["properties"]["property"]
    }
    assert properties["rerun:tests/a.js"] == "2 attempts (earlier: agent_lost on emulator-7)"


def test_wait_follows_runs_and_jobs_named_by_id(qgjob: Run, api: FakeApi) -> None:
    first = qgjob(*RUN, "tests/a.js", "tests/x_fail.js", "--timeout=0")
    assert first.exit_code == ExitCode.WAIT_TIMEOUT
    loose = qgjob("submit", "--org-id=o", "--app-version-id=v", "--test=tests/c.js")
    job_id = loose.stdout.strip()
    api.requests.clear()

    result = qgjob("wait", "run-1", job_id)

    assert result.exit_code == ExitCode.TESTS_FAILED
    assert result.stdout.splitlines()[-1].startswith(
        "run run-1, 1 job(s): 3 jobs: 1 failed, 2 passed in "
    )
    polls = [(r.method, r.url) for r in api.requests]
    # resolving: the run is a run; the job id is not (404); then one request each per poll
    assert polls[:2] == [
        ("GET", "http://localhost:5000/v1/runs/run-1"),
        ("GET", f"http://localhost:5000/v1/runs/{job_id}"),
    ]
    assert set(polls[2:]) == {
        ("GET", "http://localhost:5000/v1/runs/run-1"),
        ("POST", "http://localhost:5000/v1/jobs/lookup"),
    }


def test_wait_for_an_unknown_id_exits_5(qgjob: Run) -> None:
    result = qgjob("wait", "nope")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stderr.count("\n") == 1


def test_rerun_failed_submits_only_the_failed_and_errored_tests_same_build_and_targets(
    qgjob: Run, api: FakeApi
) -> None:
    qgjob(
        *RUN,
        "--target=emulator",
        "--target=device",
        "--priority=4",
        "tests/a.js",
        "tests/x_fail.js",
        "tests/infra.js",
        "tests/cancel.js",
    )

    result = qgjob("rerun", "run-1", "--failed")

    assert result.exit_code == ExitCode.TESTS_FAILED
    assert run_bodies(api)[-1] == {
        "org_id": "qualgent",
        "app_version_id": "xyz123",
        "targets": ["emulator", "device"],
        "tests": ["tests/x_fail.js", "tests/infra.js"],
        "priority": 4,
    }


def test_rerun_failed_with_nothing_failed_exits_0_without_a_new_run(
    qgjob: Run, api: FakeApi
) -> None:
    qgjob(*RUN, "tests/a.js")
    result = qgjob("rerun", "run-1", "--failed")

    assert result.exit_code == 0
    assert "nothing to rerun" in result.stderr
    assert len(run_bodies(api)) == 1


def test_runs_lists_newest_first_as_a_table_or_json(qgjob: Run) -> None:
    qgjob(*RUN, "tests/a.js")
    qgjob(*RUN, "tests/a.js", "tests/b.js", "--timeout=0")

    table = qgjob("runs").stdout.splitlines()
    assert table[0].split() == [
        "RUN",
        "ID",
        "CREATED",
        "ORG",
        "APP",
        "VERSION",
        "TARGETS",
        "JOBS",
        "STATE",
    ]
    assert table[1].split()[0] == "run-2"
    assert table[2].split()[0] == "run-1"
    assert table[2].endswith("finished: 1 passed")
    body = json.loads(qgjob("runs", "--json").stdout)
    assert [run["run_id"] for run in body["runs"]] == ["run-2", "run-1"]


def test_submit_wait_polls_all_its_jobs_in_one_request(qgjob: Run, api: FakeApi) -> None:
    result = qgjob(
        "submit", "--org-id=o", "--app-version-id=v", "--test=a", "--test=b", "--test=c", "--wait"
    )

    assert result.exit_code == 0, result.output
    polls = api.requests[1:]
    assert [(r.method, r.url) for r in polls] == [
        ("POST", "http://localhost:5000/v1/jobs/lookup")
    ] * 3


def test_submit_junit_needs_wait(qgjob: Run, api: FakeApi) -> None:
    result = qgjob("submit", "--org-id=o", "--app-version-id=v", "--test=a", "--junit=x.xml")
    assert result.exit_code == ExitCode.USAGE
    assert "--junit needs --wait" in result.stderr
    assert api.requests == []
