"""Fixtures for the scheduler's integration tests: the real consumer in a thread, helpers to
store jobs the way the API does, publish events, inspect RQ queues, and the URL of RabbitMQ
through the shared TcpProxy (tests/integration/conftest.py), which can cut the connection."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from rq import Queue
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer

from qgjob_contract import names
from qgjob_contract.amqp import ConfirmingPublisher
from qgjob_contract.events import (
    AgentHeartbeat,
    Envelope,
    EventType,
    JobsSubmitted,
    make_event,
    timestamp_ms,
    utc_now,
)
from qgjob_contract.leases import LeaseRenewer
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Job
from qgjob_contract.statuses import AgentState
from qgjob_contract.targets import Target
from qgjob_scheduler.config import Config
from qgjob_scheduler.consumer import Consumer
from qgjob_scheduler.main import create_consumer, redis_clients

BATCH_MAX = 3
DEADLINE_S = 15.0
# Agent used only to learn that every event published before it has been handled.
SYNC_AGENT = "sync-agent"


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def running_scheduler(world: World, config: Config) -> Iterator[Consumer]:
    """The real consumer (own connections) in a thread, stopped and joined on exit.

    `world.sync()` waits on it meanwhile.
    """
    store, rq_connection = redis_clients(config)
    consumer = create_consumer(config, store, rq_connection)
    thread = threading.Thread(target=consumer.run, name="scheduler", daemon=True)
    thread.start()
    world.scheduler = consumer
    try:
        yield consumer
    finally:
        world.scheduler = None
        consumer.stop()
        thread.join(timeout=15)
        store.close()
        rq_connection.close()
        assert not thread.is_alive(), "scheduler did not stop"


def submitted_event(jobs: list[Job]) -> Envelope:
    """The jobs.submitted the API publishes for one request holding `jobs`."""
    payload = JobsSubmitted(jobs=[job.submitted_payload() for job in jobs])
    return make_event(EventType.JOBS_SUBMITTED, payload)


ORG = "qualgent"  # the org of every job these tests store


def heartbeat_event(
    agent_id: str,
    *,
    instance_id: str,
    seq: int,
    target: Target = Target.EMULATOR,
    state: AgentState = AgentState.IDLE,
    installed: str | None = None,
    current_batch_id: str | None = None,
    last_batch_id: str | None = None,
) -> Envelope:
    """An agent's heartbeat, sent now; `installed` is an app version of ORG."""
    payload = AgentHeartbeat(
        agent_id=agent_id,
        instance_id=instance_id,
        seq=seq,
        target=target,
        state=state,
        installed_app_version=installed,
        installed_org_id=ORG if installed is not None else None,
        installs=0,
        jobs_run=0,
        current_batch_id=current_batch_id,
        last_batch_id=last_batch_id,
        sent_at=utc_now(),
    )
    return make_event(EventType.AGENT_HEARTBEAT, payload)


class World:
    """Acts as the API and the agents: stores jobs, publishes events, reads the outcome."""

    def __init__(self, redis_client: redis.Redis, rq_redis: redis.Redis, rabbitmq_url: str):
        self.redis = redis_client
        self.rq_redis = rq_redis
        self.publisher = ConfirmingPublisher(rabbitmq_url)
        self.scheduler: Consumer | None = None  # set by `running_scheduler`
        # Each agent's current instance and the sequence number of its last report.
        self.instances: dict[str, str] = {}
        self.seqs: dict[str, int] = {}
        # Jobs were created a little while ago: later than any arrival is "now".
        self._clock = datetime.now(UTC) - timedelta(minutes=1)

    def close(self) -> None:
        self.publisher.close()

    def instance(self, agent_id: str) -> str:
        return self.instances.setdefault(agent_id, f"{agent_id}-i1")

    def restart(self, agent_id: str) -> str:
        """The agent comes back as a new instance (same agent id); returns its instance id."""
        number = int(self.instance(agent_id).rpartition("-i")[2]) + 1
        self.instances[agent_id] = f"{agent_id}-i{number}"
        self.seqs.pop(agent_id, None)
        return self.instances[agent_id]

    def next_seq(self, agent_id: str) -> int:
        self.seqs[agent_id] = self.seqs.get(agent_id, 0) + 1
        return self.seqs[agent_id]

    def renew_lease(self, agent_id: str) -> None:
        """What the agent's heartbeat thread does first: renew its lease in Redis."""
        LeaseRenewer(self.redis, agent_id, self.instance(agent_id)).renew()

    def next_time(self) -> str:
        """The creation time of the next request: each request is a little later."""
        self._clock += timedelta(milliseconds=5)
        return self._clock.isoformat(timespec="milliseconds")

    def store_job(
        self,
        app_version_id: str,
        *,
        target: Target = Target.EMULATOR,
        priority: int = 1,
        job_id: str | None = None,
        store: bool = True,
        created_at: str | None = None,
    ) -> Job:
        """A queued job record as the API writes it (`store=False`: as if rolled back).

        `created_at` defaults to a time of its own, as if the job came in its own request.
        """
        job = Job(
            job_id=job_id or str(uuid.uuid4()),
            org_id=ORG,
            app_version_id=app_version_id,
            test_path=f"tests/{uuid.uuid4().hex[:8]}.spec.js",
            priority=priority,
            target=target.value,
            created_at=created_at or self.next_time(),
        )
        if store:
            self.redis.hset(Keys.job(job.job_id), mapping=job.to_redis())
            self.redis.zadd(Keys.JOBS_BY_TIME, {job.job_id: timestamp_ms(job.created_at)})
        return job

    def submit(
        self,
        app_version_id: str,
        *,
        target: Target = Target.EMULATOR,
        priority: int = 1,
        job_id: str | None = None,
        store: bool = True,
    ) -> str:
        """Store a queued job as the API does, then publish a jobs.submitted carrying it."""
        job = self.store_job(
            app_version_id, target=target, priority=priority, job_id=job_id, store=store
        )
        self.publish_submitted([job])
        return job.job_id

    def submit_suite(
        self,
        app_version_id: str,
        count: int,
        *,
        target: Target = Target.EMULATOR,
        job_ids: list[str] | None = None,
    ) -> list[str]:
        """Store `count` queued jobs, then publish ONE jobs.submitted (one API request).

        Like the API, every job of the request has the same `created_at`.
        """
        created_at = self.next_time()
        jobs = [
            self.store_job(
                app_version_id,
                target=target,
                job_id=job_ids[i] if job_ids else None,
                created_at=created_at,
            )
            for i in range(count)
        ]
        self.publish_submitted(jobs)
        return [job.job_id for job in jobs]

    def publish_submitted(self, jobs: list[Job]) -> None:
        self.publisher.publish(submitted_event(jobs))

    def heartbeat_event(self, agent_id: str, **fields: Any) -> Envelope:
        """Renew the agent's lease, then make its next heartbeat (for handlers driven directly)."""
        self.renew_lease(agent_id)
        return heartbeat_event(
            agent_id, instance_id=self.instance(agent_id), seq=self.next_seq(agent_id), **fields
        )

    def heartbeat(
        self,
        agent_id: str,
        *,
        target: Target = Target.EMULATOR,
        state: AgentState = AgentState.IDLE,
        installed: str | None = None,
        current_batch_id: str | None = None,
        last_batch_id: str | None = None,
        lease: bool = True,
    ) -> int:
        """Renew the agent's lease (unless `lease` is False), then publish its heartbeat;
        returns the heartbeat's sequence number."""
        if lease:
            self.renew_lease(agent_id)
        event = heartbeat_event(
            agent_id,
            instance_id=self.instance(agent_id),
            seq=self.next_seq(agent_id),
            target=target,
            state=state,
            installed=installed,
            current_batch_id=current_batch_id,
            last_batch_id=last_batch_id,
        )
        self.publisher.publish(event)
        return int(event.payload["seq"])

    def batch_finished(
        self,
        agent_id: str,
        batch_id: str,
        installed: str,
        *,
        installs: int,
        jobs_run: int,
        state: AgentState = AgentState.IDLE,
        reported: list[dict[str, Any]] | None = None,
        started_at: str | None = None,
        seq: int | None = None,
    ) -> None:
        """The agent's batch.finished; `reported`: the job.finished payloads it sent for the
        batch (their outcomes travel in the batch.finished too, as the agent's do), each
        started at `started_at`; `seq`: its place in the agent's reports (default: next)."""
        reports = {
            str(done["job_id"]): {
                "started_at": started_at,
                "finished_at": done["finished_at"],
                "result": done["result"],
            }
            for done in reported or []
        }
        self.publish(
            EventType.BATCH_FINISHED,
            {
                "agent_id": agent_id,
                "instance_id": self.instance(agent_id),
                "seq": self.next_seq(agent_id) if seq is None else seq,
                "target": Target.EMULATOR.value,
                "state": state.value,
                "installed_app_version": installed,
                "installed_org_id": ORG,
                "installs": installs,
                "jobs_run": jobs_run,
                "batch_id": batch_id,
                "reports": reports,
            },
        )

    def publish(self, event_type: EventType, payload: dict[str, Any]) -> None:
        self.publisher.publish(make_event(event_type, payload))

    def sync(self) -> None:
        """Return once the scheduler has handled everything published before this call AND
        run the dispatch pass that follows it, so "no batch was sent" can be asserted.

        The scheduler handles its queue in order, so once this marker heartbeat (of a
        target no test dispatches to) is stored, every earlier event has been handled. The
        dispatch pass over what they changed runs after them (`after_events`): once the
        consumer's pass count grows past its value at that moment, that pass is done.
        """
        scheduler = self.scheduler
        assert scheduler is not None, "sync() needs a running scheduler"
        seq = str(self.heartbeat(SYNC_AGENT, target=Target.BROWSERSTACK, lease=False))
        wait_until(
            lambda: self.redis.hget(Keys.agent(SYNC_AGENT), "seq") == seq,
            "the scheduler to catch up",
        )
        passes = scheduler.passes
        wait_until(lambda: scheduler.passes > passes, "a dispatch pass after the events")

    def job(self, job_id: str) -> Job:
        return Job.from_redis(self.redis.hgetall(Keys.job(job_id)))

    def agent(self, agent_id: str) -> Agent:
        return Agent.from_redis(self.redis.hgetall(Keys.agent(agent_id)))

    def group(self, app_version_id: str, target: Target = Target.EMULATOR) -> list[str]:
        return list(self.redis.zrange(Keys.group(target.value, ORG, app_version_id), 0, -1))

    def groups(self, target: Target = Target.EMULATOR) -> list[str]:
        """The app versions (of ORG) with pending jobs, in their turn order."""
        builds = self.redis.zrange(Keys.groups(target.value), 0, -1)
        return [names.parse_build(build)[1] for build in builds]

    def queue(self, agent_id: str) -> Queue:
        return Queue(
            names.agent_queue(agent_id), connection=self.rq_redis, serializer=JSONSerializer
        )

    def batches(self, agent_id: str) -> list[RqJob]:
        """RQ jobs waiting on the agent's own queue (no worker runs in these tests)."""
        return list(self.queue(agent_id).jobs)

    def wait_batches(
        self, agent_id: str, count: int, *, timeout: float = DEADLINE_S
    ) -> list[RqJob]:
        return list(
            wait_until(
                lambda: (jobs := self.batches(agent_id)) and len(jobs) >= count and jobs,
                f"{count} batch(es) on {agent_id}'s queue",
                timeout,
            )
        )


@pytest.fixture
def rq_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def world(
    redis_client: redis.Redis, rq_redis: redis.Redis, rabbitmq_url: str, amqp_channel: Any
) -> Iterator[World]:
    world = World(redis_client, rq_redis, rabbitmq_url)
    yield world
    world.close()


def scheduler_config(redis_url: str, rabbitmq_url: str, health_file: Path) -> Config:
    return Config(
        redis_url=redis_url,
        rabbitmq_url=rabbitmq_url,
        batch_max_jobs=BATCH_MAX,
        agent_timeout_s=60.0,
        tick_s=0.2,
        report_grace_s=0.5,
        prefetch=10,
        health_file=str(health_file),
        # Unseen tests are short next to an install (as on real devices): the planner then
        # keeps a small suite on one agent instead of paying a second install.
        default_test_s=1.0,
    )


@pytest.fixture
def health_file(tmp_path: Path) -> Path:
    return tmp_path / "scheduler-alive"


@pytest.fixture
def config(redis_url: str, rabbitmq_url: str, health_file: Path) -> Config:
    """The configuration of the scheduler the tests run (see `scheduler_config`)."""
    return scheduler_config(redis_url, rabbitmq_url, health_file)


@pytest.fixture
def scheduler(world: World, config: Config) -> Iterator[Consumer]:
    with running_scheduler(world, config) as consumer:
        yield consumer


def via_proxy(rabbitmq_url: str, port: int) -> tuple[str, tuple[str, int]]:
    """(URL of the broker through a proxy on `port`, the broker's real address)."""
    parts = urlsplit(rabbitmq_url)
    assert parts.hostname is not None
    assert parts.port is not None
    url = (
        f"amqp://{parts.username}:{parts.password}@127.0.0.1:{port}{parts.path}"
        "?heartbeat=30&connection_attempts=1&socket_timeout=2"
    )
    return url, (parts.hostname, parts.port)
