"""SCHEDULER_POLICY: which planning policy the scheduler uses."""

from __future__ import annotations

import pytest

from qgjob_scheduler.config import Config
from qgjob_scheduler.errors import ConfigError
from qgjob_scheduler.planning import POLICIES


def test_qgjob_is_the_default_policy() -> None:
    assert Config.from_env({}).policy == "qgjob"
    assert Config.from_env({"SCHEDULER_POLICY": ""}).policy == "qgjob"


@pytest.mark.parametrize(("value", "expected"), [("fifo", "fifo"), ("QGJOB", "qgjob")])
def test_policy_is_read_ignoring_case(value: str, expected: str) -> None:
    config = Config.from_env({"SCHEDULER_POLICY": value})
    assert config.policy == expected
    assert config.policy in POLICIES


def test_unknown_policy_is_refused_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"SCHEDULER_POLICY must be one of qgjob, fifo"):
        Config.from_env({"SCHEDULER_POLICY": "random"})
