"""Entry point for gunicorn: `gunicorn qgjob_api.wsgi:app` (one app per worker process)."""

from __future__ import annotations

import logging

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_contract.env import configure_logging

config = Config.from_env()
# pika logs each failed connection attempt as several ERROR lines and a traceback; the API
# logs one line with the cause itself (publish failures, /readyz). DEBUG shows pika's too.
configure_logging(config.log_level, pika_level=logging.CRITICAL)
app = create_app(config)
