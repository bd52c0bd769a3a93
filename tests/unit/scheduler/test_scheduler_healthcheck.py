"""The healthcheck reads the age of the file the consume loop touches."""

from __future__ import annotations

import os
import time
from pathlib import Path

from qgjob_scheduler.healthcheck import is_alive


def test_recently_touched_file_is_alive(tmp_path: Path) -> None:
    health = tmp_path / "alive"
    health.touch()
    assert is_alive(str(health), time.time())


def test_file_older_than_the_limit_is_not_alive(tmp_path: Path) -> None:
    health = tmp_path / "alive"
    health.touch()
    old = time.time() - 31
    os.utime(health, (old, old))
    assert not is_alive(str(health), time.time())


def test_missing_file_is_not_alive(tmp_path: Path) -> None:
    assert not is_alive(str(tmp_path / "never-touched"), time.time())
