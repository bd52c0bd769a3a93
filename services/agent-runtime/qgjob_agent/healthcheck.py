"""`python -m qgjob_agent.healthcheck`: exit 0 when the agent sent a heartbeat recently.

The heartbeat thread touches the health file after each heartbeat the broker confirmed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from qgjob_agent.config import DEFAULT_HEALTH_FILE, HEALTH_FILE_ENV, HEALTH_MAX_AGE_S
from qgjob_agent.errors import ConfigError
from qgjob_contract.env import Env


def is_fresh(path: Path, *, max_age_s: float = HEALTH_MAX_AGE_S, now: float | None = None) -> bool:
    try:
        modified = path.stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - modified < max_age_s


def main() -> None:
    path = Path(Env(os.environ, error=ConfigError).text(HEALTH_FILE_ENV, DEFAULT_HEALTH_FILE))
    sys.exit(0 if is_fresh(path) else 1)


if __name__ == "__main__":
    main()
