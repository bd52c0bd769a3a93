"""The emulator plugin and the `qgjob-agent-emulator` console script."""

from __future__ import annotations

from qgjob_agent import worker
from qgjob_agent.plugin import APPWRIGHT_COMMAND, BUILTIN_DRIVERS, TargetPlugin
from qgjob_contract.targets import Target

PLUGIN = TargetPlugin(
    target=Target.EMULATOR,
    default_command=APPWRIGHT_COMMAND,
    drivers=BUILTIN_DRIVERS,
)


def main() -> None:
    worker.main(PLUGIN)
