"""Container healthcheck: exit 0 when the consume loop touched the health file recently.

`python -m qgjob_scheduler.healthcheck`
"""

from __future__ import annotations

import sys

from qgjob_contract.health import is_fresh
from qgjob_scheduler.config import Config
from qgjob_scheduler.errors import ConfigError

# The tick touches the file only when its pass succeeded: a scheduler whose passes keep
# failing turns unhealthy within this.
MAX_AGE_S = 15.0


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if is_fresh(config.health_file, MAX_AGE_S):
        return 0
    print(f"unhealthy: {config.health_file} not touched in {MAX_AGE_S:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
