"""The WSGI entry point refuses a bad setting with one line and gunicorn's boot-error code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _import_wsgi(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the module in a fresh interpreter whose environment holds only `env`."""
    return subprocess.run(
        [sys.executable, "-c", "import qgjob_api.wsgi"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("AGENT_TIMEOUT_S", "soon", "qgjob-api: AGENT_TIMEOUT_S must be a number > 0 (got 'soon')"),
        ("REDIS_URL", "http://redis", "qgjob-api: REDIS_URL must start with one of "),
        ("LOG_LEVEL", "LOUD", "qgjob-api: LOG_LEVEL must be one of "),
        ("QGJOB_AUTH", "on", "qgjob-api: QGJOB_AUTH must be one of off, tokens"),
        ("QGJOB_RATE_LIMIT_READ", "many", "qgjob-api: QGJOB_RATE_LIMIT_READ: 'many' is not"),
    ],
)
def test_bad_setting_exits_3_with_one_line_naming_it(variable: str, value: str, line: str) -> None:
    result = _import_wsgi(**{variable: value})

    assert result.returncode == 3
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(line)
    assert "Traceback" not in result.stderr


def test_good_settings_import_without_output() -> None:
    result = _import_wsgi(AGENT_TIMEOUT_S="2.5", QGJOB_AUTH="tokens", QGJOB_ADMIN_TOKEN="t" * 32)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_auth_off_logs_one_warning_at_start() -> None:
    result = _import_wsgi()

    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "WARNING qgjob_api.auth: QGJOB_AUTH=off" in result.stderr
