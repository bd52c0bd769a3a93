"""The health file: what a service touches is what its healthcheck finds fresh, for a while."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from qgjob_contract.health import is_fresh, touch


def test_a_touched_file_is_fresh_until_it_is_older_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    touch(path)
    touched = path.stat().st_mtime

    assert is_fresh(path, 30)
    assert is_fresh(str(path), 30, now=touched + 30)  # exactly at the limit: still fresh
    assert not is_fresh(path, 30, now=touched + 30.5)


def test_touch_renews_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    touch(path)
    old = time.time() - 60
    os.utime(path, (old, old))
    assert not is_fresh(path, 30)

    touch(path)

    assert is_fresh(path, 30)


def test_a_missing_file_is_not_fresh(tmp_path: Path) -> None:
    assert not is_fresh(tmp_path / "never-touched", 30)


def test_touch_raises_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        touch(tmp_path / "no-such-dir" / "alive")
