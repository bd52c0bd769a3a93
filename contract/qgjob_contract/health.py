"""Container health from a file's age: the service touches it, the healthcheck reads it.

A long-running service process calls `touch` whenever it has shown it is working (the
scheduler on every pass of its loop, an agent after each heartbeat the broker confirmed); the
container's healthcheck, another process, calls `is_fresh`. Both sides use the file's
modification time and the wall clock (`time.time`), so they agree whatever process runs them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def touch(path: str | os.PathLike[str]) -> None:
    """Create the file, or set its modification time to now; raise OSError on failure."""
    Path(path).touch()


def is_fresh(path: str | os.PathLike[str], max_age_s: float, now: float | None = None) -> bool:
    """True when the file was touched at most `max_age_s` seconds before `now`.

    `now` is a `time.time()` value (the default). A missing or unreadable file is not fresh.
    """
    try:
        touched = Path(path).stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - touched <= max_age_s
