"""Redis access for job and agent records. Every function takes the client as an argument.

Redis errors propagate as `redis.RedisError`; callers decide what they mean.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.typing import EncodableT, FieldT

from qgjob_api.redis_text import text
from qgjob_api.run_record import Run
from qgjob_contract import leases
from qgjob_contract.events import timestamp_ms
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Job, is_alive

# Index entries read per round trip while listing.
SCAN_CHUNK = 200
# Index entries one listing request examines at most: a filter that matches little returns
# a short (even empty) page with a next_cursor rather than reading every record.
SCAN_BUDGET = 5000


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first job listing: the last job a page returned.

    Clients see it as an opaque string; it stays valid while new jobs arrive.
    """

    score: int
    job_id: str

    def encode(self) -> str:
        raw = f"{self.score}:{self.job_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: object) -> Cursor:
        """Parse an encoded cursor; raise ValueError for anything else."""
        if not isinstance(value, str):
            raise ValueError("not a cursor")
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        score, sep, job_id = raw.partition(":")
        if not sep or not job_id:
            raise ValueError("not a cursor")
        return cls(int(score), job_id)

    def precedes(self, other: Cursor) -> bool:
        """True when `other` comes after this position in newest-first order."""
        return (other.score, other.job_id) < (self.score, self.job_id)


@dataclass(frozen=True)
class JobFilter:
    """Listing filters; None matches anything."""

    org_id: str | None = None
    app_version_id: str | None = None
    status: str | None = None
    target: str | None = None

    def matches(self, job: Job) -> bool:
        return all(
            wanted is None or wanted == actual
            for wanted, actual in (
                (self.org_id, job.org_id),
                (self.app_version_id, job.app_version_id),
                (self.status, job.status),
                (self.target, job.target),
            )
        )


def create_jobs(client: redis.Redis, jobs: Sequence[Job], run: Run | None = None) -> None:
    """Store every record and index it, atomically (one MULTI for the whole request).

    A run's record and index entry, when given, are written in the same MULTI.
    """
    pipe = client.pipeline(transaction=True)
    for job in jobs:
        pipe.hset(Keys.job(job.job_id), mapping=_mapping(job.to_redis()))
    pipe.zadd(Keys.JOBS_BY_TIME, {job.job_id: timestamp_ms(job.created_at) for job in jobs})
    if run is not None:
        pipe.hset(Keys.run(run.run_id), mapping=_mapping(run.to_redis()))
        pipe.zadd(Keys.RUNS_BY_TIME, {run.run_id: timestamp_ms(run.created_at)})
    pipe.execute()


def delete_jobs(client: redis.Redis, job_ids: Sequence[str], run_id: str | None = None) -> None:
    """Remove records written by create_jobs (the rollback of a refused submission)."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(*(Keys.job(job_id) for job_id in job_ids))
    pipe.zrem(Keys.JOBS_BY_TIME, *job_ids)
    if run_id is not None:
        pipe.delete(Keys.run(run_id))
        pipe.zrem(Keys.RUNS_BY_TIME, run_id)
    pipe.execute()


def _mapping(record: dict[str, str]) -> dict[FieldT, EncodableT]:
    """A record copied into redis-py's own key type: Mapping keys are invariant for mypy."""
    return {k: v for k, v in record.items()}


def get_job(client: redis.Redis, job_id: str) -> Job | None:
    raw = client.hgetall(Keys.job(job_id))
    return Job.from_redis(raw) if raw else None


def list_jobs(
    client: redis.Redis, filters: JobFilter, *, limit: int, cursor: Cursor | None
) -> tuple[list[Job], Cursor | None]:
    """Jobs matching `filters`, newest first, after `cursor`.

    Returns up to `limit` jobs and the cursor of the next page (None when the listing is
    exhausted). A page can be shorter than `limit`, even empty, while more jobs remain
    (see SCAN_BUDGET): follow next_cursor until it is None.
    """
    found: list[Job] = []
    position = cursor
    skip = examined = 0
    while examined < SCAN_BUDGET:
        entries = client.zrevrangebyscore(
            Keys.JOBS_BY_TIME,
            "+inf" if position is None else position.score,
            "-inf",
            start=skip,
            num=SCAN_CHUNK,
            withscores=True,
        )
        if not entries:
            return found, None
        fresh = [Cursor(int(score), text(member)) for member, score in _with_scores(entries)]
        if position is not None:
            fresh = [entry for entry in fresh if position.precedes(entry)]
        if not fresh:  # a run of jobs created in the same ms as `position`, already seen
            skip += len(entries)
            continue
        skip = 0
        pipe = client.pipeline(transaction=False)
        for entry in fresh:
            pipe.hgetall(Keys.job(entry.job_id))
        for entry, raw in zip(fresh, pipe.execute(), strict=True):
            examined += 1
            position = entry
            if not raw:  # removed since it was indexed
                continue
            job = Job.from_redis(raw)
            if filters.matches(job):
                found.append(job)
                if len(found) == limit:
                    return found, position
    return found, position


def list_agents(client: redis.Redis, *, timeout_s: float) -> list[dict[str, Any]]:
    """Every known agent as the API shows it (Agent.to_api() plus `alive`), by agent_id.

    `alive` is the lease's: renewed within `timeout_s` on Redis TIME (the scheduler's rule).
    """
    agent_ids = sorted(text(member) for member in client.smembers(Keys.AGENTS))
    pipe = client.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hgetall(Keys.agent(agent_id))
    raws = pipe.execute()
    lease_of = leases.read(client, agent_ids)
    now_ms = leases.redis_now_ms(client)
    agents = []
    for raw in raws:
        if raw:
            agent = Agent.from_redis(raw)
            lease = lease_of.get(agent.agent_id)
            agents.append({**agent.to_api(), "alive": is_alive(lease, now_ms, timeout_s)})
    return agents


def _with_scores(entries: object) -> list[tuple[bytes | str, float]]:
    """A `withscores=True` range reply, typed."""
    return cast("list[tuple[bytes | str, float]]", entries)
