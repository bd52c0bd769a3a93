"""RabbitMQ stopped and started mid-batch (a broker of this module's own, on a fixed host port so
the restarted broker keeps its address): the agent's outbox keeps its reports and delivers
them once the broker is back; each is applied once; nothing is dead-lettered."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
import redis
from testcontainers.community.rabbitmq import RabbitMqContainer

from qgjob_contract import deadletters, names
from qgjob_contract.statuses import JobStatus, is_final
from tests.integration.conftest import RABBITMQ_IMAGE, free_port
from tests.integration.scheduler.conftest import (
    World,
    running_scheduler,
    scheduler_config,
    wait_until,
)

from .conftest import (
    AGENT_TIMEOUT_S,
    FINAL_LINE,
    REPORT_GRACE_S,
    TICK_S,
    Agents,
    paths,
    read_jobs,
    submit,
    wait_final,
)

BATCH = 30
TEST_S = "0.5"  # the batch (15 s) outlasts the broker's graceful stop


@dataclass(frozen=True)
class OwnBroker:
    container: Any
    url: str

    def reachable(self) -> bool:
        try:
            pika.BlockingConnection(pika.URLParameters(self.url)).close()
        except pika.exceptions.AMQPError:
            return False
        return True

    def stop(self) -> None:
        self.container.get_wrapped_container().stop()

    def start(self) -> None:
        self.container.get_wrapped_container().start()
        wait_until(self.reachable, "the broker accepting connections again", timeout=60)

    def dead_letter_count(self) -> int:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            declared = connection.channel().queue_declare(names.DEAD_LETTER_QUEUE, passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def own_broker() -> Iterator[OwnBroker]:
    port = free_port()
    with RabbitMqContainer(RABBITMQ_IMAGE).with_bind_ports(5672, port) as container:
        host = container.get_container_host_ip()
        url = (
            f"amqp://guest:guest@{host}:{port}/%2F"
            "?heartbeat=10&connection_attempts=1&socket_timeout=2&blocked_connection_timeout=5"
        )
        yield OwnBroker(container, url)


def test_broker_restart_mid_batch_loses_no_report_and_applies_each_once(
    own_broker: OwnBroker,
    *,
    redis_url: str,
    redis_client: redis.Redis,
    rq_redis: redis.Redis,
    tmp_path: Path,
    health_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qgjob_scheduler")
    world = World(redis_client, rq_redis, own_broker.url)
    fleet = Agents(redis_url, own_broker.url, tmp_path)
    config = dataclasses.replace(
        scheduler_config(redis_url, own_broker.url, health_file),
        batch_max_jobs=BATCH,
        agent_timeout_s=AGENT_TIMEOUT_S,
        tick_s=TICK_S,
        report_grace_s=REPORT_GRACE_S,
    )
    try:
        with running_scheduler(world, config):
            agent = fleet.start(SIM_TEST_SECONDS=TEST_S)
            job_ids = submit(world, "v1", paths(BATCH, every_fail=4))
            wait_until(
                lambda: world.job(job_ids[0]).status == JobStatus.RUNNING, "the batch running"
            )
            batch_id = world.job(job_ids[0]).batch_id
            world.publisher.close()  # the test's own publisher reconnects after the restart
            stopping = threading.Thread(target=own_broker.stop)
            stopping.start()  # a graceful stop: RabbitMQ takes several seconds to go
            finished_line = f"batch_id={batch_id}: finished"
            wait_until(
                lambda: "not delivered" in agent.log(), "the outbox hitting the outage", timeout=60
            )
            assert finished_line not in agent.log(), "the batch was still running at the outage"
            stopping.join(60)
            assert not own_broker.reachable()
            # The batch ends while the broker is away: its last reports wait in the outbox.
            wait_until(
                lambda: finished_line in agent.log(), "the batch finished, broker down", timeout=60
            )
            held = [
                j for j, job in read_jobs(world.redis, job_ids).items() if not is_final(job.status)
            ]
            own_broker.start()

            jobs = wait_final(world.redis, job_ids, "every job final after the restart")
            # The agent and the scheduler work on: a new request runs too.
            more = submit(world, "v1", paths(2))
            more_jobs = wait_final(world.redis, more, "a request after the restart")
            world.sync()
    finally:
        fleet.stop_all()
        world.close()

    assert held, "some reports were held in the outbox while the broker was down"
    assert "not delivered" in agent.log(), "the outbox retried reports while the broker was down"
    for job in [*jobs.values(), *more_jobs.values()]:
        expected = JobStatus.FAILED if "fail" in job.test_path else JobStatus.PASSED
        # one attempt, the final one: its history is that attempt
        assert (job.status, job.attempts) == (expected.value, 1)
        assert [h["outcome"] for h in job.history] == [expected.value]
        assert job.assigned_agent == agent.agent_id
    applied = Counter(m[1] for r in caplog.records for m in FINAL_LINE.finditer(r.getMessage()))
    assert {job_id: applied[job_id] for job_id in [*job_ids, *more]} == dict.fromkeys(
        [*job_ids, *more], 1
    ), "each final status applied exactly once"
    assert deadletters.listing(world.redis, 10)[0] == 0
    assert own_broker.dead_letter_count() == 0
