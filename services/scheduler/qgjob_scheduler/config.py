"""The scheduler's configuration, read once from the environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from qgjob_scheduler.errors import ConfigError

_T = TypeVar("_T", int, float)


def _number(env: Mapping[str, str], name: str, default: _T, parse: Callable[[str], _T]) -> _T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Config:
    redis_url: str = "redis://localhost:6379/0"
    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/%2F"
    # Most jobs in one batch.
    batch_max_jobs: int = 10
    # An agent whose last heartbeat is older than this gets no batch.
    agent_timeout_s: float = 10.0
    # Period of the dispatch pass that runs even when no event arrives.
    tick_s: float = 1.0
    # Unacked deliveries RabbitMQ may push to the scheduler ahead of processing.
    prefetch: int = 100
    # Touched on every pass of the main loop; the container healthcheck reads its age.
    health_file: str = "/tmp/qgjob-scheduler-alive"  # noqa: S108 (a marker, not a secret)
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        defaults = cls()
        log_level = env.get("LOG_LEVEL", defaults.log_level).upper()
        if not isinstance(logging.getLevelName(log_level), int):
            raise ConfigError(f"LOG_LEVEL must be a logging level name, got {log_level!r}")
        return cls(
            redis_url=env.get("REDIS_URL") or defaults.redis_url,
            rabbitmq_url=env.get("RABBITMQ_URL") or defaults.rabbitmq_url,
            batch_max_jobs=_number(env, "BATCH_MAX_JOBS", defaults.batch_max_jobs, int),
            agent_timeout_s=_number(env, "AGENT_TIMEOUT_S", defaults.agent_timeout_s, float),
            tick_s=_number(env, "SCHEDULER_TICK_S", defaults.tick_s, float),
            prefetch=_number(env, "SCHEDULER_PREFETCH", defaults.prefetch, int),
            health_file=env.get("SCHEDULER_HEALTH_FILE") or defaults.health_file,
            log_level=log_level,
        )
