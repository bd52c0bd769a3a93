"""Waiting for jobs to finish, and the exit code a finished (or abandoned) wait ends with.

The clock and the sleep are arguments, so tests run without sleeping and every command
that waits (`submit --wait` now) shares this loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from qgjob_cli.client import JobRecord
from qgjob_cli.exit_codes import ExitCode

# The only two statuses the CLI interprets; any other final status (error, cancelled, or
# one a newer server adds) counts as an infrastructure outcome.
PASSED = "passed"
FAILED = "failed"


class JobReader(Protocol):
    def get_job(self, job_id: str) -> JobRecord: ...


@dataclass(frozen=True)
class WaitResult:
    jobs: list[JobRecord]  # the latest record of each job, in the order asked for
    timed_out: bool

    @property
    def unfinished(self) -> list[JobRecord]:
        return [job for job in self.jobs if not job["final"]]

    @property
    def exit_code(self) -> ExitCode:
        """The first that applies: a failed test, a timeout, an infrastructure end, success.

        A failed test is a verdict on the code under test that no rerun changes, so it
        outranks everything that is about the infrastructure.
        """
        finished = [job["status"] for job in self.jobs if job["final"]]
        if FAILED in finished:
            return ExitCode.TESTS_FAILED
        if self.timed_out:
            return ExitCode.WAIT_TIMEOUT
        if any(status != PASSED for status in finished):
            return ExitCode.INFRA_ERROR
        return ExitCode.OK


def wait_for_jobs(
    client: JobReader,
    job_ids: Iterable[str],
    *,
    timeout_s: float | None,
    poll_interval_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_final: Callable[[JobRecord], None] = lambda job: None,
) -> WaitResult:
    """Poll each unfinished job until all are final or `timeout_s` has passed.

    `on_final` is called once per job, as soon as it is seen final. A job is fetched
    once per round until it is final; the first round starts at once.
    """
    order = list(dict.fromkeys(job_ids))
    deadline = None if timeout_s is None else clock() + timeout_s
    latest: dict[str, JobRecord] = {}
    pending = order
    while True:
        still_pending = []
        for job_id in pending:
            job = latest[job_id] = client.get_job(job_id)
            if job["final"]:
                on_final(job)
            else:
                still_pending.append(job_id)
        pending = still_pending
        now = clock()
        if not pending or (deadline is not None and now >= deadline):
            return WaitResult(jobs=[latest[job_id] for job_id in order], timed_out=bool(pending))
        sleep(poll_interval_s if deadline is None else min(poll_interval_s, deadline - now))
