"""The real agent process against real Redis and RabbitMQ: batches in, events out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from rq import Queue
from rq.job import Job
from rq.job import JobStatus as RQJobStatus
from rq.serializers import JSONSerializer

from qgjob_contract import names
from qgjob_contract.events import Envelope, EventType
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.statuses import AgentState, JobStatus

if TYPE_CHECKING:
    from conftest import AgentProcess, EventLog, HeldTests, ProxiedBroker


def _enqueue(redis_url: str, queue_name: str, batch: Batch | dict[str, Any]) -> Job:
    """Enqueue a batch as the scheduler does; a dict is sent as it is (say, a malformed one)."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    payload = batch.to_json() if isinstance(batch, Batch) else batch
    return queue.enqueue(names.RUN_BATCH_FUNCTION, payload)


def _wait_rq_finished(rq_job: Job, timeout_s: float = 20.0) -> None:
    """RQ marks a job finished just after run_batch returns, i.e. after batch.finished."""
    deadline = time.monotonic() + timeout_s
    while rq_job.get_status(refresh=True) != RQJobStatus.FINISHED:
        assert time.monotonic() < deadline, f"RQ job still {rq_job.get_status()}"
        time.sleep(0.05)


def _batch(batch_id: str, agent_id: str, version: str, *paths: str) -> Batch:
    jobs = [BatchJob(f"{batch_id}-j{i}", "qualgent", path, 1) for i, path in enumerate(paths)]
    return Batch(batch_id, agent_id, "emulator", version, "2025-01-01T00:00:00.000+00:00", jobs)


def _is(event_type: EventType, **payload: Any) -> Callable[[Envelope], bool]:
    def matches(event: Envelope) -> bool:
        return event.type == event_type and all(
            event.payload.get(k) == v for k, v in payload.items()
        )

    return matches


def _batch_events(event_log: EventLog, batch_id: str) -> list[Envelope]:
    """The batch's job and batch events, in the order the broker routed them, each once: a
    publish whose confirm a cut connection lost is sent again (the scheduler applies it
    once)."""
    kinds = (EventType.JOB_STARTED, EventType.JOB_FINISHED, EventType.BATCH_FINISHED)
    first: dict[str, Envelope] = {}
    for event in event_log.of(*kinds):
        if event.payload["batch_id"] == batch_id:
            first.setdefault(event.event_id, event)
    return list(first.values())


def _reported_in_order(events: list[Envelope], job_ids: list[str]) -> dict[str, Any]:
    """Check a finished batch's events and return its batch.finished's reports, by job id.

    The batch.finished comes last and reports every job, in order. The job events before
    it are those the outbox had sent when the batch ended (it folds the rest into the
    batch.finished): in the order they happened, each job.finished saying what the
    batch.finished reports of its job.
    """
    *sent, finished = events
    assert finished.type == EventType.BATCH_FINISHED
    reports: dict[str, Any] = finished.payload["reports"]
    assert list(reports) == job_ids
    happened = iter(
        (kind, job_id)
        for job_id in job_ids
        for kind in (EventType.JOB_STARTED, EventType.JOB_FINISHED)
    )
    assert all((e.type, e.payload["job_id"]) in happened for e in sent), sent  # a subsequence
    for event in sent:
        if event.type == EventType.JOB_FINISHED:
            assert event.payload["result"] == reports[event.payload["job_id"]]["result"]
    return reports


def test_agent_heartbeats_and_reports_healthy(
    start_agent: Callable[..., AgentProcess], event_log: EventLog
) -> None:
    agent = start_agent()

    first = event_log.wait_for(_is(EventType.AGENT_HEARTBEAT, agent_id=agent.agent_id))
    assert first.payload["target"] == "emulator"
    assert first.payload["state"] == AgentState.IDLE
    assert first.payload["installed_app_version"] is None
    assert first.payload["last_batch_id"] is None
    event_log.wait_for(lambda _: len(event_log.of(EventType.AGENT_HEARTBEAT)) >= 3)

    env = {**os.environ, "AGENT_HEALTH_FILE": str(agent.health_file)}
    healthcheck = [sys.executable, "-m", "qgjob_agent.healthcheck"]
    assert subprocess.run(healthcheck, env=env, check=False, timeout=30).returncode == 0


def test_batches_run_in_order_and_a_warm_agent_skips_the_install(
    start_agent: Callable[..., AgentProcess], event_log: EventLog, redis_url: str
) -> None:
    agent = start_agent()
    queue = names.agent_queue(agent.agent_id)
    first = _batch("b1", agent.agent_id, "v1", "a.spec.js", "login_fail.spec.js", "c.spec.js")

    rq_job = _enqueue(redis_url, queue, first)

    finished = event_log.wait_for(_is(EventType.BATCH_FINISHED, batch_id="b1"))
    _wait_rq_finished(rq_job)
    assert rq_job.return_value() == finished.payload
    events = _batch_events(event_log, "b1")
    assert events[-1] is finished
    reports = _reported_in_order(events, ["b1-j0", "b1-j1", "b1-j2"])
    results = [report["result"] for report in reports.values()]
    assert all(report["started_at"] is not None for report in reports.values())
    assert [r["outcome"] for r in results] == [
        JobStatus.PASSED,
        JobStatus.FAILED,
        JobStatus.PASSED,
    ]
    assert [r["install_paid"] for r in results] == [True, False, False]
    assert results[0]["install_s"] >= 0.3
    assert all(r["driver"] == "simulator" and r["simulated"] for r in results)
    assert all(e.payload["agent_id"] == agent.agent_id for e in events)
    assert finished.payload["installs"] == 1
    assert finished.payload["jobs_run"] == 3
    assert finished.payload["installed_app_version"] == "v1"
    assert finished.payload["state"] == AgentState.IDLE

    second = _batch("b2", agent.agent_id, "v1", "d.spec.js", "e.spec.js")
    _enqueue(redis_url, queue, second)

    finished = event_log.wait_for(_is(EventType.BATCH_FINISHED, batch_id="b2"))
    reports = _reported_in_order(_batch_events(event_log, "b2"), ["b2-j0", "b2-j1"])
    assert [r["result"]["install_paid"] for r in reports.values()] == [False, False]
    assert finished.payload["installs"] == 1
    assert finished.payload["jobs_run"] == 5

    heartbeat = event_log.wait_for(
        _is(EventType.AGENT_HEARTBEAT, jobs_run=5, installed_app_version="v1", last_batch_id="b2")
    )
    assert heartbeat.payload["installs"] == 1
    assert heartbeat.payload["current_batch_id"] is None


def test_an_aborted_batch_is_named_in_a_heartbeat_at_once_and_the_agent_goes_on(
    start_agent: Callable[..., AgentProcess], event_log: EventLog, redis_url: str
) -> None:
    # Heartbeats every 20 s: only the prompt one after the abort arrives within 10 s.
    agent = start_agent(AGENT_HEARTBEAT_S="20")
    queue = names.agent_queue(agent.agent_id)
    event_log.wait_for(_is(EventType.AGENT_HEARTBEAT, agent_id=agent.agent_id))
    _enqueue(redis_url, queue, {"batch_id": "m1", "agent_id": agent.agent_id})

    heartbeat = event_log.wait_for(_is(EventType.AGENT_HEARTBEAT, last_batch_id="m1"), timeout_s=10)
    assert heartbeat.payload["state"] == AgentState.IDLE
    assert heartbeat.payload["current_batch_id"] is None
    assert "batch_id=m1: malformed, not run" in agent.log()
    assert not event_log.of(EventType.JOB_STARTED, EventType.BATCH_FINISHED)

    _enqueue(redis_url, queue, _batch("b2", agent.agent_id, "v1", "a.spec.js"))
    event_log.wait_for(_is(EventType.BATCH_FINISHED, batch_id="b2"))


def test_sigterm_sends_an_offline_heartbeat_and_exits_cleanly(
    start_agent: Callable[..., AgentProcess], event_log: EventLog
) -> None:
    agent = start_agent()
    event_log.wait_for(_is(EventType.AGENT_HEARTBEAT, agent_id=agent.agent_id))

    assert agent.stop() == 0, agent.log()

    last = event_log.wait_for(_is(EventType.AGENT_HEARTBEAT, state=AgentState.OFFLINE))
    assert last.payload["agent_id"] == agent.agent_id
    assert not agent.health_file.exists()


def test_agent_restarted_after_a_crash_replaces_its_stale_worker_registration(
    start_agent: Callable[..., AgentProcess], event_log: EventLog, redis_url: str
) -> None:
    crashed = start_agent(AGENT_ID="emulator-restarted")
    event_log.wait_for(_is(EventType.AGENT_HEARTBEAT, agent_id=crashed.agent_id))
    crashed.process.kill()
    crashed.process.wait()

    # The killed agent never unregistered its RQ worker; the restarted one must start anyway.
    restarted = start_agent(AGENT_ID="emulator-restarted")
    _enqueue(
        redis_url,
        names.agent_queue(restarted.agent_id),
        _batch("r1", restarted.agent_id, "v1", "a.spec.js"),
    )
    finished = event_log.wait_for(_is(EventType.BATCH_FINISHED, batch_id="r1"))
    assert finished.payload["agent_id"] == "emulator-restarted"
    assert restarted.process.poll() is None, restarted.log()


def test_events_still_arrive_when_the_broker_connection_drops_during_a_test(
    start_agent: Callable[..., AgentProcess],
    event_log: EventLog,
    redis_url: str,
    rabbitmq_proxy: ProxiedBroker,
    held_tests: HeldTests,
) -> None:
    # The broker drops a connection left idle during a long test (pika answers AMQP
    # heartbeats only while it publishes); here the test cuts it, at a moment it chooses.
    agent = start_agent(
        RABBITMQ_URL=rabbitmq_proxy.url, AGENT_DRIVER="command", AGENT_COMMAND=held_tests.command
    )
    batch = _batch("cut", agent.agent_id, "v1", "slow.spec.js", "slow2.spec.js")
    _enqueue(redis_url, names.agent_queue(agent.agent_id), batch)
    event_log.wait_for(_is(EventType.JOB_STARTED, job_id="cut-j0"))
    connections = rabbitmq_proxy.proxy.accepted

    rabbitmq_proxy.proxy.drop()  # every connection the agent has is gone
    held_tests.release()

    event_log.wait_for(_is(EventType.BATCH_FINISHED, batch_id="cut"))
    events = _batch_events(event_log, "cut")
    assert (events[0].type, events[0].payload["job_id"]) == (EventType.JOB_STARTED, "cut-j0")
    reports = _reported_in_order(events, ["cut-j0", "cut-j1"])
    assert _outcomes(reports) == [JobStatus.PASSED] * 2
    assert rabbitmq_proxy.proxy.accepted > connections  # reported over a new connection
    assert agent.process.poll() is None, agent.log()


def test_a_batch_that_ends_while_the_broker_is_away_is_reported_by_its_batch_finished(
    start_agent: Callable[..., AgentProcess],
    event_log: EventLog,
    redis_url: str,
    rabbitmq_proxy: ProxiedBroker,
    held_tests: HeldTests,
) -> None:
    # The job events still waiting in the outbox when the batch ends are not sent: the
    # batch.finished repeats them, so the batch costs one report (not two per job).
    agent = start_agent(
        RABBITMQ_URL=rabbitmq_proxy.url, AGENT_DRIVER="command", AGENT_COMMAND=held_tests.command
    )
    job_ids = [f"away-j{i}" for i in range(4)]
    batch = _batch("away", agent.agent_id, "v1", *(f"t{i}.spec.js" for i in range(4)))
    rq_job = _enqueue(redis_url, names.agent_queue(agent.agent_id), batch)
    event_log.wait_for(_is(EventType.JOB_STARTED, job_id="away-j0"))

    rabbitmq_proxy.proxy.refuse()  # the broker is unreachable from here on
    held_tests.release()
    _wait_rq_finished(rq_job)  # the batch ran to its end: its batch.finished is in the outbox
    rabbitmq_proxy.proxy.accept()

    event_log.wait_for(_is(EventType.BATCH_FINISHED, batch_id="away"))
    events = _batch_events(event_log, "away")
    reports = _reported_in_order(events, job_ids)
    assert _outcomes(reports) == [JobStatus.PASSED] * 4
    assert all(report["started_at"] is not None for report in reports.values())
    # Sent: away-j0's job.started, and at most the one event being published when the batch
    # ended; the other six job events travel in the batch.finished only.
    assert len(events) <= 3, [(e.type, e.payload.get("job_id")) for e in events]
    assert agent.process.poll() is None, agent.log()


def test_sigterm_during_a_batch_finishes_it_reports_offline_and_starts_no_other(
    start_agent: Callable[..., AgentProcess],
    event_log: EventLog,
    redis_url: str,
    held_tests: HeldTests,
) -> None:
    agent = start_agent(AGENT_DRIVER="command", AGENT_COMMAND=held_tests.command)
    queue = names.agent_queue(agent.agent_id)
    _enqueue(redis_url, queue, _batch("b1", agent.agent_id, "v1", "a.spec.js", "b.spec.js"))
    event_log.wait_for(_is(EventType.JOB_STARTED, job_id="b1-j0"))
    # A batch the scheduler bound to the agent before it learnt that the agent is stopping.
    waiting = _enqueue(redis_url, queue, _batch("b2", agent.agent_id, "v1", "c.spec.js"))

    agent.process.send_signal(signal.SIGTERM)  # docker compose stop / --scale down
    # While the batch still runs, every heartbeat says offline: the scheduler binds no
    # other batch to the agent.
    event_log.wait_for(
        _is(EventType.AGENT_HEARTBEAT, state=AgentState.OFFLINE, current_batch_id="b1")
    )
    held_tests.release()

    assert agent.process.wait(20) == 0, agent.log()
    event_log.drain()
    events = _batch_events(event_log, "b1")
    reports = _reported_in_order(events, ["b1-j0", "b1-j1"])
    finished = events[-1]
    assert finished.payload["state"] == AgentState.OFFLINE
    assert _outcomes(reports) == [JobStatus.PASSED] * 2
    after = event_log.events[event_log.events.index(finished) + 1 :]
    heartbeats = [e.payload for e in after if e.type == EventType.AGENT_HEARTBEAT]
    assert heartbeats, "no heartbeat after batch.finished"
    assert all(h["state"] == AgentState.OFFLINE for h in heartbeats)
    assert heartbeats[-1]["last_batch_id"] == "b1"
    assert heartbeats[-1]["current_batch_id"] is None
    assert not _batch_events(event_log, "b2")
    assert waiting.get_status(refresh=True) == RQJobStatus.QUEUED
    assert not agent.health_file.exists()


def _outcomes(reports: dict[str, Any]) -> list[str]:
    return [report["result"]["outcome"] for report in reports.values()]
