"""The API's configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from qgjob_api import ratelimits as limits
from qgjob_api.auth import AUTH_MODES, AUTH_OFF, AUTH_TOKENS
from qgjob_api.errors import ConfigError
from qgjob_contract import env as shared
from qgjob_contract.env import Env

# A shorter admin token could be guessed; `openssl rand -hex 32` gives 64 characters.
MIN_ADMIN_TOKEN = 32


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
    # QGJOB_AUTH: "off" (no token asked for; a warning at start) or "tokens".
    auth_mode: str = AUTH_OFF
    # QGJOB_ADMIN_TOKEN: required with tokens; never shown (repr) nor logged.
    admin_token: str | None = field(default=None, repr=False)
    # flask-limiter limit strings per token (per client address with auth off), or "off".
    rate_limit_submit: str = limits.DEFAULT_SUBMIT
    rate_limit_read: str = limits.DEFAULT_READ

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        env = Env(environ, error=ConfigError)
        defaults = cls()
        auth_mode = env.choice("QGJOB_AUTH", defaults.auth_mode, AUTH_MODES)
        admin_token = env.text("QGJOB_ADMIN_TOKEN", "") or None
        if auth_mode == AUTH_TOKENS:
            if admin_token is None:
                raise ConfigError("QGJOB_AUTH=tokens needs QGJOB_ADMIN_TOKEN")
            if len(admin_token) < MIN_ADMIN_TOKEN:
                raise ConfigError(
                    f"QGJOB_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN} characters"
                )
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
            auth_mode=auth_mode,
            admin_token=admin_token,
            rate_limit_submit=_limit(env, "QGJOB_RATE_LIMIT_SUBMIT", defaults.rate_limit_submit),
            rate_limit_read=_limit(env, "QGJOB_RATE_LIMIT_READ", defaults.rate_limit_read),
        )


def _limit(env: Env, name: str, default: str) -> str:
    value = env.text(name, default)
    problem = limits.problem(value)
    if problem is not None:
        raise ConfigError(f"{name}: {problem}")
    return value
