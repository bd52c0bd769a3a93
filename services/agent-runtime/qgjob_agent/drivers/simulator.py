"""The simulator driver: deterministic, and honest about not running anything.

Installing sleeps SIM_INSTALL_SECONDS, and fails (an infrastructure error) when the app
version matches SIM_INSTALL_ERROR_PATTERN and the batch is its jobs' first attempt; a test
sleeps SIM_TEST_SECONDS and then ends `error` when its path matches SIM_ERROR_PATTERN,
`failed` when it matches SIM_FAIL_PATTERN, or SIM_FLAKY_PATTERN on its first attempt, else
`passed`. So a retry (a second attempt) of a flaky test or of a build whose install failed
passes: deterministic. Patterns are shell-style globs (fnmatch, case-sensitive); an empty
pattern never matches. A test stops early like any driver's (`Stop`): at its run timeout
(`error`, reason `timeout`) or when its job is cancelled (`cancelled`).

Either duration may be a range `A..B`: then each test path (for SIM_TEST_SECONDS) or app
version (for SIM_INSTALL_SECONDS) gets its own duration, log-uniform in [A, B] (as real
suites are: many short tests, a few long ones), fixed by a hash of its name, so every run,
agent and process gives it the same duration.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from fnmatch import fnmatchcase

from qgjob_agent.config import Config, SimSeconds
from qgjob_agent.drivers.base import JobRun, RunOutcome
from qgjob_agent.errors import InstallError
from qgjob_agent.stopping import Stop, StopReason
from qgjob_contract.statuses import DriverName, ErrorReason, JobStatus


class SimulatorDriver:
    name = DriverName.SIMULATOR.value
    simulated = True

    def __init__(
        self,
        *,
        install_s: SimSeconds | float,
        test_s: SimSeconds | float,
        fail_pattern: str,
        error_pattern: str,
        flaky_pattern: str = "",
        install_error_pattern: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._install_s = _seconds(install_s)
        self._test_s = _seconds(test_s)
        self._fail_pattern = fail_pattern
        self._error_pattern = error_pattern
        self._flaky_pattern = flaky_pattern
        self._install_error_pattern = install_error_pattern
        self._sleep = sleep

    @classmethod
    def from_config(cls, config: Config) -> SimulatorDriver:
        return cls(
            install_s=config.sim_install_s,
            test_s=config.sim_test_s,
            fail_pattern=config.sim_fail_pattern,
            error_pattern=config.sim_error_pattern,
            flaky_pattern=config.sim_flaky_pattern,
            install_error_pattern=config.sim_install_error_pattern,
        )

    def install(self, app_version_id: str, target: str, *, attempt: int = 1) -> None:
        self._sleep(simulated_seconds(self._install_s, app_version_id))
        if attempt <= 1 and _matches(app_version_id, self._install_error_pattern):
            raise InstallError(
                f"simulated: installing {app_version_id} on {target} failed because it matches "
                f"SIM_INSTALL_ERROR_PATTERN {self._install_error_pattern!r} (first attempt)"
            )

    def run_test(self, job: JobRun, stop: Stop | None = None) -> RunOutcome:
        seconds = simulated_seconds(self._test_s, job.test_path)
        note = f"simulated: no real test ran; {job.test_path} on {job.target}"
        if stop is None:  # nothing can stop it: just the simulated time
            self._sleep(seconds)
            why = None
        else:
            started = stop.start().monotonic()
            why = stop.sleep(seconds, self._sleep)
        if stop is not None and why is not None:
            ran = stop.monotonic() - started
            if why is StopReason.CANCELLED:
                return RunOutcome(JobStatus.CANCELLED, ran, f"{note}: {stop.describe(why)}")
            return RunOutcome(
                JobStatus.ERROR, ran, f"{note}: {stop.describe(why)}", ErrorReason.TIMEOUT
            )
        if job.attempt <= 1 and _matches(job.test_path, self._flaky_pattern):
            return RunOutcome(
                status=JobStatus.FAILED,
                duration_s=seconds,
                log_tail=f"{note}: failed on its first attempt because the path matches "
                f"SIM_FLAKY_PATTERN {self._flaky_pattern!r} (a rerun passes)",
            )
        if _matches(job.test_path, self._error_pattern):
            return RunOutcome(
                status=JobStatus.ERROR,
                duration_s=seconds,
                log_tail=f"{note}: infrastructure error because the path matches "
                f"SIM_ERROR_PATTERN {self._error_pattern!r}",
                reason=ErrorReason.DRIVER_ERROR,
            )
        if _matches(job.test_path, self._fail_pattern):
            return RunOutcome(
                status=JobStatus.FAILED,
                duration_s=seconds,
                log_tail=f"{note}: failed because the path matches "
                f"SIM_FAIL_PATTERN {self._fail_pattern!r}",
            )
        return RunOutcome(
            status=JobStatus.PASSED,
            duration_s=seconds,
            log_tail=f"{note}: passed after {seconds:g} s",
        )


def simulated_seconds(seconds: SimSeconds, name: str) -> float:
    """The duration of `name` (a test path or app version): log-uniform in the range, stable.

    The position in [low, high] comes from the SHA-256 of `name`, not from a random
    generator, so it is the same in every process and run.
    """
    if seconds.low == seconds.high:
        return seconds.low
    digest = hashlib.sha256(name.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64  # in [0, 1)
    return math.exp(math.log(seconds.low) + fraction * math.log(seconds.high / seconds.low))


def _seconds(value: SimSeconds | float) -> SimSeconds:
    return value if isinstance(value, SimSeconds) else SimSeconds(value, value)


def _matches(path: str, pattern: str) -> bool:
    return bool(pattern) and fnmatchcase(path, pattern)
