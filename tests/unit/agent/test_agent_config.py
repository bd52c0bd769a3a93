"""Config.from_env: defaults, overrides, and a clear error for every bad value."""

from __future__ import annotations

import socket
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from qgjob_agent.config import Config, SimSeconds
from qgjob_agent.errors import ConfigError
from qgjob_agent.plugin import APPWRIGHT_COMMAND, BUILTIN_DRIVERS, TargetPlugin
from qgjob_agent_browserstack.agent import PLUGIN as BROWSERSTACK
from qgjob_agent_device.agent import PLUGIN as DEVICE
from qgjob_agent_emulator.agent import PLUGIN as EMULATOR
from qgjob_contract.targets import Target


def test_defaults() -> None:
    config = Config.from_env(DEVICE, {})
    assert config.agent_id == f"device-{socket.gethostname()}"
    assert config.target == Target.DEVICE
    assert config.redis_url == "redis://localhost:6379/0"
    assert config.rabbitmq_url == "amqp://guest:guest@localhost:5672/%2F"
    assert config.driver == "simulator"
    assert (config.sim_install_s, config.sim_test_s) == (SimSeconds(3.0, 3.0), SimSeconds(1.0, 1.0))
    assert (config.sim_fail_pattern, config.sim_error_pattern) == ("*fail*", "")
    assert config.command.text == APPWRIGHT_COMMAND
    assert config.command.render({"test_path": "t.js", "target": "device"}) == [
        "npx",
        "appwright",
        "test",
        "t.js",
        "--project",
        "device",
    ]
    assert config.install_command is None
    assert config.test_timeout_s == 600.0
    assert config.heartbeat_s == 2.0
    assert config.log_tail_chars == 4000
    assert config.health_file == Path("/tmp/qgjob-agent-alive")  # noqa: S108
    assert config.log_level == "INFO"


def test_every_variable_is_read() -> None:
    config = Config.from_env(
        EMULATOR,
        {
            "AGENT_ID": "emu-7",
            "REDIS_URL": "redis://redis:6379/1",
            "RABBITMQ_URL": "amqp://u:p@rabbitmq:5672/%2F",
            "AGENT_DRIVER": "command",
            "SIM_INSTALL_SECONDS": "0.5",
            "SIM_TEST_SECONDS": "0",
            "SIM_FAIL_PATTERN": "*broken*",
            "SIM_ERROR_PATTERN": "*infra*",
            "AGENT_COMMAND": "run {test_path}",
            "AGENT_INSTALL_COMMAND": "adb install {app_version_id}.apk",
            "AGENT_TEST_TIMEOUT_S": "90",
            "AGENT_HEARTBEAT_S": "0.5",
            "AGENT_LOG_TAIL_CHARS": "100",
            "AGENT_HEALTH_FILE": "/run/alive",
            "LOG_LEVEL": "debug",
        },
    )
    assert config.agent_id == "emu-7"
    assert config.redis_url == "redis://redis:6379/1"
    assert config.rabbitmq_url == "amqp://u:p@rabbitmq:5672/%2F"
    assert config.driver == "command"
    assert (config.sim_install_s, config.sim_test_s) == (SimSeconds(0.5, 0.5), SimSeconds(0, 0))
    assert (config.sim_fail_pattern, config.sim_error_pattern) == ("*broken*", "*infra*")
    assert config.command.arguments == ("run", "{test_path}")
    assert config.install_command is not None
    assert config.install_command.render({"app_version_id": "v1", "target": "emulator"}) == [
        "adb",
        "install",
        "v1.apk",
    ]
    assert config.test_timeout_s == 90.0
    assert config.heartbeat_s == 0.5
    assert config.log_tail_chars == 100
    assert config.health_file == Path("/run/alive")
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.05..3", SimSeconds(0.05, 3.0)),
        (" 1 .. 2 ", SimSeconds(1.0, 2.0)),
        ("2..2", SimSeconds(2, 2)),
    ],
)
def test_simulated_durations_accept_a_range(value: str, expected: SimSeconds) -> None:
    config = Config.from_env(EMULATOR, {"SIM_TEST_SECONDS": value, "SIM_INSTALL_SECONDS": value})
    assert config.sim_test_s == expected
    assert config.sim_install_s == expected


def test_a_bad_range_is_one_line_naming_the_variable_and_the_forms() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(EMULATOR, {"SIM_TEST_SECONDS": "3..1"})
    assert str(caught.value) == (
        "SIM_TEST_SECONDS must be seconds >= 0 or a range A..B with 0 < A <= B (got '3..1')"
    )


def test_an_empty_fail_pattern_means_no_test_fails() -> None:
    assert Config.from_env(EMULATOR, {"SIM_FAIL_PATTERN": ""}).sim_fail_pattern == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIM_INSTALL_SECONDS", "three"),
        ("SIM_INSTALL_SECONDS", "-1"),
        ("SIM_TEST_SECONDS", "nan"),
        ("SIM_TEST_SECONDS", "inf"),
        ("SIM_TEST_SECONDS", "0..3"),  # log-uniform needs a lower bound above 0
        ("SIM_TEST_SECONDS", "3..0.5"),
        ("SIM_TEST_SECONDS", "0.1..x"),
        ("SIM_TEST_SECONDS", "..3"),
        ("SIM_TEST_SECONDS", "0.1..2..3"),
        ("SIM_INSTALL_SECONDS", "1..inf"),
        ("SIM_INSTALL_SECONDS", "-1..2"),
        ("AGENT_TEST_TIMEOUT_S", "0"),
        ("AGENT_HEARTBEAT_S", "0"),
        ("AGENT_HEARTBEAT_S", "30"),
        ("AGENT_LOG_TAIL_CHARS", "1.5"),
        ("AGENT_LOG_TAIL_CHARS", "-3"),
        ("LOG_LEVEL", "loud"),
        ("AGENT_ID", "has space"),
        ("AGENT_ID", "a" * 129),
        ("AGENT_DRIVER", "rest"),
        ("REDIS_URL", "http://redis:6379"),
        ("RABBITMQ_URL", "redis://rabbitmq"),
        ("AGENT_COMMAND", "run {nope}"),
        ("AGENT_INSTALL_COMMAND", "install {org_id}"),
    ],
)
def test_a_bad_value_is_a_startup_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env(EMULATOR, {name: value})


def test_drivers_are_limited_to_what_the_plugin_offers() -> None:
    simulator_only = TargetPlugin(
        Target.BROWSERSTACK, APPWRIGHT_COMMAND, {"simulator": BUILTIN_DRIVERS["simulator"]}
    )
    with pytest.raises(ConfigError, match="choose one of: simulator"):
        Config.from_env(simulator_only, {"AGENT_DRIVER": "command"})


@pytest.mark.parametrize(
    ("plugin", "target"),
    [(EMULATOR, Target.EMULATOR), (DEVICE, Target.DEVICE), (BROWSERSTACK, Target.BROWSERSTACK)],
)
def test_each_target_package_contributes_its_plugin_and_console_script(
    plugin: TargetPlugin, target: Target
) -> None:
    assert plugin.target == target
    assert set(plugin.drivers) == {"simulator", "command"}
    (script,) = entry_points(group="console_scripts", name=f"qgjob-agent-{target.value}")
    assert script.value == f"qgjob_agent_{target.value}.agent:main"
