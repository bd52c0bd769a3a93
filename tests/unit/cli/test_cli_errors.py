"""Failures end with one `qgjob: error: ...` line on stderr and their documented exit code."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
import requests
from click.testing import CliRunner

from qgjob_cli.exit_codes import DESCRIPTIONS, ExitCode
from qgjob_cli.main import cli

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, Run

SUBMIT = ("submit", "--org-id=o", "--app-version-id=v", "--test=t")


def without_submit_retries(stderr: str) -> str:
    """stderr less the warnings of a submit retried after a transient error
    (tests/unit/cli/test_cli_control.py checks those)."""
    return "".join(
        line
        for line in stderr.splitlines(keepends=True)
        if not line.startswith("qgjob: warning: submitting again")
    )


def assert_one_error_line(stderr: str, expected: str) -> None:
    stderr = without_submit_retries(stderr)
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("qgjob: error: "), stderr
    assert expected in stderr
    assert "Traceback" not in stderr


def test_unreachable_server_exits_3_with_one_line(api: FakeApi, qgjob: Run) -> None:
    api.fail(requests.ConnectionError("boom"))

    result = qgjob(*SUBMIT)

    assert result.exit_code == ExitCode.UNREACHABLE == 3
    assert_one_error_line(result.stderr, "cannot reach the qgjob API at http://localhost:5000")
    assert result.stdout == ""


def test_connection_refused_by_a_real_socket_names_the_reason() -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, then closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = CliRunner().invoke(
        cli,
        ["status", "--job-id=x"],
        env={"QGJOB_API_URL": f"http://127.0.0.1:{port}", "NO_PROXY": "*"},
        prog_name="qgjob",
    )

    assert result.exit_code == 3
    assert_one_error_line(result.stderr, f"127.0.0.1:{port}: Connection refused")


def test_read_timeout_exits_3(api: FakeApi, qgjob: Run) -> None:
    api.fail(requests.ReadTimeout("read timed out"))

    result = qgjob(*SUBMIT)

    assert result.exit_code == 3
    assert_one_error_line(result.stderr, "no answer from the qgjob API")


def test_validation_error_exits_2_with_the_servers_message(api: FakeApi, qgjob: Run) -> None:
    api.respond(
        400,
        {"error": "validation_error", "message": "unknown target 'tv'", "field": "target"},
    )

    result = qgjob(*SUBMIT, "--target=tv")

    assert result.exit_code == ExitCode.USAGE == 2
    assert result.stderr == (
        "qgjob: error: the server rejected the request: unknown target 'tv' (field: target)\n"
    )


def test_unknown_job_exits_5(qgjob: Run) -> None:
    result = qgjob("status", "--job-id=nope")

    assert result.exit_code == ExitCode.NOT_FOUND == 5
    assert result.stderr == "qgjob: error: not found: no job nope\n"


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_exits_4(api: FakeApi, qgjob: Run, status: int) -> None:
    api.respond(status, {"error": "unavailable", "message": "broker\nunreachable"})

    result = qgjob(*SUBMIT)

    assert result.exit_code == ExitCode.SERVER_ERROR == 4
    assert without_submit_retries(result.stderr) == (
        f"qgjob: error: server error (HTTP {status}): broker unreachable\n"
    )


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", {"jobs": [{"job_id": "x"}]}, {"jobs": []}, ["x"]],
    ids=["not-json", "record-without-status", "wrong-count", "not-an-object"],
)
def test_unexpected_answer_exits_4(api: FakeApi, qgjob: Run, body: object) -> None:
    api.respond(201, body)

    result = qgjob(*SUBMIT)

    assert result.exit_code == 4
    assert_one_error_line(result.stderr, "unexpected response from the qgjob API")


def test_error_body_that_is_not_json_still_gives_the_http_status(api: FakeApi, qgjob: Run) -> None:
    api.respond(502, b"<html>Bad Gateway</html>")

    result = qgjob("list")

    assert result.exit_code == 4
    assert result.stderr.startswith("qgjob: error: server error (HTTP 502): HTTP 502")


def test_missing_option_is_a_one_line_usage_error(qgjob: Run, api: FakeApi) -> None:
    result = qgjob("submit", "--org-id=o", "--test=t")

    assert result.exit_code == 2
    assert result.stderr == (
        "qgjob: error: Missing option '--app-version-id'. (see 'qgjob submit --help')\n"
    )
    assert api.requests == []


def test_bad_api_url_is_a_usage_error(qgjob: Run) -> None:
    result = qgjob("list", env={"QGJOB_API_URL": "localhost:5000"})

    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "'localhost:5000' is not an http:// or https:// URL")


def test_interrupt_exits_130(api: FakeApi, qgjob: Run) -> None:
    api.fail(KeyboardInterrupt())

    result = qgjob(*SUBMIT, "--wait")

    assert result.exit_code == ExitCode.INTERRUPTED == 130
    assert result.stderr == "qgjob: error: interrupted\n"


def test_help_lists_every_exit_code(qgjob: Run) -> None:
    result = qgjob("--help")

    assert result.exit_code == 0
    rows = [line.split(maxsplit=1) for line in result.stdout.splitlines()]
    for code in ExitCode:
        assert [str(code.value), DESCRIPTIONS[code]] in rows
