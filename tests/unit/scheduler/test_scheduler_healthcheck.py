"""`python -m qgjob_scheduler.healthcheck`: healthy while the consume loop touches its file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from qgjob_contract.health import touch


def _healthcheck(**env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "qgjob_scheduler.healthcheck"]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=30
    )


def test_healthy_after_the_loop_touched_the_file(tmp_path: Path) -> None:
    health_file = tmp_path / "alive"
    touch(health_file)  # what the consume loop does on every tick
    assert _healthcheck(SCHEDULER_HEALTH_FILE=str(health_file)).returncode == 0


def test_unhealthy_when_the_file_is_older_than_the_limit(tmp_path: Path) -> None:
    health_file = tmp_path / "alive"
    touch(health_file)
    old = time.time() - 16
    os.utime(health_file, (old, old))

    result = _healthcheck(SCHEDULER_HEALTH_FILE=str(health_file))

    assert result.returncode == 1
    assert f"unhealthy: {health_file} not touched in 15 s" in result.stderr


def test_unhealthy_when_the_file_was_never_touched(tmp_path: Path) -> None:
    result = _healthcheck(SCHEDULER_HEALTH_FILE=str(tmp_path / "never-touched"))
    assert result.returncode == 1


def test_unhealthy_with_a_bad_configuration(tmp_path: Path) -> None:
    health_file = tmp_path / "alive"
    touch(health_file)

    result = _healthcheck(SCHEDULER_HEALTH_FILE=str(health_file), REDIS_URL="http://nope")

    assert result.returncode == 1
    assert "REDIS_URL" in result.stderr
