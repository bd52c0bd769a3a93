"""The end of a wait (`qgjob run`, `wait`, `rerun`): the options every waiting command
takes, the final summary and its JSON form, and the report when the server goes away,
for the cases `make mutation` found untested."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.report import WaitOptions

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, FakeClock, Run

RUN = ("run", "--org-id=qualgent", "--app-version-id=xyz123")


@pytest.mark.parametrize(
    "option", ["--timeout=-1", "--poll-interval=0.05", "--poll-interval=0", "--timeout=soon"]
)
def test_a_negative_timeout_or_a_poll_faster_than_a_tenth_is_a_usage_error(
    qgjob: Run, api: FakeApi, option: str
) -> None:
    result = qgjob(*RUN, "tests/a.js", option)
    assert result.exit_code == ExitCode.USAGE
    assert api.requests == []


def test_the_smallest_poll_interval_and_timeout_are_accepted(qgjob: Run) -> None:
    assert qgjob(*RUN, "tests/a.js", "--poll-interval=0.1", "--timeout=0").exit_code in (
        ExitCode.OK,
        ExitCode.WAIT_TIMEOUT,
    )
    assert qgjob(*RUN, "tests/a.js", "--poll-interval=0.1").exit_code == ExitCode.OK


def test_help_shows_the_default_poll_interval(qgjob: Run) -> None:
    result = qgjob("run", "--help")
    assert "[default: 1.0; x>=0.1]" in result.stdout
    assert "--quiet" in result.stdout
    assert "-q," in result.stdout


def test_short_quiet_flag(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/a.js", "-q")
    assert result.stderr == ""
    assert result.exit_code == ExitCode.OK


def test_the_timeout_in_the_error_line_is_written_as_given(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/slow.js", "--timeout=2.5")
    assert result.exit_code == ExitCode.WAIT_TIMEOUT
    assert result.stderr.splitlines()[-1] == (
        "qgjob: error: gave up waiting after 2.5 s: 1 of 1 jobs not final"
    )


def _loose_job(qgjob: Run) -> str:
    done = qgjob("submit", "--org-id=o", "--app-version-id=v", "--test=tests/c.js")
    return str(done.stdout.strip())


def test_waiting_for_jobs_alone_names_how_many(qgjob: Run) -> None:
    job_id = _loose_job(qgjob)
    result = qgjob("wait", job_id)
    assert result.exit_code == ExitCode.OK
    assert result.stdout.splitlines()[-1].startswith("1 job(s): 1 job: 1 passed in ")


def test_json_lists_the_runs_and_only_the_jobs_named_by_id(qgjob: Run) -> None:
    first = qgjob(*RUN, "tests/a.js", "tests/b.js", "--timeout=0")
    assert first.exit_code == ExitCode.WAIT_TIMEOUT
    job_id = _loose_job(qgjob)

    body = json.loads(qgjob("wait", "run-1", job_id, "--json").stdout)

    assert [run["run_id"] for run in body["runs"]] == ["run-1"]
    assert [job["job_id"] for job in body["jobs"]] == [job_id]
    assert (body["timed_out"], body["exit_code"]) == (False, 0)


def test_failure_lines_are_repeated_in_the_final_report_unless_quiet(qgjob: Run) -> None:
    loud = qgjob(*RUN, "tests/a.js", "tests/x_fail.js")
    assert loud.stdout.splitlines()[0] == (
        "FAILED tests/x_fail.js [emulator] on emulator-1 after 0.50s"
    )
    assert "FAILED" not in qgjob(*RUN, "tests/x_fail.js", "--quiet").stdout


def test_no_report_file_when_nothing_was_known_before_the_server_went_away(
    qgjob: Run, api: FakeApi, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    api.fail(requests.ConnectionError("gone"), from_request=1)  # only the submit answers

    result = qgjob(*RUN, "tests/a.js", f"--junit={report}")

    assert result.exit_code == ExitCode.UNREACHABLE
    assert not report.exists()


def test_progress_goes_to_stderr_and_the_report_to_stdout(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/a.js")
    assert " final | " in result.stderr
    assert " final | " not in result.stdout
    assert result.stdout.splitlines() == ["run run-1: 1 job: 1 passed in 2s"]


def test_on_a_terminal_the_progress_keeps_its_erase_codes(qgjob: Run) -> None:
    result = qgjob(*RUN, "tests/a.js", tty=True)
    assert "\r\x1b[2K" in result.stderr


def test_a_junit_path_that_is_a_folder_is_a_usage_error(
    qgjob: Run, api: FakeApi, tmp_path: Path
) -> None:
    result = qgjob(*RUN, "tests/a.js", f"--junit={tmp_path}")
    assert result.exit_code == ExitCode.USAGE
    assert api.requests == []


def test_a_junit_file_that_cannot_be_written_is_a_usage_error_before_any_request(
    qgjob: Run, api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only report file is refused up front, not after the whole wait. (The tests
    run as root, for whom every file is writable: `os.access` says what it would say to
    another user for this one file.)"""
    report = tmp_path / "report.xml"
    report.write_text("", encoding="utf-8")
    real_access = os.access

    def access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if Path(path) == report and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    result = qgjob(*RUN, "tests/a.js", f"--junit={report}")
    assert result.exit_code == ExitCode.USAGE
    assert "not writable" in result.output
    assert api.requests == []


def test_the_summary_counts_the_time_of_the_wait_whatever_the_clock_origin(
    qgjob: Run, clock: FakeClock
) -> None:
    """The clock is monotonic: its origin is arbitrary (here 1.5 s), the summary says how
    long the wait took (two 1 s polls)."""
    clock.now_s = 1.5
    result = qgjob(*RUN, "tests/a.js", "--quiet")
    assert result.stdout == "run run-1: 1 job: 1 passed in 2s\n"


def test_a_timed_out_report_lists_every_job_that_did_not_pass(qgjob: Run) -> None:
    """Unfinished jobs (still running when the wait gave up) are listed with the failures:
    the report says what did not pass, whatever its status."""
    result = qgjob(*RUN, "tests/a.js", "tests/slow.js", "--timeout=2")
    assert result.exit_code == ExitCode.WAIT_TIMEOUT
    assert result.stdout.splitlines()[0] == "RUNNING tests/slow.js [emulator] on emulator-1"


def test_the_options_of_a_wait_are_one_frozen_value() -> None:
    """Every waiting command reads its options from one WaitOptions: none can change them
    half-way through a wait."""
    options = WaitOptions(
        timeout=None, poll_interval=1.0, as_json=False, junit_path=None, quiet=False
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.quiet = True  # type: ignore[misc]
