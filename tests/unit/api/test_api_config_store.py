"""Configuration from the environment, and the store's pure parts (cursor, filter)."""

from __future__ import annotations

import pytest

from qgjob_api.config import Config
from qgjob_api.errors import ConfigError
from qgjob_api.store import Cursor, JobFilter
from qgjob_contract.records import Job


def test_defaults() -> None:
    config = Config.from_env({})
    assert config == Config(
        redis_url="redis://localhost:6379/0",
        rabbitmq_url="amqp://guest:guest@localhost:5672/%2F",
        agent_timeout_s=6.0,
        max_jobs_per_request=1000,
        log_level="INFO",
    )


def test_environment_overrides() -> None:
    config = Config.from_env(
        {
            "REDIS_URL": "redis://redis:6379/1",
            "RABBITMQ_URL": "amqp://u:p@rabbitmq:5672/%2F",
            "AGENT_TIMEOUT_S": "2.5",
            "API_MAX_JOBS_PER_REQUEST": "20",
            "LOG_LEVEL": "debug",
        }
    )
    assert config.redis_url == "redis://redis:6379/1"
    assert config.rabbitmq_url == "amqp://u:p@rabbitmq:5672/%2F"
    assert config.agent_timeout_s == 2.5
    assert config.max_jobs_per_request == 20
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_TIMEOUT_S", "soon"),
        ("AGENT_TIMEOUT_S", "0"),
        ("AGENT_TIMEOUT_S", "nan"),
        ("API_MAX_JOBS_PER_REQUEST", "1.5"),
        ("API_MAX_JOBS_PER_REQUEST", "0"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_setting_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_cursor_round_trips_and_is_opaque() -> None:
    cursor = Cursor(1764410000123, "3f0c2a56-1b7e-4d1e-9c55-0a1f3a7b9e10")
    encoded = cursor.encode()
    assert Cursor.decode(encoded) == cursor
    assert cursor.job_id not in encoded


@pytest.mark.parametrize("value", ["", "!!!", "bm9jb2xvbg", "YWJjOmRlZg", 5])
def test_foreign_cursor_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        Cursor.decode(value)


def test_cursor_order_is_newest_first_then_id_descending() -> None:
    position = Cursor(2000, "m")
    assert position.precedes(Cursor(1999, "z"))
    assert position.precedes(Cursor(2000, "a"))
    assert not position.precedes(Cursor(2000, "m"))
    assert not position.precedes(Cursor(2000, "z"))
    assert not position.precedes(Cursor(2001, "a"))


def _job(**overrides: str) -> Job:
    fields = {
        "job_id": "j1",
        "org_id": "qualgent",
        "app_version_id": "v1",
        "test_path": "t.js",
        "target": "emulator",
        "created_at": "2026-11-29T10:00:00.250+00:00",
        "status": "queued",
    }
    fields.update(overrides)
    return Job(priority=1, **fields)


def test_filter_matches_every_given_field() -> None:
    job = _job()
    assert JobFilter().matches(job)
    assert JobFilter(
        org_id="qualgent", app_version_id="v1", status="queued", target="emulator"
    ).matches(job)
    assert not JobFilter(org_id="other").matches(job)
    assert not JobFilter(app_version_id="v2").matches(job)
    assert not JobFilter(status="passed").matches(job)
    assert not JobFilter(target="device").matches(job)
