"""Waiting for jobs to finish, and the exit code a finished (or abandoned) wait ends with.

Every command that waits (`run`, `wait`, `rerun`, `submit --wait`) shares this loop. A poll
is ONE request per run (`GET /v1/runs/<id>`, every job of the run) plus, for jobs named
outside a run, ONE `POST /v1/jobs/lookup` for those not yet final: never one per job.
The clock and the sleep are arguments, so tests run without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from qgjob_cli.client import JobRecord, RunRecord
from qgjob_cli.errors import QgjobError
from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.vocabulary import CANCELLED, FAILED, PASSED

# A transient error (server unreachable, 5xx) during a poll is retried after a pause that
# doubles each time (1, 2, 4, 8 s); the RETRY_ATTEMPTS-th failure in a row, or the deadline
# passing, ends the wait with that error.
RETRY_ATTEMPTS = 5
FIRST_RETRY_PAUSE_S = 1.0


class Reader(Protocol):
    def get_run(self, run_id: str) -> RunRecord: ...

    def lookup_jobs(self, job_ids: list[str]) -> list[JobRecord]: ...


@dataclass(frozen=True)
class WaitResult:
    jobs: list[JobRecord]  # the latest record of each job, in the order asked for
    timed_out: bool

    @property
    def unfinished(self) -> list[JobRecord]:
        return [job for job in self.jobs if not job["final"]]

    @property
    def exit_code(self) -> ExitCode:
        """The first that applies: failed, timed out, infrastructure error, cancelled, ok.

        A failed test is a verdict on the code under test that no rerun changes, so it
        outranks everything that is about the infrastructure. A final status this CLI does
        not know counts as an infrastructure error.
        """
        finished = [job["status"] for job in self.jobs if job["final"]]
        if FAILED in finished:
            return ExitCode.TESTS_FAILED
        if self.timed_out:
            return ExitCode.WAIT_TIMEOUT
        if any(status not in (PASSED, CANCELLED) for status in finished):
            return ExitCode.INFRA_ERROR
        if CANCELLED in finished:
            return ExitCode.CANCELLED
        return ExitCode.OK


@dataclass
class Watch:
    """What one wait follows: whole runs, and jobs named by id. `poll()` is one round."""

    reader: Reader
    run_ids: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    runs: dict[str, RunRecord] = field(default_factory=dict)  # latest of each run
    _jobs: dict[str, JobRecord] = field(default_factory=dict)

    def poll(self) -> list[JobRecord]:
        """Every job followed, latest records: run by run, then the loose jobs."""
        for run_id in self.run_ids:
            if not self.runs.get(run_id, {}).get("finished"):
                self.runs[run_id] = self.reader.get_run(run_id)
        pending = [job_id for job_id in self.job_ids if not self._jobs.get(job_id, {}).get("final")]
        if pending:
            for job in self.reader.lookup_jobs(pending):
                self._jobs[job["job_id"]] = job
        jobs = [job for run_id in self.run_ids for job in self.runs[run_id]["jobs"]]
        return jobs + [self._jobs[job_id] for job_id in self.job_ids]


def wait_for(
    poll: Callable[[], list[JobRecord]],
    *,
    timeout_s: float | None,
    poll_interval_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_poll: Callable[[list[JobRecord]], None] = lambda jobs: None,
    on_final: Callable[[JobRecord], None] = lambda job: None,
    on_retry: Callable[[QgjobError, float], None] = lambda error, pause_s: None,
) -> WaitResult:
    """Poll until every job is final or `timeout_s` has passed; the first round is at once.

    `on_final` is called once per job, as soon as it is seen final (in the order of the
    poll's answer), then `on_poll` with the whole answer. A transient error is retried (see
    RETRY_ATTEMPTS); `on_retry` is called with it and the pause before the retry. Any other
    error, or one retried too often, leaves as the QgjobError.
    """
    deadline = None if timeout_s is None else clock() + timeout_s
    reported: set[str] = set()
    while True:
        jobs = _poll(poll, deadline=deadline, clock=clock, sleep=sleep, on_retry=on_retry)
        for job in jobs:
            if job["final"] and job["job_id"] not in reported:
                reported.add(job["job_id"])
                on_final(job)
        on_poll(jobs)
        pending = [job for job in jobs if not job["final"]]
        now = clock()
        if not pending or _passed(deadline, now):
            return WaitResult(jobs=jobs, timed_out=bool(pending))
        sleep(_capped(poll_interval_s, deadline, now))


def _poll(
    poll: Callable[[], list[JobRecord]],
    *,
    deadline: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_retry: Callable[[QgjobError, float], None],
) -> list[JobRecord]:
    """One round, done again after a pause while the error is transient."""
    failures = 0
    while True:
        try:
            return poll()
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
