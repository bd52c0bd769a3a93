"""The API's configuration, read once from the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from qgjob_api.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    redis_url: str = "redis://localhost:6379/0"
    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/%2F"
    # An agent whose last heartbeat is older than this is listed with alive=false.
    agent_timeout_s: float = 10.0
    # Most jobs one POST /v1/jobs may carry.
    max_jobs_per_request: int = 1000
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        defaults = cls()
        config = cls(
            redis_url=environ.get("REDIS_URL", defaults.redis_url),
            rabbitmq_url=environ.get("RABBITMQ_URL", defaults.rabbitmq_url),
            agent_timeout_s=_parse(environ, "AGENT_TIMEOUT_S", float, defaults.agent_timeout_s),
            max_jobs_per_request=_parse(
                environ, "API_MAX_JOBS_PER_REQUEST", int, defaults.max_jobs_per_request
            ),
            log_level=environ.get("LOG_LEVEL", defaults.log_level).upper(),
        )
        if not config.agent_timeout_s > 0:  # also refuses NaN
            raise ConfigError("AGENT_TIMEOUT_S must be > 0")
        if config.max_jobs_per_request < 1:
            raise ConfigError("API_MAX_JOBS_PER_REQUEST must be >= 1")
        if not isinstance(logging.getLevelName(config.log_level), int):
            raise ConfigError(f"LOG_LEVEL {config.log_level!r} is not a logging level")
        return config


def _parse(environ: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
