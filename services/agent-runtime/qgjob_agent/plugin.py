"""What a target package contributes to the shared runtime."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qgjob_agent.config import Config
from qgjob_agent.drivers.base import Driver
from qgjob_agent.drivers.command import CommandDriver
from qgjob_agent.drivers.simulator import SimulatorDriver
from qgjob_contract.statuses import DriverName
from qgjob_contract.targets import Target

DriverFactory = Callable[[Config], Driver]

# The drivers every target offers; a target may add its own (say, a REST driver).
BUILTIN_DRIVERS: Mapping[str, DriverFactory] = {
    DriverName.SIMULATOR.value: SimulatorDriver.from_config,
    DriverName.COMMAND.value: CommandDriver.from_config,
}

APPWRIGHT_COMMAND = "npx appwright test {test_path} --project {target}"


@dataclass(frozen=True)
class TargetPlugin:
    target: Target
    default_command: str  # AGENT_COMMAND when the environment does not set it
    drivers: Mapping[str, DriverFactory]  # AGENT_DRIVER value -> factory

    def make_driver(self, config: Config) -> Driver:
        return self.drivers[config.driver](config)
