"""`qgjob submit --wait` and the wait loop: exit codes, output, timeout, retries, no real
sleeping."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests

from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.waiting import WaitResult, Watch, wait_for

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, FakeClock, Run


def submit_wait(qgjob: Run, *tests: str, extra: tuple[str, ...] = ()) -> Any:
    return qgjob(
        "submit",
        "--org-id=qualgent",
        "--app-version-id=xyz123",
        *(f"--test={test}" for test in tests),
        "--wait",
        *extra,
    )


def test_all_passed_exits_0_with_a_final_line_per_job_and_a_summary(
    qgjob: Run, api: FakeApi, clock: FakeClock
) -> None:
    result = submit_wait(qgjob, "tests/a.spec.js", "tests/b.spec.js")

    assert result.exit_code == 0, result.output
    a, b = api.jobs
    assert result.stdout.splitlines() == [
        a,
        b,
        f"{a}  tests/a.spec.js  passed     emulator-1  0.50s",
        f"{b}  tests/b.spec.js  passed     emulator-1  0.50s",
        "2 jobs: 2 passed",
    ]
    assert result.stderr == ""
    assert clock.sleeps == [1.0, 1.0]  # three polls: assigned, running, passed


def test_one_failed_test_exits_1_and_lines_align(qgjob: Run, api: FakeApi) -> None:
    result = submit_wait(qgjob, "tests/login.spec.js", "tests/checkout_fail.spec.js")

    assert result.exit_code == ExitCode.TESTS_FAILED == 1
    login, checkout = api.jobs
    assert f"{checkout}  tests/checkout_fail.spec.js  failed     emulator-1  0.50s" in (
        result.stdout.splitlines()
    )
    assert f"{login}  tests/login.spec.js          passed     emulator-1  0.50s" in (
        result.stdout.splitlines()
    )
    assert result.stdout.splitlines()[-1] == "2 jobs: 1 failed, 1 passed"


def test_infrastructure_error_exits_6(qgjob: Run) -> None:
    result = submit_wait(qgjob, "tests/ok.spec.js", "tests/infra.spec.js")

    assert result.exit_code == ExitCode.INFRA_ERROR == 6
    assert [line.split()[2] for line in result.stdout.splitlines()[2:4]] == ["passed", "error"]


def test_failed_test_wins_over_infrastructure_error(qgjob: Run) -> None:
    result = submit_wait(qgjob, "tests/infra.spec.js", "tests/x_fail.spec.js", "tests/cancel.js")

    assert result.exit_code == ExitCode.TESTS_FAILED


def test_timeout_exits_7_with_one_error_line_and_unfinished_jobs_listed(
    qgjob: Run, api: FakeApi, clock: FakeClock
) -> None:
    result = submit_wait(qgjob, "tests/ok.spec.js", "tests/slow.spec.js", extra=("--timeout=2.5",))

    assert result.exit_code == ExitCode.WAIT_TIMEOUT == 7
    assert result.stderr == "qgjob: error: gave up waiting after 2.5 s: 1 of 2 jobs not final\n"
    _, slow = api.jobs
    assert f"{slow}  tests/slow.spec.js  running    emulator-1  -" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "2 jobs: 1 passed, 1 running"
    assert clock.sleeps == [1.0, 1.0, 0.5]  # the last sleep ends at the deadline


def test_failed_test_wins_over_timeout_but_the_timeout_is_reported(qgjob: Run) -> None:
    result = submit_wait(qgjob, "tests/x_fail.spec.js", "tests/slow.js", extra=("--timeout=5",))

    assert result.exit_code == ExitCode.TESTS_FAILED
    assert result.stderr == "qgjob: error: gave up waiting after 5 s: 1 of 2 jobs not final\n"


def test_wait_json_prints_final_records_only(qgjob: Run, api: FakeApi) -> None:
    result = submit_wait(qgjob, "tests/a.spec.js", "tests/b_fail.spec.js", extra=("--json",))

    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["timed_out"] is False
    assert [(j["job_id"], j["status"], j["final"]) for j in body["jobs"]] == [
        (job_id, status, True)
        for job_id, status in zip(api.jobs, ("passed", "failed"), strict=True)
    ]


def test_poll_interval_is_used_between_polls(qgjob: Run, clock: FakeClock) -> None:
    result = submit_wait(qgjob, "tests/a.spec.js", extra=("--poll-interval=0.25",))

    assert result.exit_code == 0, result.output
    assert clock.sleeps == [0.25, 0.25]


UNAVAILABLE = (503, {"error": "unavailable", "message": "redis is unreachable"})
RESET = requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))


@pytest.mark.parametrize(
    ("failures", "errors"),
    [
        ((UNAVAILABLE, UNAVAILABLE), ["server error (HTTP 503): redis is unreachable"] * 2),
        (
            (RESET, requests.ReadTimeout()),
            [
                "cannot reach the qgjob API at http://localhost:5000: Connection reset by peer",
                "no answer from the qgjob API at http://localhost:5000 within 30 s",
            ],
        ),
    ],
    ids=["two-503s", "reset-then-timeout"],
)
def test_transient_errors_while_waiting_are_retried_with_growing_pauses(
    qgjob: Run,
    api: FakeApi,
    clock: FakeClock,
    failures: tuple[tuple[int, Any] | BaseException, ...],
    errors: list[str],
) -> None:
    api.script(*failures, from_request=1)  # the first two polls fail; the submit goes through

    result = submit_wait(qgjob, "tests/a.spec.js")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "1 job: 1 passed"
    assert clock.sleeps == [1.0, 2.0, 1.0, 1.0]  # two retry pauses, then the polls
    first, second = result.stderr.splitlines()
    assert first.startswith(f"qgjob: warning: retrying in 1 s: {errors[0]}")
    assert second.startswith(f"qgjob: warning: retrying in 2 s: {errors[1]}")


def test_server_unreachable_for_good_exits_3_after_5_attempts(
    qgjob: Run, api: FakeApi, clock: FakeClock
) -> None:
    api.fail(requests.ConnectionError("gone"), from_request=1)  # the submit goes through

    result = submit_wait(qgjob, "tests/a.spec.js")

    assert result.exit_code == ExitCode.UNREACHABLE == 3
    assert result.stdout.splitlines() == list(api.jobs)  # the ids were printed first
    assert len(api.requests) == 1 + 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    *warnings, error = result.stderr.splitlines()
    assert len(warnings) == 4
    assert all(line.startswith("qgjob: warning: retrying in ") for line in warnings)
    assert error.startswith("qgjob: error: cannot reach the qgjob API")
    assert "Traceback" not in result.stderr


def test_only_consecutive_failures_count_towards_giving_up(
    qgjob: Run, api: FakeApi, clock: FakeClock
) -> None:
    # 4 failures, a poll that answers (assigned), 4 failures again, then running, passed.
    api.script(*[UNAVAILABLE] * 4, from_request=1)
    api.script(*[UNAVAILABLE] * 4, from_request=6)

    result = submit_wait(qgjob, "tests/a.spec.js")

    assert result.exit_code == 0, result.output
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 1.0, 1.0, 2.0, 4.0, 8.0, 1.0]


def test_retries_stop_when_the_timeout_passes_with_the_errors_code(
    qgjob: Run, api: FakeApi, clock: FakeClock
) -> None:
    api.script(*[UNAVAILABLE] * 5, from_request=1)

    result = submit_wait(qgjob, "tests/a.spec.js", extra=("--timeout=2.5",))

    assert result.exit_code == ExitCode.SERVER_ERROR == 4
    assert clock.sleeps == [1.0, 1.5]  # the second pause ends at the deadline
    assert len(api.requests) == 1 + 3
    assert result.stderr.splitlines()[-1] == (
        "qgjob: error: server error (HTTP 503): redis is unreachable"
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((400, {"error": "validation_error", "message": "bad id"}), ExitCode.USAGE),
        ((404, {"error": "not_found", "message": "no job x"}), ExitCode.NOT_FOUND),
        ((200, {"unexpected": True}), ExitCode.SERVER_ERROR),
    ],
    ids=["400", "404", "unexpected-answer"],
)
def test_client_errors_while_waiting_are_not_retried(
    qgjob: Run, api: FakeApi, clock: FakeClock, answer: tuple[int, Any], code: ExitCode
) -> None:
    api.script(answer, from_request=1)

    result = submit_wait(qgjob, "tests/a.spec.js")

    assert result.exit_code == code
    assert len(api.requests) == 2
    assert clock.sleeps == []
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("qgjob: error: ")


class ScriptedJobs:
    """A Reader whose jobs walk through given statuses, one step per lookup."""

    def __init__(self, **statuses: list[str]) -> None:
        self.statuses = statuses
        self.lookups: list[list[str]] = []

    def get_run(self, run_id: str) -> dict[str, Any]:
        raise AssertionError("no run here")

    def lookup_jobs(self, job_ids: list[str]) -> list[dict[str, Any]]:
        self.lookups.append(job_ids)
        return [self._step(job_id) for job_id in job_ids]

    def _step(self, job_id: str) -> dict[str, Any]:
        steps = self.statuses[job_id]
        status = steps.pop(0) if len(steps) > 1 else steps[0]
        final = status in ("passed", "failed", "error", "cancelled", "new-final")
        return {"job_id": job_id, "status": status, "final": final}


def test_wait_looks_up_only_unfinished_jobs_and_reports_each_final_once(
    clock: FakeClock,
) -> None:
    jobs = ScriptedJobs(a=["passed"], b=["running", "running", "failed"])
    seen: list[str] = []

    result = wait_for(
        Watch(jobs, job_ids=list(dict.fromkeys(["a", "b", "a"]))).poll,
        timeout_s=None,
        poll_interval_s=2.0,
        clock=clock.now,
        sleep=clock.sleep,
        on_final=lambda job: seen.append(job["job_id"]),
    )

    assert jobs.lookups == [["a", "b"], ["b"], ["b"]]  # one request per poll
    assert seen == ["a", "b"]
    assert [job["status"] for job in result.jobs] == ["passed", "failed"]
    assert not result.timed_out
    assert clock.sleeps == [2.0, 2.0]


def test_zero_timeout_polls_once_then_gives_up(clock: FakeClock) -> None:
    result = wait_for(
        Watch(ScriptedJobs(a=["queued"]), job_ids=["a"]).poll,
        timeout_s=0,
        poll_interval_s=1.0,
        clock=clock.now,
        sleep=clock.sleep,
    )

    assert result.timed_out
    assert [job["job_id"] for job in result.unfinished] == ["a"]
    assert clock.sleeps == []


def job(status: str, final: bool = True) -> dict[str, Any]:
    return {"job_id": status, "status": status, "final": final}


@pytest.mark.parametrize(
    ("jobs", "timed_out", "code"),
    [
        ([job("passed"), job("passed")], False, ExitCode.OK),
        ([job("passed"), job("failed"), job("error")], False, ExitCode.TESTS_FAILED),
        ([job("passed"), job("cancelled")], False, ExitCode.CANCELLED),
        ([job("error"), job("cancelled")], False, ExitCode.INFRA_ERROR),
        ([job("passed"), job("new-final")], False, ExitCode.INFRA_ERROR),
        ([job("cancelled"), job("running", final=False)], True, ExitCode.WAIT_TIMEOUT),
        ([job("error"), job("running", final=False)], True, ExitCode.WAIT_TIMEOUT),
        ([job("failed"), job("running", final=False)], True, ExitCode.TESTS_FAILED),
        ([job("passed"), job("queued", final=False)], True, ExitCode.WAIT_TIMEOUT),
    ],
)
def test_exit_code_precedence_failed_timeout_infrastructure_cancelled(
    jobs: list[dict[str, Any]], timed_out: bool, code: ExitCode
) -> None:
    assert WaitResult(jobs=jobs, timed_out=timed_out).exit_code == code
