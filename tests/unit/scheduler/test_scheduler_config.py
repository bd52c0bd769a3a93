"""Configuration from the environment."""

from __future__ import annotations

import pytest

from qgjob_scheduler.config import Config
from qgjob_scheduler.errors import ConfigError


def test_defaults_when_nothing_is_set() -> None:
    config = Config.from_env({})
    assert config == Config()
    assert config.batch_max_jobs == 10
    assert config.batch_fill_s == 2.0
    assert config.agent_timeout_s == 6.0
    assert config.tick_s == 1.0
    assert config.prefetch == 100
    assert config.redis_url.startswith("redis://localhost")
    assert "localhost" in config.rabbitmq_url


def test_every_variable_is_read() -> None:
    config = Config.from_env(
        {
            "REDIS_URL": "redis://redis:6379/0",
            "RABBITMQ_URL": "amqp://guest:guest@rabbitmq:5672/%2F",
            "BATCH_MAX_JOBS": "4",
            "BATCH_FILL_S": "0",
            "AGENT_TIMEOUT_S": "2.5",
            "SCHEDULER_TICK_S": "0.2",
            "SCHEDULER_PREFETCH": "7",
            "SCHEDULER_HEALTH_FILE": "/run/alive",
            "LOG_LEVEL": "debug",
        }
    )
    assert config == Config(
        redis_url="redis://redis:6379/0",
        rabbitmq_url="amqp://guest:guest@rabbitmq:5672/%2F",
        batch_max_jobs=4,
        batch_fill_s=0.0,
        agent_timeout_s=2.5,
        tick_s=0.2,
        prefetch=7,
        health_file="/run/alive",
        log_level="DEBUG",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_MAX_JOBS", "0"),
        ("BATCH_MAX_JOBS", "ten"),
        ("BATCH_MAX_JOBS", "2.5"),
        ("BATCH_FILL_S", "-1"),
        ("BATCH_FILL_S", "soon"),
        ("AGENT_TIMEOUT_S", "-1"),
        ("SCHEDULER_TICK_S", "0"),
        ("SCHEDULER_PREFETCH", "x"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_unusable_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})
