"""Planning settings: SCHEDULER_POLICY, the history defaults, aging."""

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


def test_planning_defaults_and_overrides() -> None:
    defaults = Config.from_env({})
    assert (defaults.default_test_s, defaults.default_install_s, defaults.aging_s) == (
        30.0,
        60.0,
        60.0,
    )
    config = Config.from_env(
        {
            "SCHEDULER_DEFAULT_TEST_S": "5",
            "SCHEDULER_DEFAULT_INSTALL_S": "0",
            "SCHEDULER_AGING_S": "120",
        }
    )
    assert (config.default_test_s, config.default_install_s, config.aging_s) == (5.0, 0.0, 120.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SCHEDULER_DEFAULT_TEST_S", "-1"),
        ("SCHEDULER_DEFAULT_INSTALL_S", "slow"),
        ("SCHEDULER_AGING_S", "0"),
    ],
)
def test_bad_planning_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})
