"""Container healthcheck: exit 0 when the consume loop touched the health file recently.

`python -m qgjob_scheduler.healthcheck`
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from qgjob_scheduler.config import Config
from qgjob_scheduler.errors import ConfigError

MAX_AGE_S = 30.0


def is_alive(health_file: str, now: float, max_age_s: float = MAX_AGE_S) -> bool:
    try:
        touched = Path(health_file).stat().st_mtime
    except OSError:
        return False
    return now - touched <= max_age_s


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if is_alive(config.health_file, time.time()):
        return 0
    print(f"unhealthy: {config.health_file} not touched in {MAX_AGE_S:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
