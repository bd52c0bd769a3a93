"""What a driver is: it installs an app version on the device and runs one test on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from qgjob_agent.stopping import Stop
from qgjob_contract.statuses import ErrorReason, JobStatus


@dataclass(frozen=True)
class JobRun:
    """One test to run: a job of a batch, with the batch's app version and target."""

    job_id: str
    org_id: str
    test_path: str
    app_version_id: str
    target: str
    attempt: int = 1  # which attempt of the job this is (1, 2, ...)

    def variables(self) -> dict[str, str]:
        """The values a command template may use."""
        return {
            "test_path": self.test_path,
            "app_version_id": self.app_version_id,
            "target": self.target,
            "org_id": self.org_id,
        }


@dataclass(frozen=True)
class RunOutcome:
    """How one test ended: passed, failed (the test failed), error (infrastructure or its
    run timeout) or cancelled (stopped because its job was cancelled)."""

    status: JobStatus
    duration_s: float
    log_tail: str
    reason: ErrorReason | None = None


class Driver(Protocol):
    @property
    def name(self) -> str:
        """Reported in every job result (`driver`)."""

    @property
    def simulated(self) -> bool:
        """True when no real test runs; reported in every job result."""

    def install(self, app_version_id: str, target: str, *, attempt: int = 1) -> None:
        """Install the app version on the device; raise InstallError when that fails.

        `attempt`: the attempt of the batch's jobs it is for (1 for a first attempt)."""

    def run_test(self, job: JobRun, stop: Stop | None = None) -> RunOutcome:
        """Run one test and say how it ended; stop it early when `stop` says so (its run
        timeout: error/timeout; its job cancelled: cancelled). The runner always gives a
        `stop`; without one a driver applies its own default timeout, if any."""


def tail(text: str, chars: int) -> str:
    """The last `chars` characters of `text` (all of it when shorter)."""
    return text[-chars:] if chars > 0 else ""
