"""Runs one batch: install its app version once (unless already there), then each test.

Events, in order: for each job `job.started` then `job.finished`, then `batch.finished`.
When the install fails no test runs: every job gets only `job.finished` (error,
install_failed). A driver that crashes on a test ends that job `error` (driver_error) and
the batch goes on. A publish the broker never confirms aborts the batch (PublishError).

However a batch ends, finished or aborted, the agent is idle afterwards and its heartbeats
name the batch as `last_batch_id`: the scheduler ends the jobs it was never told about.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qgjob_agent.drivers.base import Driver, JobRun, RunOutcome
from qgjob_agent.errors import InstallError
from qgjob_agent.publisher import EventPublisher
from qgjob_agent.status import AgentStatus
from qgjob_contract.events import (
    BatchFinished,
    EventType,
    JobFinished,
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


class BatchRunner:
    def __init__(
        self,
        driver: Driver,
        publisher: EventPublisher,
        status: AgentStatus,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self._driver = driver
        self._publisher = publisher
        self._status = status
        self._monotonic = monotonic
        self._now = now

    def run(self, batch: Batch) -> BatchFinished:
        log.info(
            "batch_id=%s agent_id=%s: starting, app version %s, job_ids=%s",
            batch.batch_id,
            self._status.agent_id,
            batch.app_version_id,
            _job_ids(job.job_id for job in batch.jobs),
        )
        self._status.begin_batch(batch.batch_id)
        reported: set[str] = set()  # jobs whose job.finished the broker confirmed
        try:
            self._run_jobs(batch, reported)
            with self._status.reporting:  # see AgentStatus: no heartbeat overtakes this event
                finished = self._status.end_batch(batch.batch_id)
                self._publisher.publish(make_event(EventType.BATCH_FINISHED, finished))
        except BaseException as exc:
            self._status.end_batch(batch.batch_id)
            log.error(
                "batch_id=%s: aborted (%s: %s); job_ids not reported: %s",
                batch.batch_id,
                type(exc).__name__,
                exc,
                _job_ids(job.job_id for job in batch.jobs if job.job_id not in reported),
            )
            raise
        log.info(
            "batch_id=%s: finished, agent %s (%d jobs run so far)",
            batch.batch_id,
            finished["state"].value,
            finished["jobs_run"],
        )
        return finished

    def refuse(self, batch_id: str | None, error: Exception) -> None:
        """A batch too malformed to run: none of its jobs runs, but it still ends here."""
        log.error("batch_id=%s: malformed, not run: %r", batch_id, error)
        if batch_id is not None:
            self._status.end_batch(batch_id)

    def _run_jobs(self, batch: Batch, reported: set[str]) -> None:
        install = self._install(batch)
        for index, job in enumerate(batch.jobs):
            if install.error is not None:
                failed = RunOutcome(JobStatus.ERROR, 0.0, install.error, ErrorReason.INSTALL_FAILED)
                self._finish(batch, job, failed, reported, install_paid=False, install_s=0.0)
                continue
            pays_install = install.paid and index == 0
            self._publisher.publish(
                make_event(
                    EventType.JOB_STARTED,
                    JobStarted(
                        job_id=job.job_id,
                        batch_id=batch.batch_id,
                        agent_id=self._status.agent_id,
                        started_at=self._now(),
                    ),
                )
            )
            outcome = self._run_test(batch, job)
            self._finish(
                batch,
                job,
                outcome,
                reported,
                install_paid=pays_install,
                install_s=install.seconds if pays_install else 0.0,
            )

    def _install(self, batch: Batch) -> _Install:
        version = batch.app_version_id
        if self._status.installed_app_version == version:
            log.info("batch_id=%s: app version %s already installed", batch.batch_id, version)
            return _Install(paid=False, seconds=0.0)
        started = self._monotonic()
        try:
            self._driver.install(version, self._status.target)
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
            self._status.record_install(version)
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
        )
        started = self._monotonic()
        try:
            return self._driver.run_test(run)
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
        reported: set[str],
        *,
        install_paid: bool,
        install_s: float,
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
        self._publisher.publish(
            make_event(
                EventType.JOB_FINISHED,
                JobFinished(
                    job_id=job.job_id,
                    batch_id=batch.batch_id,
                    agent_id=self._status.agent_id,
                    finished_at=self._now(),
                    result=result,
                ),
            )
        )
        reported.add(job.job_id)
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
