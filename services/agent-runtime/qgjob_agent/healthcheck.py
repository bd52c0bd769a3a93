"""`python -m qgjob_agent.healthcheck`: exit 0 when the agent sent a heartbeat recently.

The heartbeat thread touches the health file after each heartbeat the broker confirmed.
"""

from __future__ import annotations

import os
import sys

from qgjob_agent.config import DEFAULT_HEALTH_FILE, HEALTH_FILE_ENV, HEALTH_MAX_AGE_S
from qgjob_agent.errors import ConfigError
from qgjob_contract.env import Env
from qgjob_contract.health import is_fresh


def main() -> None:
    path = Env(os.environ, error=ConfigError).text(HEALTH_FILE_ENV, DEFAULT_HEALTH_FILE)
    sys.exit(0 if is_fresh(path, HEALTH_MAX_AGE_S) else 1)


if __name__ == "__main__":
    main()
