"""The scheduler's job-control settings: JOB_MAX_ATTEMPTS, the retry backoff, JOB_QUEUE_TTL_S."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qgjob_scheduler.config import Config
from qgjob_scheduler.errors import ConfigError
from qgjob_scheduler.retry import MAX_MAX_ATTEMPTS, RetryPolicy


def test_defaults() -> None:
    config = Config.from_env({})
    assert config.job_max_attempts == 3
    assert config.queue_ttl_s == 3600.0
    assert config.retry_policy() == RetryPolicy(
        max_attempts=3, backoff_s=1.0, backoff_max_s=60.0, avoid_s=5.0
    )


def test_every_variable_is_read_into_the_policy() -> None:
    config = Config.from_env(
        {
            "JOB_MAX_ATTEMPTS": "5",
            "JOB_RETRY_BACKOFF_S": "0.5",
            "JOB_RETRY_BACKOFF_MAX_S": "8",
            "JOB_RETRY_AVOID_S": "2",
            "JOB_QUEUE_TTL_S": "90",
        }
    )
    assert config.queue_ttl_s == 90.0
    assert config.retry_policy() == RetryPolicy(
        max_attempts=5, backoff_s=0.5, backoff_max_s=8.0, avoid_s=2.0
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOB_MAX_ATTEMPTS", "0"),
        ("JOB_MAX_ATTEMPTS", "2.5"),
        ("JOB_MAX_ATTEMPTS", str(MAX_MAX_ATTEMPTS + 1)),
        ("JOB_RETRY_BACKOFF_S", "-1"),
        ("JOB_RETRY_BACKOFF_MAX_S", "soon"),
        ("JOB_RETRY_AVOID_S", "-0.1"),
        ("JOB_QUEUE_TTL_S", "0"),
    ],
)
def test_unusable_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_the_attempt_limits_the_readme_documents_are_the_ones_enforced() -> None:
    """README's config table: JOB_MAX_ATTEMPTS, its default and its range (1-N)."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    row = re.search(
        r"^\| `JOB_MAX_ATTEMPTS` \| scheduler \| `(\d+)` \| [^|]*\((\d+)-(\d+);", readme, re.M
    )
    assert row, "JOB_MAX_ATTEMPTS is not in the README's config table"
    default, lowest, highest = (int(n) for n in row.groups())
    assert Config.from_env({}).job_max_attempts == default
    for value in (lowest, highest):
        assert Config.from_env({"JOB_MAX_ATTEMPTS": str(value)}).job_max_attempts == value
    for value in (lowest - 1, highest + 1):
        with pytest.raises(ConfigError, match="JOB_MAX_ATTEMPTS"):
            Config.from_env({"JOB_MAX_ATTEMPTS": str(value)})
