"""The API's configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from qgjob_api.errors import ConfigError
from qgjob_contract import env as shared
from qgjob_contract.env import Env


@dataclass(frozen=True)
class Config:
    redis_url: str = shared.DEFAULT_REDIS_URL
    rabbitmq_url: str = shared.DEFAULT_RABBITMQ_URL
    # An agent whose last heartbeat is older than this is listed with alive=false.
    agent_timeout_s: float = shared.DEFAULT_AGENT_TIMEOUT_S
    # Most jobs one POST /v1/jobs may carry.
    max_jobs_per_request: int = 1000
    # JOB_RETENTION_S: idempotency keys live min(24 h, this).
    job_retention_s: float = shared.DEFAULT_JOB_RETENTION_S
    log_level: str = shared.DEFAULT_LOG_LEVEL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        env = Env(environ, error=ConfigError)
        defaults = cls()
        return cls(
            redis_url=env.url("REDIS_URL", defaults.redis_url, shared.REDIS_SCHEMES),
            rabbitmq_url=env.url("RABBITMQ_URL", defaults.rabbitmq_url, shared.AMQP_SCHEMES),
            agent_timeout_s=env.number(
                "AGENT_TIMEOUT_S", defaults.agent_timeout_s, minimum=0, exclusive=True
            ),
            max_jobs_per_request=env.number(
                "API_MAX_JOBS_PER_REQUEST", defaults.max_jobs_per_request, minimum=1, integer=True
            ),
            job_retention_s=env.number(
                "JOB_RETENTION_S", defaults.job_retention_s, minimum=0, exclusive=True
            ),
            log_level=env.choice("LOG_LEVEL", defaults.log_level, shared.LOG_LEVELS),
        )
