"""The command driver: one real process per test, from a command template, without a shell.

Exit code 0 = passed, anything else = failed. A test is watched through its `Stop` (the one
stop mechanism every driver shares): still running after its run timeout (the job's
`timeout_s`, else AGENT_TEST_TIMEOUT_S) it is killed, with every process it started (its
process group), and ends `error`, reason `timeout`; when its job is cancelled it is killed
the same way and ends `cancelled`. An install command has AGENT_TEST_TIMEOUT_S. The combined
stdout and stderr, cut to its tail, is the job's log tail. The agent refuses to start when a
template's program is not installed, rather than failing every job it is given.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from qgjob_agent.config import Config
from qgjob_agent.drivers.base import JobRun, RunOutcome, tail
from qgjob_agent.errors import ConfigError, InstallError
from qgjob_agent.stopping import Stop, StopReason
from qgjob_agent.template import CommandTemplate
from qgjob_contract.statuses import DriverName, ErrorReason, JobStatus


@dataclass(frozen=True)
class _Finished:
    returncode: int | None  # None when stopped (`stopped` says why)
    output: str
    duration_s: float
    stopped: StopReason | None = None


class CommandDriver:
    name = DriverName.COMMAND.value
    simulated = False

    def __init__(
        self,
        *,
        command: CommandTemplate,
        install_command: CommandTemplate | None,
        timeout_s: float,
        log_tail_chars: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._command = command
        self._install_command = install_command
        self._timeout_s = timeout_s
        self._log_tail_chars = log_tail_chars
        self._monotonic = monotonic

    @classmethod
    def from_config(cls, config: Config) -> CommandDriver:
        """The driver for the agent's settings; ConfigError when a program is not installed."""
        _require_program(config.command, "AGENT_COMMAND")
        if config.install_command is not None:
            _require_program(config.install_command, "AGENT_INSTALL_COMMAND")
        return cls(
            command=config.command,
            install_command=config.install_command,
            timeout_s=config.test_timeout_s,
            log_tail_chars=config.log_tail_chars,
        )

    def install(self, app_version_id: str, target: str, *, attempt: int = 1) -> None:
        if self._install_command is None:
            return
        argv = self._install_command.render({"app_version_id": app_version_id, "target": target})
        try:
            finished = self._run(argv, Stop(self._timeout_s, monotonic=self._monotonic))
        except OSError as exc:
            raise InstallError(f"install command could not start: {exc}") from exc
        if finished.returncode is None:
            raise InstallError(f"install command timed out:\n{finished.output}")
        if finished.returncode != 0:
            raise InstallError(
                f"install command exited with {finished.returncode}:\n{finished.output}"
            )

    def run_test(self, job: JobRun, stop: Stop | None = None) -> RunOutcome:
        stop = stop or Stop(self._timeout_s, monotonic=self._monotonic)
        finished = self._run(self._command.render(job.variables()), stop)
        if finished.stopped is StopReason.CANCELLED:
            return RunOutcome(JobStatus.CANCELLED, finished.duration_s, finished.output)
        if finished.returncode is None:
            return RunOutcome(
                JobStatus.ERROR, finished.duration_s, finished.output, ErrorReason.TIMEOUT
            )
        status = JobStatus.PASSED if finished.returncode == 0 else JobStatus.FAILED
        return RunOutcome(status, finished.duration_s, finished.output)

    def _run(self, argv: Sequence[str], stop: Stop) -> _Finished:
        """Run argv in its own process group; kill the whole group when `stop` says so.

        `communicate` is called again after each short wait (it keeps the output read so
        far), so the pipe never fills while the test runs.
        """
        started = self._monotonic()
        stop.start()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        returncode: int | None = None
        why: StopReason | None = None
        try:
            while True:
                try:
                    output, _ = process.communicate(timeout=max(stop.slice_s(), 0.01))
                    returncode = process.returncode
                    break
                except subprocess.TimeoutExpired:
                    why = stop.reason()
                    if why is not None:
                        _kill_group(process)
                        output, _ = process.communicate()
                        break
        except BaseException:
            _kill_group(process)
            process.wait()
            raise
        text = output.decode(errors="replace")
        if why is not None:
            text += f"\n{stop.describe(why)}: killed with its process group"
        return _Finished(
            returncode, tail(text, self._log_tail_chars), self._monotonic() - started, why
        )


def _require_program(template: CommandTemplate, source: str) -> None:
    """Raise ConfigError, naming `source`, when the template's program cannot be found."""
    program = template.program
    if program is not None and shutil.which(program) is None:
        raise ConfigError(
            f"{source}: program {program!r} not found or not executable (the agent images "
            "ship no node or npx: see services/agent-runtime/README.md)"
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
