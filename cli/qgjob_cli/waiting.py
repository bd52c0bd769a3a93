"""Waiting for jobs to finish, and the exit code a finished (or abandoned) wait ends with.

The clock and the sleep are arguments, so tests run without sleeping and every command
that waits (`submit --wait` now) shares this loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from qgjob_cli.client import JobRecord
from qgjob_cli.errors import QgjobError
from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.vocabulary import FAILED, PASSED

# A transient error (server unreachable, 5xx) while fetching a job is retried after a pause
# that doubles each time (1, 2, 4, 8 s); the RETRY_ATTEMPTS-th failure in a row, or the
# deadline passing, ends the wait with that error.
RETRY_ATTEMPTS = 5
FIRST_RETRY_PAUSE_S = 1.0


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
    on_retry: Callable[[QgjobError, float], None] = lambda error, pause_s: None,
) -> WaitResult:
    """Poll each unfinished job until all are final or `timeout_s` has passed.

    `on_final` is called once per job, as soon as it is seen final. A job is fetched
    once per round until it is final; the first round starts at once. A transient error
    is retried (see RETRY_ATTEMPTS); `on_retry` is called with it and the pause before
    the retry. Any other error, or one retried too often, leaves as the QgjobError.
    """
    order = list(dict.fromkeys(job_ids))
    deadline = None if timeout_s is None else clock() + timeout_s
    latest: dict[str, JobRecord] = {}
    pending = order
    while True:
        still_pending = []
        for job_id in pending:
            job = latest[job_id] = _fetch(
                client, job_id, deadline=deadline, clock=clock, sleep=sleep, on_retry=on_retry
            )
            if job["final"]:
                on_final(job)
            else:
                still_pending.append(job_id)
        pending = still_pending
        now = clock()
        if not pending or _passed(deadline, now):
            return WaitResult(jobs=[latest[job_id] for job_id in order], timed_out=bool(pending))
        sleep(_capped(poll_interval_s, deadline, now))


def _fetch(
    client: JobReader,
    job_id: str,
    *,
    deadline: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_retry: Callable[[QgjobError, float], None],
) -> JobRecord:
    """The job's record, fetched again after a pause while the error is transient."""
    failures = 0
    while True:
        try:
            return client.get_job(job_id)
        except QgjobError as error:
            failures += 1
            now = clock()
            if not error.transient or failures >= RETRY_ATTEMPTS or _passed(deadline, now):
                raise
            pause_s = _capped(FIRST_RETRY_PAUSE_S * 2 ** (failures - 1), deadline, now)
            on_retry(error, pause_s)
            sleep(pause_s)


def _passed(deadline: float | None, now: float) -> bool:
    return deadline is not None and now >= deadline


def _capped(seconds: float, deadline: float | None, now: float) -> float:
    """`seconds`, or less so as to wake up at the deadline."""
    return seconds if deadline is None else min(seconds, deadline - now)
