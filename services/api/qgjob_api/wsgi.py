"""Entry point for gunicorn: `gunicorn qgjob_api.wsgi:app` (one app per worker process)."""

from __future__ import annotations

import logging
import sys

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_api.errors import ConfigError
from qgjob_contract.env import configure_logging

# gunicorn's exit status for a worker that failed to boot: the master stops instead of
# starting new workers that would fail the same way.
WORKER_BOOT_ERROR = 3

try:
    config = Config.from_env()
except ConfigError as exc:
    print(f"qgjob-api: {exc}", file=sys.stderr, flush=True)
    sys.exit(WORKER_BOOT_ERROR)
# pika logs each failed connection attempt as several ERROR lines and a traceback; the API
# logs one line with the cause itself (publish failures, /readyz). DEBUG shows pika's too.
configure_logging(config.log_level, pika_level=logging.CRITICAL)
app = create_app(config)
