"""The scheduler's configuration, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from qgjob_contract import env as shared
from qgjob_contract.env import Env
from qgjob_contract.statuses import MAX_ATTEMPTS
from qgjob_scheduler.dispatch import DEFAULT_QUEUE_TTL_S
from qgjob_scheduler.errors import ConfigError
from qgjob_scheduler.planning import (
    DEFAULT_AGING_S,
    DEFAULT_BATCH_FILL_S,
    DEFAULT_INSTALL_S,
    DEFAULT_POLICY,
    DEFAULT_TEST_S,
    POLICIES,
)
from qgjob_scheduler.retry import MAX_MAX_ATTEMPTS, RetryPolicy


@dataclass(frozen=True)
class Config:
    redis_url: str = shared.DEFAULT_REDIS_URL
    rabbitmq_url: str = shared.DEFAULT_RABBITMQ_URL
    # Most jobs in one batch, unless short tests fill it (batch_fill_s).
    batch_max_jobs: int = 10
    # Past batch_max_jobs a batch of short tests takes more while its estimated work stays
    # within this (at most planning.BATCH_CEILING jobs); 0 turns it off.
    batch_fill_s: float = DEFAULT_BATCH_FILL_S
    # An agent whose last heartbeat is older than this gets no batch.
    agent_timeout_s: float = shared.DEFAULT_AGENT_TIMEOUT_S
    # Period of the dispatch pass that runs even when no event arrives.
    tick_s: float = 1.0
    # How long after a batch ended a report of one of its jobs may still arrive (a
    # redelivery) before the job counts as not reported.
    report_grace_s: float = 5.0
    # Unacked deliveries RabbitMQ may push to the scheduler ahead of processing.
    prefetch: int = 100
    # Touched on every pass of the main loop; the container healthcheck reads its age.
    health_file: str = "/tmp/qgjob-scheduler-alive"  # noqa: S108 (a marker, not a secret)
    log_level: str = shared.DEFAULT_LOG_LEVEL
    # SCHEDULER_POLICY: the name of a policy in `planning.POLICIES` (qgjob or fifo).
    policy: str = DEFAULT_POLICY
    # Estimates for a test / a build the duration history has not seen (qgjob policy).
    default_test_s: float = DEFAULT_TEST_S
    default_install_s: float = DEFAULT_INSTALL_S
    # A pending job gains one priority step per this many seconds of waiting (aging).
    aging_s: float = DEFAULT_AGING_S
    # Retries of infrastructure errors (`retry`): attempts in all, the first backoff and its
    # cap, how long a retried job avoids the agent it failed on.
    job_max_attempts: int = MAX_ATTEMPTS
    retry_backoff_s: float = 1.0
    retry_backoff_max_s: float = 60.0
    retry_avoid_s: float = 5.0
    # A job no agent took within this long (its own `queue_ttl_s` else this) ends expired.
    queue_ttl_s: float = DEFAULT_QUEUE_TTL_S
    # JOB_RETENTION_S: finished jobs, their runs and batches' RQ results are kept this long.
    job_retention_s: float = shared.DEFAULT_JOB_RETENTION_S

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.job_max_attempts,
            backoff_s=self.retry_backoff_s,
            backoff_max_s=self.retry_backoff_max_s,
            avoid_s=self.retry_avoid_s,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        read = Env(os.environ if env is None else env, error=ConfigError)
        defaults = cls()
        return cls(
            redis_url=read.url("REDIS_URL", defaults.redis_url, shared.REDIS_SCHEMES),
            rabbitmq_url=read.url("RABBITMQ_URL", defaults.rabbitmq_url, shared.AMQP_SCHEMES),
            batch_max_jobs=read.number(
                "BATCH_MAX_JOBS", defaults.batch_max_jobs, minimum=0, exclusive=True, integer=True
            ),
            batch_fill_s=read.number("BATCH_FILL_S", defaults.batch_fill_s, minimum=0),
            agent_timeout_s=read.number(
                "AGENT_TIMEOUT_S", defaults.agent_timeout_s, minimum=0, exclusive=True
            ),
            tick_s=read.number("SCHEDULER_TICK_S", defaults.tick_s, minimum=0, exclusive=True),
            report_grace_s=read.number(
                "SCHEDULER_REPORT_GRACE_S", defaults.report_grace_s, minimum=0
            ),
            prefetch=read.number(
                "SCHEDULER_PREFETCH", defaults.prefetch, minimum=0, exclusive=True, integer=True
            ),
            health_file=read.text("SCHEDULER_HEALTH_FILE", defaults.health_file),
            log_level=read.choice("LOG_LEVEL", defaults.log_level, shared.LOG_LEVELS),
            policy=read.choice("SCHEDULER_POLICY", defaults.policy, tuple(POLICIES)),
            default_test_s=read.number(
                "SCHEDULER_DEFAULT_TEST_S", defaults.default_test_s, minimum=0
            ),
            default_install_s=read.number(
                "SCHEDULER_DEFAULT_INSTALL_S", defaults.default_install_s, minimum=0
            ),
            aging_s=read.number("SCHEDULER_AGING_S", defaults.aging_s, minimum=0, exclusive=True),
            job_max_attempts=_at_most(
                read.number(
                    "JOB_MAX_ATTEMPTS",
                    defaults.job_max_attempts,
                    minimum=0,
                    exclusive=True,
                    integer=True,
                ),
                MAX_MAX_ATTEMPTS,
                "JOB_MAX_ATTEMPTS",
            ),
            retry_backoff_s=read.number("JOB_RETRY_BACKOFF_S", defaults.retry_backoff_s, minimum=0),
            retry_backoff_max_s=read.number(
                "JOB_RETRY_BACKOFF_MAX_S", defaults.retry_backoff_max_s, minimum=0
            ),
            retry_avoid_s=read.number("JOB_RETRY_AVOID_S", defaults.retry_avoid_s, minimum=0),
            queue_ttl_s=read.number(
                "JOB_QUEUE_TTL_S", defaults.queue_ttl_s, minimum=0, exclusive=True
            ),
            job_retention_s=read.number("JOB_RETENTION_S", defaults.job_retention_s, minimum=1),
        )


def _at_most(value: int, most: int, name: str) -> int:
    if value > most:
        raise ConfigError(f"{name} must be at most {most} (got {value})")
    return value
