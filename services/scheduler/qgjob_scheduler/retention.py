"""Bounded state: finished jobs and their runs leave Redis JOB_RETENTION_S after they end.

Called once per scheduler tick (`Sweeper.tick`). What grows with the number of jobs ever run,
and how each is bounded:

- job records `qgjob:job:{id}` and the listing index `qgjob:jobs`: a job that is final and
  ended (its `finished_at`, else its creation) at least the retention ago is deleted, and
  its index entry with it; an index entry whose record is gone is dropped too;
- run records `qgjob:run:{id}` (which hold the run's membership, its job ids) and the
  index `qgjob:runs`: a run created at least the retention ago whose jobs are all gone;
- batches' RQ jobs and results: enqueued with result_ttl/failure_ttl = the retention
  (`main.py` passes them to the dispatcher); batch hashes are removed when the batch ends;
- idempotency keys: a TTL of min(24 h, retention), set by the API.

Work per tick is bounded (at most SWEEP_JOBS index entries and SWEEP_RUNS runs are read):
the sweep walks the index from the oldest entry, keeping an offset past the entries it had
to keep (jobs still running, or ended recently), and starts again from the oldest once it
reaches the cutoff. Deleting a final job is safe without a transaction: a final status is
never left, so nothing can make the record we read final stop being so. Several scheduler
replicas may sweep at once (DEL and ZREM are idempotent). The decisions are pure functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, cast

from redis import Redis

from qgjob_contract import leases
from qgjob_contract.events import timestamp_ms
from qgjob_contract.names import Keys
from qgjob_contract.statuses import is_final

log = logging.getLogger(__name__)

# Index entries (jobs) and runs read at most per tick.
SWEEP_JOBS: Final = 1000
SWEEP_RUNS: Final = 50


@dataclass(frozen=True)
class JobState:
    """What the sweep reads of one index entry: its record's status and times (None: the
    record is gone)."""

    job_id: str
    status: str | None
    created_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class JobVerdict:
    delete: list[str]  # final and ended before the cutoff: record and index entry go
    orphans: list[str]  # index entries with no record: the entry goes
    kept: int  # entries that stay (not final, or ended after the cutoff)


def ended_ms(job: JobState) -> int | None:
    """When the job ended (its finish, else its creation; ms), None if not final (pure)."""
    if job.status is None or not is_final(job.status):
        return None
    moment = job.finished_at or job.created_at
    if not moment:
        return None
    try:
        return timestamp_ms(moment)
    except ValueError:
        return None


def judge_jobs(jobs: Sequence[JobState], cutoff_ms: int) -> JobVerdict:
    """Which index entries go, given the cutoff (now - retention) on Redis TIME (pure).

    A final job whose end time cannot be read goes too (it was created before the cutoff,
    or it would not have been read).
    """
    delete: list[str] = []
    orphans: list[str] = []
    kept = 0
    for job in jobs:
        if job.status is None:
            orphans.append(job.job_id)
        elif not is_final(job.status):
            kept += 1
        else:
            ended = ended_ms(job)
            if ended is None or ended <= cutoff_ms:
                delete.append(job.job_id)
            else:
                kept += 1
    return JobVerdict(delete=delete, orphans=orphans, kept=kept)


def run_expired(jobs_left: int) -> bool:
    """A run (created before the cutoff) goes once none of its jobs has a record (pure)."""
    return jobs_left == 0


def next_offset(offset: int, read: int, kept: int, limit: int) -> int:
    """Where the next sweep of an index starts: past the entries kept, or back at the oldest
    once this one read fewer than `limit` (it reached the cutoff) (pure)."""
    return 0 if read < limit else offset + kept


class Sweeper:
    """Deletes expired jobs and runs, a bounded slice per tick."""

    def __init__(
        self,
        store: Redis,
        *,
        retention_s: float,
        jobs_per_tick: int = SWEEP_JOBS,
        runs_per_tick: int = SWEEP_RUNS,
    ) -> None:
        self._store = store
        self._retention_ms = int(retention_s * 1000)
        self._jobs_per_tick = jobs_per_tick
        self._runs_per_tick = runs_per_tick
        self._job_offset = 0
        self._run_offset = 0

    def tick(self) -> tuple[int, int]:
        """One slice; returns (jobs deleted, runs deleted). Redis errors propagate."""
        cutoff_ms = leases.redis_now_ms(self._store) - self._retention_ms
        jobs = self._sweep_jobs(cutoff_ms)
        runs = self._sweep_runs(cutoff_ms)
        if jobs or runs:
            log.info("retention: %d finished job(s) and %d run(s) expired", jobs, runs)
        return jobs, runs

    def _sweep_jobs(self, cutoff_ms: int) -> int:
        ids = self._oldest(Keys.JOBS_BY_TIME, cutoff_ms, self._job_offset, self._jobs_per_tick)
        if not ids:
            self._job_offset = 0
            return 0
        pipe = self._store.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(Keys.job(job_id), ["status", "created_at", "finished_at"])
        states = [
            JobState(job_id, status or None, created or None, finished or None)
            for job_id, (status, created, finished) in zip(ids, pipe.execute(), strict=True)
        ]
        verdict = judge_jobs(states, cutoff_ms)
        gone = verdict.delete + verdict.orphans
        if gone:
            pipe = self._store.pipeline(transaction=False)
            if verdict.delete:
                pipe.delete(*(Keys.job(job_id) for job_id in verdict.delete))
            pipe.zrem(Keys.JOBS_BY_TIME, *gone)
            pipe.execute()
        self._job_offset = next_offset(
            self._job_offset, len(ids), verdict.kept, self._jobs_per_tick
        )
        return len(verdict.delete)

    def _sweep_runs(self, cutoff_ms: int) -> int:
        run_ids = self._oldest(Keys.RUNS_BY_TIME, cutoff_ms, self._run_offset, self._runs_per_tick)
        if not run_ids:
            self._run_offset = 0
            return 0
        pipe = self._store.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hget(Keys.run(run_id), "job_ids")
        memberships = [json.loads(raw) if raw else [] for raw in pipe.execute()]
        pipe = self._store.pipeline(transaction=False)
        for job_ids in memberships:
            if job_ids:  # EXISTS of many keys counts those that exist: one command per run
                pipe.exists(*(Keys.job(job_id) for job_id in job_ids))
        left = iter(pipe.execute())
        expired: list[str] = []
        kept = 0
        for run_id, job_ids in zip(run_ids, memberships, strict=True):
            if run_expired(int(next(left)) if job_ids else 0):
                expired.append(run_id)
            else:
                kept += 1
        if expired:
            pipe = self._store.pipeline(transaction=False)
            pipe.delete(*(Keys.run(run_id) for run_id in expired))
            pipe.zrem(Keys.RUNS_BY_TIME, *expired)
            pipe.execute()
        self._run_offset = next_offset(self._run_offset, len(run_ids), kept, self._runs_per_tick)
        return len(expired)

    def _oldest(self, index: str, cutoff_ms: int, offset: int, limit: int) -> list[str]:
        """Members of `index` scored at or before the cutoff, oldest first, from `offset`."""
        members = cast(
            "list[str]",
            self._store.zrangebyscore(index, "-inf", cutoff_ms, start=offset, num=limit),
        )
        return list(members)
