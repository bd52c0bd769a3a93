"""Entry point for gunicorn: `gunicorn qgjob_api.wsgi:app` (one app per worker process)."""

from __future__ import annotations

import logging

from qgjob_api.app import create_app
from qgjob_api.config import Config

config = Config.from_env()
logging.basicConfig(
    level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
# pika logs each failed connection attempt as several ERROR lines and a traceback; the API
# logs one line with the cause itself (publish failures, /readyz). DEBUG shows pika's too.
if config.log_level != "DEBUG":
    logging.getLogger("pika").setLevel(logging.CRITICAL)
app = create_app(config)
