"""Runs one batch: install its app version once (unless already there), then each test.

Events, in order: for each job `job.started` then `job.finished`, then `batch.finished`,
all put into the agent's outbox (which publishes them in order, waiting out a broker
outage: the batch does not stop for one; the job events still waiting when the
batch.finished is put are folded into it, see `qgjob_agent.outbox`). When the install
fails no test runs: every job gets only `job.finished` (error, install_failed). A driver
that crashes on a test ends that job `error` (driver_error) and the batch goes on.

Job control: each test runs under a `Stop` (its run timeout: the job's `timeout_s`, else
AGENT_TEST_TIMEOUT_S; and a cancel of its job, looked up in Redis while it runs), the one
stop mechanism the drivers share: a test that times out ends `error` (reason `timeout`), one
whose job is cancelled ends `cancelled`, and the batch goes on with its next job. A job whose
cancel was asked before its test started is not started: it is reported `cancelled`.

Fencing: a batch bound to another instance of this agent (a former incarnation) is not run,
and before each test the runner asks `still_bound` whether the scheduler still holds the
batch bound to this agent: if it was requeued meanwhile (the lease was judged expired), the
agent stops it there, since its jobs run elsewhere and its reports would be ignored.

However a batch ends, finished or aborted, the agent is idle afterwards and its heartbeats
name the batch as `last_batch_id`: the scheduler ends the jobs it was never told about.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from qgjob_agent.drivers.base import Driver, JobRun, RunOutcome
from qgjob_agent.errors import InstallError
from qgjob_agent.status import AgentStatus
from qgjob_agent.stopping import CANCEL_POLL_S, Stop
from qgjob_contract.events import (
    BatchFinished,
    Envelope,
    EventType,
    JobFinished,
    JobReport,
    JobResult,
    JobStarted,
    make_event,
    utc_now,
)
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.statuses import ErrorReason, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Install:
    paid: bool  # this batch installed the app version
    seconds: float
    error: str | None = None  # why the install failed; None when it did not


class Reports(Protocol):
    def put(self, envelope: Envelope) -> None:
        """Queue a report for delivery, in order (the outbox); never blocks on the broker."""


def _always_bound(_batch_id: str) -> bool:
    return True


def _never_cancelled(_job_id: str) -> bool:
    return False


# AGENT_TEST_TIMEOUT_S's default.
DEFAULT_TEST_TIMEOUT_S = 600.0


class BatchRunner:
    def __init__(
        self,
        driver: Driver,
        reports: Reports,
        status: AgentStatus,
        *,
        still_bound: Callable[[str], bool] = _always_bound,
        cancelled: Callable[[str], bool] = _never_cancelled,
        test_timeout_s: float = DEFAULT_TEST_TIMEOUT_S,
        cancel_poll_s: float = CANCEL_POLL_S,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self._driver = driver
        self._reports = reports
        self._status = status
        self._still_bound = still_bound
        self._cancelled = cancelled  # job_id -> was its cancel asked? (Redis)
        self._test_timeout_s = test_timeout_s
        self._cancel_poll_s = cancel_poll_s
        self._monotonic = monotonic
        self._now = now

    def run(self, batch: Batch) -> BatchFinished | None:
        """Run the batch; None when it is not this instance's to run (nothing reported)."""
        if batch.instance_id and batch.instance_id != self._status.instance_id:
            log.warning(
                "batch_id=%s was bound to instance %s of agent %s, not to this one (%s): not run",
                batch.batch_id,
                batch.instance_id,
                self._status.agent_id,
                self._status.instance_id,
            )
            return None
        log.info(
            "batch_id=%s agent_id=%s: starting, app version %s, job_ids=%s",
            batch.batch_id,
            self._status.agent_id,
            batch.app_version_id,
            _job_ids(job.job_id for job in batch.jobs),
        )
        self._status.begin_batch(batch.batch_id)
        reported: dict[str, JobReport] = {}  # jobs whose job.finished is in the outbox
        try:
            self._run_jobs(batch, reported)
        except BaseException as exc:
            self._end(batch.batch_id, reported)  # an aborted batch still says what it reported
            log.error(
                "batch_id=%s: aborted (%s: %s); job_ids not reported: %s",
                batch.batch_id,
                type(exc).__name__,
                exc,
                _job_ids(job.job_id for job in batch.jobs if job.job_id not in reported),
            )
            raise
        finished = self._end(batch.batch_id, reported)
        log.info(
            "batch_id=%s: finished, agent %s (%d jobs run so far)",
            batch.batch_id,
            finished["state"].value,
            finished["jobs_run"],
        )
        return finished

    def _end(self, batch_id: str, reported: dict[str, JobReport]) -> BatchFinished:
        with self._status.reporting:  # see AgentStatus: no heartbeat overtakes this event
            finished = self._status.end_batch(batch_id, reported)
            self._reports.put(make_event(EventType.BATCH_FINISHED, finished))
        return finished

    def refuse(self, batch_id: str | None, error: Exception) -> None:
        """A batch too malformed to run: none of its jobs runs, but it still ends here."""
        log.error("batch_id=%s: malformed, not run: %r", batch_id, error)
        if batch_id is not None:
            self._status.end_batch(batch_id)

    def _bound(self, batch: Batch) -> bool:
        """Does the scheduler still hold this batch bound to the agent? (logged when not)"""
        if self._still_bound(batch.batch_id):
            return True
        log.warning(
            "batch_id=%s agent_id=%s: no longer bound to this agent (requeued by the "
            "scheduler): the rest of it is not run",
            batch.batch_id,
            self._status.agent_id,
        )
        return False

    def _run_jobs(self, batch: Batch, reported: dict[str, JobReport]) -> None:
        if not self._bound(batch):
            return
        install = self._install(batch)
        paid_reported = False  # the install is reported on the first job that runs
        for index, job in enumerate(batch.jobs):
            if index > 0 and install.error is None and not self._bound(batch):
                return
            if install.error is not None:
                failed = RunOutcome(JobStatus.ERROR, 0.0, install.error, ErrorReason.INSTALL_FAILED)
                self._finish(
                    batch, job, failed, reported, started_at=None, install_paid=False, install_s=0.0
                )
                continue
            if self._cancelled(job.job_id):
                skipped = RunOutcome(
                    JobStatus.CANCELLED,
                    0.0,
                    "[qgjob] not started: its job was cancelled",
                    ErrorReason.CANCELLED,
                )
                self._finish(
                    batch,
                    job,
                    skipped,
                    reported,
                    started_at=None,
                    install_paid=False,
                    install_s=0.0,
                )
                continue
            pays_install = install.paid and not paid_reported
            paid_reported = paid_reported or pays_install
            started_at = self._now()
            self._reports.put(
                make_event(
                    EventType.JOB_STARTED,
                    JobStarted(
                        job_id=job.job_id,
                        batch_id=batch.batch_id,
                        agent_id=self._status.agent_id,
                        started_at=started_at,
                    ),
                )
            )
            outcome = self._run_test(batch, job)
            self._finish(
                batch,
                job,
                outcome,
                reported,
                started_at=started_at,
                install_paid=pays_install,
                install_s=install.seconds if pays_install else 0.0,
            )

    def _install(self, batch: Batch) -> _Install:
        version = batch.app_version_id
        build = (batch.org_id, version)
        if self._status.installed == build and not batch.force_install:
            log.info(
                "batch_id=%s: build %s/%s already installed", batch.batch_id, batch.org_id, version
            )
            return _Install(paid=False, seconds=0.0)
        started = self._monotonic()
        try:
            attempt = min((job.attempt for job in batch.jobs), default=1)
            self._driver.install(version, self._status.target, attempt=attempt)
        except InstallError as exc:
            error = str(exc)
            log.error(
                "batch_id=%s: installing app version %s failed: %s", batch.batch_id, version, exc
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("batch_id=%s: installing app version %s crashed", batch.batch_id, version)
        else:
            seconds = self._monotonic() - started
            self._status.record_install(build)
            log.info(
                "batch_id=%s: installed app version %s in %.2f s", batch.batch_id, version, seconds
            )
            return _Install(paid=True, seconds=seconds)
        self._status.record_install(None)
        return _Install(paid=False, seconds=0.0, error=error)

    def _run_test(self, batch: Batch, job: BatchJob) -> RunOutcome:
        run = JobRun(
            job_id=job.job_id,
            org_id=job.org_id,
            test_path=job.test_path,
            app_version_id=batch.app_version_id,
            target=self._status.target,
            attempt=job.attempt,
        )
        stop = Stop(
            job.timeout_s if job.timeout_s else self._test_timeout_s,
            cancelled=lambda: self._cancelled(job.job_id),
            poll_s=self._cancel_poll_s,
            monotonic=self._monotonic,
        )
        started = self._monotonic()
        try:
            outcome = self._driver.run_test(run, stop)
            if outcome.status is JobStatus.CANCELLED and outcome.reason is None:
                outcome = RunOutcome(
                    outcome.status, outcome.duration_s, outcome.log_tail, ErrorReason.CANCELLED
                )
            return outcome
        except Exception as exc:
            log.exception(
                "job_id=%s batch_id=%s: driver %s crashed",
                job.job_id,
                batch.batch_id,
                self._driver.name,
            )
            return RunOutcome(
                JobStatus.ERROR,
                self._monotonic() - started,
                f"driver error: {type(exc).__name__}: {exc}",
                ErrorReason.DRIVER_ERROR,
            )

    def _finish(
        self,
        batch: Batch,
        job: BatchJob,
        outcome: RunOutcome,
        reported: dict[str, JobReport],
        *,
        started_at: str | None,
        install_paid: bool = False,
        install_s: float = 0.0,
    ) -> None:
        result = JobResult(
            outcome=outcome.status,
            duration_s=round(outcome.duration_s, 3),
            install_paid=install_paid,
            install_s=round(install_s, 3),
            log_tail=outcome.log_tail,
            driver=self._driver.name,
            simulated=self._driver.simulated,
        )
        if outcome.reason is not None:
            result["reason"] = outcome.reason.value
        self._status.record_job_finished()
        finished_at = self._now()
        self._reports.put(
            make_event(
                EventType.JOB_FINISHED,
                JobFinished(
                    job_id=job.job_id,
                    batch_id=batch.batch_id,
                    agent_id=self._status.agent_id,
                    finished_at=finished_at,
                    result=result,
                ),
            )
        )
        reported[job.job_id] = JobReport(
            started_at=started_at, finished_at=finished_at, result=result
        )
        log.info(
            "job_id=%s batch_id=%s: %s in %.2f s%s",
            job.job_id,
            batch.batch_id,
            outcome.status.value,
            outcome.duration_s,
            f" ({outcome.reason.value})" if outcome.reason else "",
        )


def _job_ids(job_ids: Iterable[str]) -> str:
    """Job ids as the scheduler logs them: comma-separated; `none` for none."""
    return ",".join(job_ids) or "none"
