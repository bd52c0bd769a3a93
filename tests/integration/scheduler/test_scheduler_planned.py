"""The scheduler planning with `qgjob_scheduler.planning` and the duration history, for real:
RabbitMQ, Redis, the consumer in a thread (see conftest)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from qgjob_contract.events import EventType, utc_now
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch
from qgjob_contract.statuses import JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler import history
from qgjob_scheduler.config import Config
from qgjob_scheduler.consumer import Consumer

from .conftest import BATCH_MAX, ORG, World, running_scheduler, scheduler_config, wait_until

pytestmark = pytest.mark.integration

TARGET = Target.EMULATOR.value


def _submit_paths(world: World, version: str, paths: list[str]) -> list[str]:
    """One request of jobs with these test paths (the same created_at, as the API does)."""
    created_at = world.next_time()
    jobs = []
    for path in paths:
        job = dataclasses.replace(world.store_job(version, created_at=created_at), test_path=path)
        world.redis.hset(f"qgjob:job:{job.job_id}", "test_path", path)
        jobs.append(job)
    world.publish_submitted(jobs)
    return [job.job_id for job in jobs]


def test_a_batch_runs_the_longest_known_tests_first(world: World, scheduler: Consumer) -> None:
    durations = {"tests/quick.js": 0.5, "tests/slow.js": 9.0}  # 3 jobs: one batch (BATCH_MAX)
    for path, seconds in durations.items():
        history.record_test(world.redis, ORG, TARGET, path, seconds, "passed")
    # the org's recent runs of any test: 0.5, 9.0 and five of 20 s: p80 = 20 s
    for _ in range(5):
        history.record_test(world.redis, ORG, TARGET, "tests/other.js", 20.0, "passed")
    job_ids = _submit_paths(world, "v1", [*durations, "tests/unseen.js"])
    world.sync()

    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    batch = Batch.from_json(rq_job.args[0])
    order = [job.test_path for job in batch.jobs]
    # unseen: the p80 of the org's recent runs (20 s), so first; the configured default
    # (1 s here) would have put it between slow and quick
    assert order == ["tests/unseen.js", "tests/slow.js", "tests/quick.js"]
    assert sorted(job.job_id for job in batch.jobs) == sorted(job_ids)
    assert batch.force_install is False


@pytest.mark.parametrize(("seen", "batch_size"), [(True, 40), (False, 5 * BATCH_MAX)])
def test_short_tests_fill_a_batch_and_tests_never_seen_only_up_to_5_x_batch_max(
    world: World, scheduler: Consumer, *, seen: bool, batch_size: int
) -> None:
    # 40 tests of 10 ms: 0.4 s of work, far under the 2 s fill. With their own history they
    # all go in one batch; never seen (estimated from the org's other 10 ms tests) at most
    # 5 x BATCH_MAX of them.
    paths = [f"tests/short{i}.js" for i in range(40)]
    for path in paths if seen else ["tests/elsewhere.js"] * 10:
        history.record_test(world.redis, ORG, TARGET, path, 0.01, "passed")
    _submit_paths(world, "v1", paths)
    world.sync()

    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    assert len(Batch.from_json(rq_job.args[0]).jobs) == batch_size


def test_finished_jobs_feed_the_duration_history(world: World, scheduler: Consumer) -> None:
    [passed, failed] = _submit_paths(world, "v1", ["tests/a.js", "tests/b.js"])
    world.heartbeat("emu-1")
    [rq_job] = world.wait_batches("emu-1", 1)
    batch = Batch.from_json(rq_job.args[0])
    for job_id, outcome, install_paid in ((passed, "passed", True), (failed, "failed", False)):
        world.publish(
            EventType.JOB_STARTED,
            {
                "job_id": job_id,
                "batch_id": batch.batch_id,
                "agent_id": "emu-1",
                "started_at": utc_now(),
            },
        )
        world.publish(
            EventType.JOB_FINISHED,
            {
                "job_id": job_id,
                "batch_id": batch.batch_id,
                "agent_id": "emu-1",
                "finished_at": utc_now(),
                "result": {
                    "outcome": outcome,
                    "duration_s": 4.0,
                    "install_paid": install_paid,
                    "install_s": 7.5 if install_paid else 0.0,
                    "log_tail": "",
                    "driver": "simulator",
                    "simulated": True,
                },
            },
        )
    wait_until(lambda: world.job(failed).status == JobStatus.FAILED, "the failed job")
    world.sync()
    # only the passing run counts for its test; the paid install counts for its build
    assert history.test_estimates(world.redis, ORG, TARGET, ["tests/a.js"], 99) == [4.0]
    assert world.redis.hget(Keys.test_history(ORG, TARGET), "tests/b.js") is None
    assert world.redis.get(Keys.test_history_recent(ORG, TARGET)) == "4.0"
    assert history.install_estimates(world.redis, ORG, TARGET, ["v1"], 99) == [7.5]


@pytest.fixture
def fifo_scheduler(
    world: World, redis_url: str, rabbitmq_url: str, health_file: Path
) -> Iterator[Consumer]:
    config: Config = dataclasses.replace(
        scheduler_config(redis_url, rabbitmq_url, health_file), policy="fifo"
    )
    with running_scheduler(world, config) as consumer:
        yield consumer


def test_fifo_sends_one_job_per_batch_and_asks_for_an_install(
    world: World, fifo_scheduler: Consumer
) -> None:
    job_ids = world.submit_suite("v1", 3)
    world.sync()
    world.heartbeat("emu-1", installed="v1")
    world.heartbeat("emu-2")
    batches = [
        Batch.from_json(rq_job.args[0])
        for agent in ("emu-1", "emu-2")
        for rq_job in world.wait_batches(agent, 1)
    ]
    assert [len(batch.jobs) for batch in batches] == [1, 1]
    assert all(batch.force_install for batch in batches)  # even on the warm agent
    # the first two jobs in arrival order; the third waits
    assert sorted(job.job_id for batch in batches for job in batch.jobs) == sorted(job_ids[:2])
    assert world.job(job_ids[2]).status == JobStatus.QUEUED
