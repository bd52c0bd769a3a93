"""Redis stopped and started while the scheduler applies a real agent fleet's events (a Redis of
this module's own, append-only, on a fixed host port so the restart keeps its address): the
handlers' transactions and scripts fail for real, the consumer returns the events and resumes
in order once Redis is back; no final status is lost or reverted (issue 10 item 5)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from testcontainers.community.redis import RedisContainer

from qgjob_contract.events import utc_now
from qgjob_contract.names import Keys
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.targets import Target
from qgjob_scheduler.dispatch import enqueue_batch
from tests.integration.conftest import REDIS_IMAGE, free_port
from tests.integration.scheduler.conftest import (
    ORG,
    World,
    running_scheduler,
    scheduler_config,
    wait_until,
)

from .conftest import (
    FINAL_LINE,
    REPORT_GRACE_S,
    TICK_S,
    Agents,
    FinalWatch,
    count_final,
    expected_status,
    paths,
    purge_queues,
    submit,
    wait_final,
)

REQUESTS = 8
PER_REQUEST = 5
# Long enough that the outage (a few seconds) cannot make a busy agent look lost: this test is
# about the handlers, not leases.
LEASE_TIMEOUT_S = 60.0
# How long Redis stays down after the agent ended its batch.
OUTAGE_AFTER_BATCH_S = 10.0


@dataclass(frozen=True)
class OwnRedis:
    container: Any
    url: str

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, **options)

    def reachable(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.container.get_wrapped_container().stop()

    def start(self) -> None:
        self.container.get_wrapped_container().start()
        wait_until(self.reachable, "Redis answering again", timeout=30)


@pytest.fixture(scope="module")
def own_redis() -> Iterator[OwnRedis]:
    port = free_port()
    container = (
        RedisContainer(REDIS_IMAGE)
        .with_command("redis-server --appendonly yes --appendfsync everysec")
        .with_bind_ports(6379, port)
    )
    with container:
        yield OwnRedis(container, f"redis://{container.get_container_host_ip()}:{port}/0")


def test_redis_restart_while_events_are_applied_loses_and_reverts_nothing(
    own_redis: OwnRedis,
    rabbitmq_url: str,
    tmp_path: Path,
    health_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qgjob_scheduler")
    purge_queues(rabbitmq_url)
    store = own_redis.client(decode_responses=True)
    store.flushdb()
    rq_store = own_redis.client()
    watch_store = own_redis.client(decode_responses=True)
    world = World(store, rq_store, rabbitmq_url)
    fleet = Agents(own_redis.url, rabbitmq_url, tmp_path)
    config = dataclasses.replace(
        scheduler_config(own_redis.url, rabbitmq_url, health_file),
        batch_max_jobs=PER_REQUEST,
        agent_timeout_s=LEASE_TIMEOUT_S,
        tick_s=TICK_S,
        report_grace_s=REPORT_GRACE_S,
    )
    try:
        # An agent that exits is restarted as compose restarts it (see the next test).
        with (
            running_scheduler(world, config),
            FinalWatch(watch_store, []) as watch,
            fleet.supervised() as restarted,
        ):
            fleet.start(SIM_TEST_SECONDS="0.1")
            fleet.start(SIM_TEST_SECONDS="0.1")
            job_ids: list[str] = []
            for request in range(REQUESTS):
                job_ids += submit(world, f"v{request % 2}", paths(PER_REQUEST, every_fail=3))
            watch.add(job_ids)
            wait_until(lambda: count_final(store, job_ids) >= PER_REQUEST, "reports applied")
            final_before = dict(watch.first)

            stopping = threading.Thread(target=own_redis.stop)
            stopping.start()
            # Events keep coming from the agents: the handlers fail on them for real.
            wait_until(
                lambda: any("Redis failed handling" in r.getMessage() for r in caplog.records),
                "a handler failing on the stopped Redis",
                timeout=30,
            )
            stopping.join(30)
            assert not own_redis.reachable()
            own_redis.start()

            jobs = wait_final(store, job_ids, "every job final after the restart", timeout=90)
            world.sync()
    finally:
        fleet.stop_all()
        world.close()
        watch_store.close()
        rq_store.close()

    assert count_final(store, job_ids) == len(job_ids)
    # Nothing final before the stop was lost (AOF) or changed afterwards.
    assert {j: watch.first[j] for j in final_before} == final_before
    assert watch.changes == []
    wrong = {j.job_id: j.status for j in jobs.values() if j.status != expected_status(j.test_path)}
    assert wrong == {}
    # A job runs again only if its agent died (restarted by the supervisor) with it unfinished.
    rerun = {j.job_id: j.history for j in jobs.values() if j.attempts != 1 or len(j.history) != 1}
    assert not rerun or restarted, rerun
    applied = Counter(m[1] for r in caplog.records for m in FINAL_LINE.finditer(r.getMessage()))
    assert {j: applied[j] for j in job_ids} == dict.fromkeys(job_ids, 1)
    store.close()


def test_agent_process_survives_a_redis_restart_at_the_end_of_a_batch(
    own_redis: OwnRedis, rabbitmq_url: str, tmp_path: Path
) -> None:
    purge_queues(rabbitmq_url)
    fleet = Agents(own_redis.url, rabbitmq_url, tmp_path)
    try:
        agent = fleet.start(SIM_TEST_SECONDS="0.4")
        with own_redis.client() as rq_store:
            wait_until(agent.health_file.exists, "the agent renewing its lease")
            batch = Batch(
                str(uuid.uuid4()),
                agent.agent_id,
                Target.EMULATOR.value,
                "v1",
                utc_now(),
                [BatchJob(f"job-{i}", ORG, f"tests/ok-{i}.spec.js", 1) for i in range(5)],
                org_id=ORG,
            )
            enqueue_batch(rq_store, batch)  # the scheduler's own enqueue
            wait_until(lambda: f"batch_id={batch.batch_id}" in agent.log(), "the batch running")
        own_redis.stop()  # the batch ends while Redis is away
        wait_until(
            lambda: f"batch_id={batch.batch_id}: finished" in agent.log(),
            "the batch finished, Redis down",
            timeout=30,
        )
        # Redis stays away a while (a restart takes seconds): the agent must wait for it.
        deadline = time.monotonic() + OUTAGE_AFTER_BATCH_S
        while agent.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        own_redis.start()
        wait_until(lambda: "lease not renewed" in agent.log(), "a failed renewal logged")
        with own_redis.client(decode_responses=True) as store:
            wait_until(
                lambda: (
                    store.exists(Keys.lease(agent.agent_id)) or agent.process.poll() is not None
                ),
                "the lease renewed after the restart (or the agent gone)",
                timeout=30,
            )
        assert agent.process.poll() is None, f"the agent exited:\n{agent.log()[-2000:]}"
    finally:
        fleet.stop_all()
