"""The agent's configuration, read once from the environment and checked before it starts."""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qgjob_agent.errors import ConfigError
from qgjob_agent.template import INSTALL_VARIABLES, TEST_VARIABLES, CommandTemplate
from qgjob_contract import env as shared
from qgjob_contract.env import Env
from qgjob_contract.statuses import DriverName
from qgjob_contract.targets import Target

if TYPE_CHECKING:
    from qgjob_agent.plugin import TargetPlugin

# Read by the healthcheck too, which has no plugin and so no full Config.
HEALTH_FILE_ENV = "AGENT_HEALTH_FILE"
DEFAULT_HEALTH_FILE = "/tmp/qgjob-agent-alive"  # noqa: S108 (a marker file in the container)
HEALTH_MAX_AGE_S = 30.0

_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_RANGE_SEPARATOR = ".."


@dataclass(frozen=True)
class SimSeconds:
    """A simulated duration: a number (`low == high`), or a range `A..B` with 0 < A < B.

    In a range every test path (or app version) gets its own fixed duration, log-uniform in
    [A, B] (see `drivers.simulator.simulated_seconds`).
    """

    low: float
    high: float

    @classmethod
    def read(cls, env: Env, name: str, default: float) -> SimSeconds:
        """`name` as a number of seconds >= 0, or as `A..B`; ConfigError naming it if bad."""
        raw = env.text(name, "")
        if _RANGE_SEPARATOR not in raw:
            value = env.number(name, default, minimum=0.0)
            return cls(value, value)
        low_text, _, high_text = raw.partition(_RANGE_SEPARATOR)
        problem = f"{name} must be seconds >= 0 or a range A..B with 0 < A <= B (got {raw!r})"
        bounds = Env({"A": low_text, "B": high_text}, error=ConfigError)
        try:
            low = bounds.number("A", math.nan, minimum=0.0, exclusive=True)
            high = bounds.number("B", math.nan, minimum=0.0, exclusive=True)
        except ConfigError:
            raise ConfigError(problem) from None
        if math.isnan(low) or math.isnan(high) or low > high:
            raise ConfigError(problem)
        return cls(low, high)


@dataclass(frozen=True)
class Config:
    agent_id: str  # AGENT_ID: unique per agent; names its RQ worker and queue
    target: Target
    redis_url: str  # REDIS_URL
    rabbitmq_url: str  # RABBITMQ_URL
    driver: str  # AGENT_DRIVER: a driver the target's plugin offers
    sim_install_s: SimSeconds  # SIM_INSTALL_SECONDS: seconds, or A..B per app version
    sim_test_s: SimSeconds  # SIM_TEST_SECONDS: seconds, or A..B per test path
    sim_fail_pattern: str  # SIM_FAIL_PATTERN: glob on test_path; matching tests fail
    sim_error_pattern: str  # SIM_ERROR_PATTERN: glob on test_path; matching tests end `error`
    # SIM_FLAKY_PATTERN: glob on test_path; a matching test fails on its first attempt only
    sim_flaky_pattern: str
    # SIM_INSTALL_ERROR_PATTERN: glob on app_version_id; its install fails on a first attempt
    sim_install_error_pattern: str
    command: CommandTemplate  # AGENT_COMMAND: the command driver's per-test command
    install_command: CommandTemplate | None  # AGENT_INSTALL_COMMAND: None = no install step
    test_timeout_s: float  # AGENT_TEST_TIMEOUT_S: per process (test or install); a job's
    # own `timeout_s` replaces it for its test
    heartbeat_s: float  # AGENT_HEARTBEAT_S
    log_tail_chars: int  # AGENT_LOG_TAIL_CHARS
    health_file: Path  # AGENT_HEALTH_FILE: touched after each heartbeat the broker confirmed
    log_level: str  # LOG_LEVEL

    @classmethod
    def from_env(cls, plugin: TargetPlugin, environ: Mapping[str, str] | None = None) -> Config:
        """Read and check every setting; raise ConfigError naming the first bad one."""
        env = Env(os.environ if environ is None else environ, error=ConfigError)
        agent_id = env.text("AGENT_ID", f"{plugin.target.value}-{socket.gethostname()}")
        if not _AGENT_ID.fullmatch(agent_id):
            raise ConfigError(
                f"AGENT_ID must be 1-128 letters, digits, '.', '_' or '-' (got {agent_id!r})"
            )
        driver = env.text("AGENT_DRIVER", DriverName.SIMULATOR.value)
        if driver not in plugin.drivers:
            offered = ", ".join(sorted(plugin.drivers))
            raise ConfigError(
                f"AGENT_DRIVER {driver!r} is not offered for target {plugin.target.value} "
                f"(choose one of: {offered})"
            )
        install_text = env.text("AGENT_INSTALL_COMMAND", "")
        heartbeat_s = env.number("AGENT_HEARTBEAT_S", 2.0, minimum=0.0, exclusive=True)
        if heartbeat_s >= HEALTH_MAX_AGE_S:
            raise ConfigError(
                f"AGENT_HEARTBEAT_S must be below the healthcheck's {HEALTH_MAX_AGE_S:g} s "
                f"freshness limit (got {heartbeat_s:g})"
            )
        return cls(
            agent_id=agent_id,
            target=plugin.target,
            redis_url=env.url("REDIS_URL", shared.DEFAULT_REDIS_URL, shared.REDIS_SCHEMES),
            rabbitmq_url=env.url("RABBITMQ_URL", shared.DEFAULT_RABBITMQ_URL, shared.AMQP_SCHEMES),
            driver=driver,
            sim_install_s=SimSeconds.read(env, "SIM_INSTALL_SECONDS", 3.0),
            sim_test_s=SimSeconds.read(env, "SIM_TEST_SECONDS", 1.0),
            sim_fail_pattern=env.pattern("SIM_FAIL_PATTERN", "*fail*"),
            sim_error_pattern=env.pattern("SIM_ERROR_PATTERN", ""),
            sim_flaky_pattern=env.pattern("SIM_FLAKY_PATTERN", ""),
            sim_install_error_pattern=env.pattern("SIM_INSTALL_ERROR_PATTERN", ""),
            command=CommandTemplate.parse(
                env.text("AGENT_COMMAND", plugin.default_command),
                TEST_VARIABLES,
                source="AGENT_COMMAND",
            ),
            install_command=(
                CommandTemplate.parse(
                    install_text, INSTALL_VARIABLES, source="AGENT_INSTALL_COMMAND"
                )
                if install_text.strip()
                else None
            ),
            test_timeout_s=env.number("AGENT_TEST_TIMEOUT_S", 600.0, minimum=0.0, exclusive=True),
            heartbeat_s=heartbeat_s,
            log_tail_chars=env.number("AGENT_LOG_TAIL_CHARS", 4000, minimum=0, integer=True),
            health_file=Path(env.text(HEALTH_FILE_ENV, DEFAULT_HEALTH_FILE)),
            log_level=env.choice("LOG_LEVEL", shared.DEFAULT_LOG_LEVEL, shared.LOG_LEVELS),
        )
