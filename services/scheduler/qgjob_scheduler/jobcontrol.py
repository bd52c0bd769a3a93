"""Job control from the scheduler's side: cancels it applies, queue waits that expire.

- **Cancel** (`jobs.cancel_requested`, published by the API after it stamped the job's
  `cancel_requested_at`/`_by`): a queued job leaves its group and ends `cancelled` at once;
  an assigned one whose test has not started ends `cancelled` too (its agent skips a job
  whose cancel was asked, and its report, if any, changes nothing); a running one is left to
  its agent, which watches `cancel_requested_at` while the test runs, stops it and reports
  it `cancelled`. Whichever of the scheduler and the agent is first ends the job: the
  transitions never leave a final status, so a cancel racing a finish leaves one status.
- **Queue-wait expiry**: every job that joins its group gets a deadline in
  `Keys.QUEUE_EXPIRY` (its `queue_ttl_s`, else JOB_QUEUE_TTL_S, from when it joined its
  group, on Redis TIME, or from its return to the group after a retry); the tick ends the
  jobs still queued past it `error`/`expired`, so a suite for a target with no live agent
  ends instead of hanging. A batch that takes a job removes its deadline.

Both end a waiting job with one script, `lua/end_waiting.lua`.
"""

from __future__ import annotations

import json
import logging
from typing import Final, cast

from redis import Redis

from qgjob_contract import leases, names
from qgjob_contract.events import JobResult, utc_now
from qgjob_contract.lua import script
from qgjob_contract.names import Keys
from qgjob_contract.statuses import ErrorReason, JobStatus

log = logging.getLogger(__name__)

# Most expired jobs ended by one tick (the rest wait for the next one).
EXPIRE_PER_TICK: Final = 500


def _result(outcome: JobStatus, reason: str, log_tail: str) -> str:
    return json.dumps(
        JobResult(
            outcome=outcome,
            duration_s=0.0,
            install_paid=False,
            install_s=0.0,
            log_tail=log_tail,
            driver="",
            simulated=False,
            reason=reason,
        )
    )


class _Ender:
    def __init__(self, store: Redis) -> None:
        self._store = store
        self._end_waiting = store.register_script(script("qgjob_scheduler", "end_waiting"))

    def _end(
        self,
        job_id: str,
        final: JobStatus,
        result: str,
        *,
        expire: bool,
        requested_at: str = "",
        requested_by: str = "",
    ) -> str | None:
        raw = cast(
            list[str | None],
            self._store.hmget(Keys.job(job_id), ["target", "org_id", "app_version_id"]),
        )
        target, org_id, version = (value or "" for value in raw)
        found = self._end_waiting(
            keys=[
                Keys.job(job_id),
                Keys.group(target, org_id, version),
                Keys.groups(target),
                Keys.QUEUE_EXPIRY,
            ],
            args=[
                job_id,
                names.build(org_id, version),
                JobStatus.QUEUED.value,
                JobStatus.ASSIGNED.value,
                final.value,
                utc_now(),
                result,
                "1" if expire else "0",
                requested_at,
                requested_by,
            ],
        )
        return str(found) if found else None


class Canceller(_Ender):
    def cancel(self, job_id: str, requested_by: str, requested_at: str) -> str:
        """Apply a cancel to one job; says what it did (for the log)."""
        result = _result(
            JobStatus.CANCELLED,
            ErrorReason.CANCELLED.value,
            f"cancelled by {requested_by} at {requested_at} before its test started",
        )
        found = self._end(
            job_id,
            JobStatus.CANCELLED,
            result,
            expire=False,
            requested_at=requested_at,
            requested_by=requested_by,
        )
        if found is None:
            return "unknown job"
        if found in (JobStatus.QUEUED, JobStatus.ASSIGNED):
            return f"{found} -> cancelled"
        if found == JobStatus.RUNNING:
            return "running: its agent stops it"
        return f"already {found}: unchanged"


class Expirer(_Ender):
    """Ends the jobs whose queue wait expired (called from the scheduler's tick)."""

    def tick(self) -> list[str]:
        now_ms = leases.redis_now_ms(self._store)
        due = cast(
            list[str],
            self._store.zrangebyscore(Keys.QUEUE_EXPIRY, "-inf", now_ms, 0, EXPIRE_PER_TICK),
        )
        expired = []
        for job_id in due:
            result = _result(
                JobStatus.ERROR,
                ErrorReason.EXPIRED.value,
                "no agent took this job within its queue wait limit (queue_ttl_s, else "
                "JOB_QUEUE_TTL_S)",
            )
            if self._end(job_id, JobStatus.ERROR, result, expire=True) == JobStatus.QUEUED:
                expired.append(job_id)
                log.warning("job_id=%s -> error (expired): no agent took it in time", job_id)
        return expired
