"""The retention sweep on a real Redis: finished jobs and their runs leave with their index
entries once the retention has passed; nothing else is touched; the state stays bounded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import redis

from qgjob_api import store
from qgjob_api.run_record import Run
from qgjob_contract.events import format_timestamp
from qgjob_contract.leases import redis_now_ms
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_scheduler.retention import Sweeper

RETENTION_S = 60


def _ago(redis_client: redis.Redis, seconds: float) -> str:
    now = datetime.fromtimestamp(redis_now_ms(redis_client) / 1000, UTC)
    return format_timestamp(now - timedelta(seconds=seconds))


def _jobs(
    redis_client: redis.Redis,
    count: int,
    *,
    created_s_ago: float,
    status: str = "queued",
    finished_s_ago: float | None = None,
    run_id: str | None = None,
) -> list[str]:
    """Jobs stored the way the API stores them, then moved to `status` as the scheduler does."""
    created = _ago(redis_client, created_s_ago)
    jobs = [
        Job(str(uuid.uuid4()), "org", "v1", f"t{i}.js", 1, "emulator", created, run_id=run_id)
        for i in range(count)
    ]
    store.create_jobs(redis_client, jobs)
    for job in jobs:
        fields = {"status": status}
        if finished_s_ago is not None:
            fields["finished_at"] = _ago(redis_client, finished_s_ago)
        redis_client.hset(Keys.job(job.job_id), mapping=fields)
    return [job.job_id for job in jobs]


def _run(redis_client: redis.Redis, job_ids: list[str], *, created_s_ago: float) -> str:
    run_id = str(uuid.uuid4())
    created = _ago(redis_client, created_s_ago)
    run = Run(run_id, "org", "v1", ["emulator"], ["t.js"], 1, created, job_ids)
    pipe = redis_client.pipeline()
    pipe.hset(Keys.run(run_id), mapping=dict(run.to_redis()))
    pipe.zadd(Keys.RUNS_BY_TIME, {run_id: redis_now_ms(redis_client) - created_s_ago * 1000})
    pipe.execute()
    return run_id


def _indexed(redis_client: redis.Redis) -> set[str]:
    return set(redis_client.zrange(Keys.JOBS_BY_TIME, 0, -1))


def test_finished_jobs_past_the_retention_go_with_their_index_entries(
    redis_client: redis.Redis,
) -> None:
    expired = _jobs(redis_client, 3, created_s_ago=300, status="passed", finished_s_ago=200)
    recent = _jobs(redis_client, 2, created_s_ago=300, status="failed", finished_s_ago=10)
    running = _jobs(redis_client, 2, created_s_ago=300, status="running")
    young = _jobs(redis_client, 1, created_s_ago=5, status="cancelled", finished_s_ago=1)
    redis_client.zadd(Keys.JOBS_BY_TIME, {"orphan": 1})  # an entry whose record is gone

    deleted, _ = Sweeper(redis_client, retention_s=RETENTION_S).tick()

    assert deleted == 3
    assert _indexed(redis_client) == set(recent + running + young)
    for job_id in expired:
        assert not redis_client.exists(Keys.job(job_id))
    for job_id in recent + running + young:
        assert redis_client.hget(Keys.job(job_id), "job_id") == job_id


def test_a_run_goes_once_all_its_jobs_are_gone(redis_client: redis.Redis) -> None:
    done = _jobs(redis_client, 2, created_s_ago=300, status="passed", finished_s_ago=200)
    done_run = _run(redis_client, done, created_s_ago=300)
    left = _jobs(redis_client, 1, created_s_ago=300, status="passed", finished_s_ago=200)
    left += _jobs(redis_client, 1, created_s_ago=300, status="running")
    open_run = _run(redis_client, left, created_s_ago=300)
    sweeper = Sweeper(redis_client, retention_s=RETENTION_S)

    sweeper.tick()  # the jobs go first; the run whose jobs are all gone goes in that tick
    sweeper.tick()

    assert not redis_client.exists(Keys.run(done_run))
    assert redis_client.exists(Keys.run(open_run))
    assert redis_client.zrange(Keys.RUNS_BY_TIME, 0, -1) == [open_run]


def test_entries_kept_at_the_head_do_not_stall_the_sweep(redis_client: redis.Redis) -> None:
    _jobs(redis_client, 12, created_s_ago=400, status="queued")  # the oldest never end
    expired = _jobs(redis_client, 7, created_s_ago=300, status="error", finished_s_ago=200)
    sweeper = Sweeper(redis_client, retention_s=RETENTION_S, jobs_per_tick=5)

    total = sum(sweeper.tick()[0] for _ in range(6))

    assert total == len(expired)
    assert len(_indexed(redis_client)) == 12


def test_state_stays_bounded_however_many_jobs_pass(redis_client: redis.Redis) -> None:
    sweeper = Sweeper(redis_client, retention_s=RETENTION_S)
    sizes = []
    for _ in range(5):
        ids = _jobs(redis_client, 200, created_s_ago=300, status="passed", finished_s_ago=200)
        _run(redis_client, ids, created_s_ago=300)
        sweeper.tick()
        sweeper.tick()
        sizes.append(redis_client.dbsize())
    assert sizes == [0] * 5


def test_nothing_old_enough_is_a_cheap_no_op(redis_client: redis.Redis) -> None:
    ids = _jobs(redis_client, 3, created_s_ago=1, status="passed", finished_s_ago=1)
    assert Sweeper(redis_client, retention_s=RETENTION_S).tick() == (0, 0)
    assert _indexed(redis_client) == set(ids)
