"""The simulator driver: deterministic, and honest about not running anything.

Installing sleeps SIM_INSTALL_SECONDS; a test sleeps SIM_TEST_SECONDS and then ends `error`
when its path matches SIM_ERROR_PATTERN, `failed` when it matches SIM_FAIL_PATTERN, else
`passed`. Patterns are shell-style globs (fnmatch, case-sensitive); an empty pattern never
matches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fnmatch import fnmatchcase

from qgjob_agent.config import Config
from qgjob_agent.drivers.base import JobRun, RunOutcome
from qgjob_contract.statuses import DriverName, ErrorReason, JobStatus


class SimulatorDriver:
    name = DriverName.SIMULATOR.value
    simulated = True

    def __init__(
        self,
        *,
        install_s: float,
        test_s: float,
        fail_pattern: str,
        error_pattern: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._install_s = install_s
        self._test_s = test_s
        self._fail_pattern = fail_pattern
        self._error_pattern = error_pattern
        self._sleep = sleep

    @classmethod
    def from_config(cls, config: Config) -> SimulatorDriver:
        return cls(
            install_s=config.sim_install_s,
            test_s=config.sim_test_s,
            fail_pattern=config.sim_fail_pattern,
            error_pattern=config.sim_error_pattern,
        )

    def install(self, app_version_id: str, target: str) -> None:
        self._sleep(self._install_s)

    def run_test(self, job: JobRun) -> RunOutcome:
        self._sleep(self._test_s)
        note = f"simulated: no real test ran; {job.test_path} on {job.target}"
        if _matches(job.test_path, self._error_pattern):
            return RunOutcome(
                status=JobStatus.ERROR,
                duration_s=self._test_s,
                log_tail=f"{note}: infrastructure error because the path matches "
                f"SIM_ERROR_PATTERN {self._error_pattern!r}",
                reason=ErrorReason.DRIVER_ERROR,
            )
        if _matches(job.test_path, self._fail_pattern):
            return RunOutcome(
                status=JobStatus.FAILED,
                duration_s=self._test_s,
                log_tail=f"{note}: failed because the path matches "
                f"SIM_FAIL_PATTERN {self._fail_pattern!r}",
            )
        return RunOutcome(
            status=JobStatus.PASSED,
            duration_s=self._test_s,
            log_tail=f"{note}: passed after {self._test_s:g} s",
        )


def _matches(path: str, pattern: str) -> bool:
    return bool(pattern) and fnmatchcase(path, pattern)
