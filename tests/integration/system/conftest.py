"""System tests: the real scheduler (a thread or a process) with real agent processes, on real
RabbitMQ and Redis, under real faults (SIGKILL, a stopped container).

The fixtures of the other integration conftests are imported here, so pytest registers them
for this folder too. The helpers below start and kill processes, submit jobs the way the API
stores and announces them, and read what a user sees: the job records in Redis.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
import redis

from qgjob_contract import names
from qgjob_contract.amqp import declare_topology
from qgjob_contract.events import EventType, decode, timestamp_ms
from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import JobStatus, is_final
from qgjob_contract.targets import Target
from tests.integration.agent.conftest import AgentProcess, event_log
from tests.integration.api.conftest import make_client
from tests.integration.conftest import EventTap
from tests.integration.scheduler.conftest import (
    ORG,
    World,
    config,
    health_file,
    rq_redis,
    wait_until,
    world,
)

__all__ = [
    "config",
    "event_log",
    "health_file",
    "make_client",
    "rq_redis",
    "world",
]  # fixtures registered here

# Short timings: an agent is lost 2 s after its last renewal, renews every 0.3 s.
AGENT_TIMEOUT_S = 2.0
TICK_S = 0.2
REPORT_GRACE_S = 0.5
SYSTEM_AGENT_ENV = {
    "SIM_INSTALL_SECONDS": "0.1",
    "SIM_TEST_SECONDS": "0.2",
    "AGENT_HEARTBEAT_S": "0.3",
    "SIM_FAIL_PATTERN": "*fail*",
    "LOG_LEVEL": "INFO",
}
# What the issue promises: a lost agent's work runs elsewhere within this.
REDISPATCH_BOUND_S = 15.0


def paths(count: int, *, every_fail: int = 0) -> list[str]:
    """`count` test paths; with `every_fail`, each n-th one matches SIM_FAIL_PATTERN."""
    return [
        f"tests/{'fail' if every_fail and i % every_fail == 0 else 'ok'}-{i}.spec.js"
        for i in range(count)
    ]


def expected_status(test_path: str) -> str:
    """The outcome the simulator gives `test_path` (SYSTEM_AGENT_ENV's fail pattern)."""
    return JobStatus.FAILED.value if "fail" in test_path else JobStatus.PASSED.value


def submit(world: World, app_version_id: str, test_paths: list[str]) -> list[str]:
    """Store queued jobs as the API does for one request, then publish its jobs.submitted."""
    created_at = world.next_time()
    jobs = [
        Job(
            job_id=str(uuid.uuid4()),
            org_id=ORG,
            app_version_id=app_version_id,
            test_path=path,
            priority=1,
            target=Target.EMULATOR.value,
            created_at=created_at,
        )
        for path in test_paths
    ]
    pipe = world.redis.pipeline(transaction=True)
    for job in jobs:
        pipe.hset(Keys.job(job.job_id), mapping=job.to_redis())
        pipe.zadd(Keys.JOBS_BY_TIME, {job.job_id: timestamp_ms(job.created_at)})
    pipe.execute()
    world.publish_submitted(jobs)
    return [job.job_id for job in jobs]


def read_jobs(client: redis.Redis, job_ids: list[str]) -> dict[str, Job]:
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(Keys.job(job_id))
    return {
        job_id: Job.from_redis(raw)
        for job_id, raw in zip(job_ids, pipe.execute(), strict=True)
        if raw
    }


def all_final(client: redis.Redis, job_ids: list[str]) -> dict[str, Job] | None:
    """The jobs once every one of them has a final status; None before (or Redis away)."""
    try:
        jobs = read_jobs(client, job_ids)
    except redis.RedisError:
        return None
    if len(jobs) == len(job_ids) and all(is_final(job.status) for job in jobs.values()):
        return jobs
    return None


def count_final(client: redis.Redis, job_ids: list[str]) -> int:
    try:
        return sum(is_final(job.status) for job in read_jobs(client, job_ids).values())
    except redis.RedisError:
        return 0


class FinalWatch:
    """Polls job records in a thread: a record, once final, must never change again.

    Records the first final snapshot of each job; `changes` lists every later reading that
    differs (status, outcome, batch, finish time). Redis errors are polled through.
    """

    def __init__(self, client: redis.Redis, job_ids: list[str], period_s: float = 0.05) -> None:
        self._client = client
        self._job_ids = list(job_ids)
        self._period_s = period_s
        self.first: dict[str, tuple[Any, ...]] = {}
        self.changes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="final-watch", daemon=True)

    def add(self, job_ids: list[str]) -> None:
        self._job_ids = [*self._job_ids, *job_ids]

    def __enter__(self) -> FinalWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                jobs = read_jobs(self._client, self._job_ids)
            except redis.RedisError:
                jobs = {}
            for job_id, job in jobs.items():
                seen = (job.status, job.batch_id, job.finished_at, job.result)
                if job_id in self.first:
                    if seen != self.first[job_id]:
                        self.changes.append(f"{job_id}: {self.first[job_id]} -> {seen}")
                elif is_final(job.status):
                    self.first[job_id] = seen
            self._stop.wait(self._period_s)


# --- real agent processes -----------------------------------------------------------------


class Agents:
    """Starts `qgjob-agent-emulator` processes; every one is killed at the end of the test."""

    def __init__(self, redis_url: str, rabbitmq_url: str, tmp_path: Path) -> None:
        self.redis_url = redis_url
        self.rabbitmq_url = rabbitmq_url
        self._tmp_path = tmp_path
        self._script = Path(sys.executable).with_name("qgjob-agent-emulator")
        self.started: list[AgentProcess] = []
        self._env_of: dict[str, dict[str, str]] = {}

    def start(self, agent_id: str | None = None, **env: str) -> AgentProcess:
        agent_id = agent_id or f"emulator-sys-{uuid.uuid4().hex[:8]}"
        self._env_of[agent_id] = env
        run = len([a for a in self.started if a.agent_id == agent_id]) + 1
        health = self._tmp_path / f"{agent_id}-{run}.alive"
        log_file = self._tmp_path / f"{agent_id}-{run}.log"
        full_env = {
            **os.environ,
            **SYSTEM_AGENT_ENV,
            "AGENT_ID": agent_id,
            "REDIS_URL": self.redis_url,
            "RABBITMQ_URL": self.rabbitmq_url,
            "AGENT_HEALTH_FILE": str(health),
            **env,
        }
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [str(self._script)], env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
        agent = AgentProcess(agent_id, health, log_file, process)
        self.started.append(agent)
        return agent

    def stop_all(self) -> None:
        for agent in self.started:
            kill(agent.process)

    @contextlib.contextmanager
    def supervised(self, period_s: float = 0.2) -> Iterator[list[str]]:
        """Restart (same AGENT_ID, a new instance) every agent process that exits, as
        compose's `restart: unless-stopped` does; yields the ids of the agents restarted."""
        restarted: list[str] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(period_s):
                latest = {agent.agent_id: agent for agent in self.started}
                for agent in latest.values():
                    if agent.process.poll() is not None:
                        restarted.append(agent.agent_id)
                        self.start(agent.agent_id, **self._env_of[agent.agent_id])

        thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        thread.start()
        try:
            yield restarted
        finally:
            stop.set()
            thread.join(5)


def purge_queues(rabbitmq_url: str) -> None:
    """Declare the topology and empty the scheduler's queues (a short-lived connection)."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        declare_topology(channel)
        channel.queue_purge(names.SCHEDULER_QUEUE)
        channel.queue_purge(names.DEAD_LETTER_QUEUE)
    finally:
        connection.close()


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL (no warm stop, no last report), and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)


@pytest.fixture
def agents(redis_url: str, rabbitmq_url: str, world: World, tmp_path: Path) -> Iterator[Agents]:
    """Agents on the session's servers (after `world` flushed Redis and purged the queues)."""
    fleet = Agents(redis_url, rabbitmq_url, tmp_path)
    try:
        yield fleet
    finally:
        fleet.stop_all()


# --- the scheduler as a process ----------------------------------------------------------

# "job_id=... -> passed" lines: a final status applied by a handler or the reaper.
FINAL_LINE = re.compile(r"job_id=(\S+) -> (passed|failed|error)\b")


@dataclass
class SchedulerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@dataclass
class Schedulers:
    """`python -m qgjob_scheduler` processes; killed at the end of the test."""

    redis_url: str
    rabbitmq_url: str
    tmp_path: Path
    env: dict[str, str] = field(default_factory=dict)
    started: list[SchedulerProcess] = field(default_factory=list)

    def start(self, name: str) -> SchedulerProcess:
        run = len(self.started) + 1
        log_file = self.tmp_path / f"scheduler-{name}-{run}.log"
        full_env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "RABBITMQ_URL": self.rabbitmq_url,
            "BATCH_MAX_JOBS": "5",
            "AGENT_TIMEOUT_S": str(AGENT_TIMEOUT_S),
            "SCHEDULER_TICK_S": str(TICK_S),
            "SCHEDULER_REPORT_GRACE_S": str(REPORT_GRACE_S),
            "SCHEDULER_HEALTH_FILE": str(self.tmp_path / f"scheduler-{name}-{run}.alive"),
            "LOG_LEVEL": "INFO",
            **self.env,
        }
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "qgjob_scheduler"],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        scheduler = SchedulerProcess(name, process, log_file)
        self.started.append(scheduler)
        return scheduler

    def final_lines(self) -> dict[str, list[str]]:
        """Every final status applied, per job id, over the logs of every process."""
        applied: dict[str, list[str]] = {}
        for scheduler in self.started:
            for match in FINAL_LINE.finditer(scheduler.log()):
                applied.setdefault(match[1], []).append(match[2])
        return applied

    def stop_all(self) -> None:
        for scheduler in self.started:
            kill(scheduler.process)


@pytest.fixture
def schedulers(
    redis_url: str, rabbitmq_url: str, world: World, tmp_path: Path
) -> Iterator[Schedulers]:
    fleet = Schedulers(redis_url, rabbitmq_url, tmp_path)
    try:
        yield fleet
    finally:
        fleet.stop_all()


# --- events the broker routed --------------------------------------------------------------


def started_per_job(tap: EventTap, counts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Add the runs the tap saw since the last call: job id -> the batch ids it started in.

    A run is told by its job.started or, when the agent's outbox folded that into the
    batch's end, by a report of a started job in the batch.finished; each (job, batch) once,
    however many of those (or of their redeliveries) arrive.
    """
    for routing_key, body, _ in tap.drain():
        payload = decode(body).payload
        if routing_key == EventType.JOB_STARTED.value:
            runs = [(str(payload["job_id"]), str(payload["batch_id"]))]
        elif routing_key == EventType.BATCH_FINISHED.value:
            runs = [
                (str(job_id), str(payload["batch_id"]))
                for job_id, report in payload["reports"].items()
                if report.get("started_at")
            ]
        else:
            continue
        for job_id, batch_id in runs:
            batches = counts.setdefault(job_id, [])
            if batch_id not in batches:
                batches.append(batch_id)
    return counts


def wait_final(
    client: redis.Redis, job_ids: list[str], what: str, timeout: float = 60.0
) -> dict[str, Job]:
    return dict(wait_until(lambda: all_final(client, job_ids), what, timeout))


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: time.monotonic() - start
