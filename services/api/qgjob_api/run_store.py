"""Redis reads for runs. Every read of many records is pipelined: a run of any size (up to
API_MAX_JOBS_PER_REQUEST jobs) is answered in a few round trips, not one per job.

Runs are written with their jobs by store.create_jobs (one MULTI). Redis errors propagate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis

from qgjob_api.redis_text import text
from qgjob_api.run_record import Run
from qgjob_api.store import SCAN_BUDGET, SCAN_CHUNK, Cursor
from qgjob_contract.names import Keys
from qgjob_contract.records import Job

# Commands sent in one pipeline round trip: bounds the memory of one reply.
PIPELINE_CHUNK = 500
# A listed run costs one status read per job (its counts): a page stops once its runs hold
# this many jobs (it always holds at least one run), with next_cursor set.
LIST_JOB_BUDGET = 10_000


def get_run(client: redis.Redis, run_id: str) -> Run | None:
    raw = client.hgetall(Keys.run(run_id))
    return Run.from_redis(raw) if raw else None


def get_jobs(client: redis.Redis, job_ids: Sequence[str]) -> list[Job | None]:
    """The records of `job_ids`, in order; None for an id with no record."""
    found: list[Job | None] = []
    for start in range(0, len(job_ids), PIPELINE_CHUNK):
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids[start : start + PIPELINE_CHUNK]:
            pipe.hgetall(Keys.job(job_id))
        found += [Job.from_redis(raw) if raw else None for raw in pipe.execute()]
    return found


def run_jobs(client: redis.Redis, run: Run) -> list[Job]:
    """The run's jobs that still have a record, in run order."""
    return [job for job in get_jobs(client, run.job_ids) if job is not None]


def statuses(client: redis.Redis, runs: Sequence[Run]) -> list[list[str]]:
    """Each run's job statuses (only the `status` field is read), run by run."""
    keys = [(index, Keys.job(job_id)) for index, run in enumerate(runs) for job_id in run.job_ids]
    found: list[list[str]] = [[] for _ in runs]
    for start in range(0, len(keys), PIPELINE_CHUNK):
        chunk = keys[start : start + PIPELINE_CHUNK]
        pipe = client.pipeline(transaction=False)
        for _, key in chunk:
            pipe.hget(key, "status")
        for (index, _), status in zip(chunk, pipe.execute(), strict=True):
            if status:
                found[index].append(text(status))
    return found


def list_runs(
    client: redis.Redis, *, org_id: str | None, limit: int, cursor: Cursor | None
) -> tuple[list[Run], Cursor | None]:
    """Runs of `org_id` (any when None), newest first, after `cursor`.

    Like store.list_jobs: at most SCAN_BUDGET index entries are examined per call, and a
    page ends early once its runs hold LIST_JOB_BUDGET jobs, so a page can be short while
    the returned cursor is set; follow it until it is None.
    """
    found: list[Run] = []
    jobs = 0
    position = cursor
    skip = examined = 0
    while examined < SCAN_BUDGET:
        entries = cast(
            "list[tuple[bytes | str, float]]",
            client.zrevrangebyscore(
                Keys.RUNS_BY_TIME,
                "+inf" if position is None else position.score,
                "-inf",
                start=skip,
                num=SCAN_CHUNK,
                withscores=True,
            ),
        )
        if not entries:
            return found, None
        fresh = [Cursor(int(score), text(member)) for member, score in entries]
        if position is not None:
            fresh = [entry for entry in fresh if position.precedes(entry)]
        if not fresh:  # runs created in the same ms as `position`, already seen
            skip += len(entries)
            continue
        skip = 0
        pipe = client.pipeline(transaction=False)
        for entry in fresh:
            pipe.hgetall(Keys.run(entry.job_id))
        for entry, raw in zip(fresh, pipe.execute(), strict=True):
            examined += 1
            position = entry
            if not raw:
                continue
            run = Run.from_redis(raw)
            if org_id is None or run.org_id == org_id:
                found.append(run)
                jobs += len(run.job_ids)
                if len(found) == limit or jobs >= LIST_JOB_BUDGET:
                    return found, position
    return found, position
