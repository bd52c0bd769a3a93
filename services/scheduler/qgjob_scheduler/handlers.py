"""What the scheduler does with each event. Every effect is stored in Redis before return.

Handlers are idempotent: a redelivered event finds its effect already there and changes
nothing. Events that do not apply (unknown job, stale batch, duplicate) are logged and
dropped; a payload that cannot be applied at all raises InvalidEvent.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import redis
from redis import Redis
from redis.client import Pipeline

from qgjob_contract.events import (
    AgentCounters,
    AgentHeartbeat,
    BatchFinished,
    Envelope,
    EventType,
    JobFinished,
    JobStarted,
    JobSubmitted,
)
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Job
from qgjob_contract.statuses import JobStatus
from qgjob_scheduler import transitions
from qgjob_scheduler.atomic import fields, transaction
from qgjob_scheduler.dispatch import Dispatcher
from qgjob_scheduler.grouping import arrival_ms, group_score
from qgjob_scheduler.payloads import parse, timestamp
from qgjob_scheduler.transitions import Verdict

log = logging.getLogger(__name__)


class EventHandler:
    def __init__(self, store: Redis, dispatcher: Dispatcher) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._handlers: dict[EventType, Callable[[Envelope], None]] = {
            EventType.JOB_SUBMITTED: self.on_job_submitted,
            EventType.JOB_STARTED: self.on_job_started,
            EventType.JOB_FINISHED: self.on_job_finished,
            EventType.BATCH_FINISHED: self.on_batch_finished,
            EventType.AGENT_HEARTBEAT: self.on_agent_heartbeat,
        }

    def handle(self, event: Envelope) -> None:
        self._handlers[event.type](event)

    def on_job_submitted(self, event: Envelope) -> None:
        """A queued job joins its group; then its target gets a dispatch pass."""
        payload = parse(JobSubmitted, event.payload)
        key = Keys.job(payload["job_id"])

        def join_group(pipe: Pipeline) -> Job | None:
            raw = pipe.hgetall(key)
            pipe.multi()
            job = Job.from_redis(raw) if raw else None
            if job is None or job.status != JobStatus.QUEUED:
                return job
            arrival = arrival_ms(job.created_at)
            pipe.zadd(
                Keys.group(job.target, job.app_version_id),
                {job.job_id: group_score(job.priority, arrival)},
                nx=True,
            )
            # LT: a new group is added; an existing one keeps its oldest arrival.
            pipe.zadd(Keys.groups(job.target), {job.app_version_id: arrival}, lt=True)
            return job

        job = transaction(self._store, key, join_group)
        if job is None:
            log.info(
                "job.submitted for unknown job_id=%s (event_id=%s): ignored",
                payload["job_id"],
                event.event_id,
            )
            return
        if job.status != JobStatus.QUEUED:
            log.info(
                "job.submitted for job_id=%s already %s (event_id=%s): ignored",
                job.job_id,
                job.status,
                event.event_id,
            )
            return
        log.info(
            "job_id=%s joined group %s/%s (event_id=%s)",
            job.job_id,
            job.target,
            job.app_version_id,
            event.event_id,
        )
        self._dispatch(job.target, event)

    def on_job_started(self, event: Envelope) -> None:
        payload = parse(JobStarted, event.payload)
        verdict = transitions.apply_started(self._store, payload)
        _log_verdict(verdict, event, payload["job_id"], payload["batch_id"], JobStatus.RUNNING)

    def on_job_finished(self, event: Envelope) -> None:
        payload = parse(JobFinished, event.payload)
        verdict = transitions.apply_finished(self._store, payload)
        outcome = payload["result"]["outcome"]
        _log_verdict(verdict, event, payload["job_id"], payload["batch_id"], outcome)

    def on_agent_heartbeat(self, event: Envelope) -> None:
        """Upsert the agent from its report; `current_batch_id` stays the scheduler's."""
        payload = parse(AgentHeartbeat, event.payload)

        def update(agent: Agent) -> Agent:
            return dataclasses.replace(
                _with_counters(agent, payload), last_heartbeat=timestamp(payload["sent_at"])
            )

        self._update_agent(payload, update)
        self._dispatch(payload["target"].value, event)

    def on_batch_finished(self, event: Envelope) -> None:
        """The agent's counters, and it is free again if this was its outstanding batch."""
        payload = parse(BatchFinished, event.payload)

        def update(agent: Agent) -> Agent:
            agent = _with_counters(agent, payload)
            if agent.current_batch_id == payload["batch_id"]:
                agent = dataclasses.replace(agent, current_batch_id=None)
            return agent

        before = self._update_agent(payload, update)
        outstanding = before.current_batch_id if before is not None else None
        if outstanding != payload["batch_id"]:
            log.info(
                "batch.finished batch_id=%s is not agent %s's outstanding batch %s "
                "(event_id=%s): agent left as it was",
                payload["batch_id"],
                payload["agent_id"],
                outstanding,
                event.event_id,
            )
        self._dispatch(payload["target"].value, event)

    def _update_agent(
        self, payload: AgentCounters, update: Callable[[Agent], Agent]
    ) -> Agent | None:
        """Upsert an agent record atomically; returns the record as it was (None: new)."""
        key = Keys.agent(payload["agent_id"])

        def read_modify_write(pipe: Pipeline) -> Agent | None:
            raw = pipe.hgetall(key)
            before = Agent.from_redis(raw) if raw else None
            fresh = Agent(payload["agent_id"], payload["target"].value, payload["state"].value)
            pipe.multi()
            pipe.hset(key, mapping=fields(update(before or fresh).to_redis()))
            pipe.sadd(Keys.AGENTS, payload["agent_id"])
            return before

        return transaction(self._store, key, read_modify_write)

    def _dispatch(self, target: str, event: Envelope) -> None:
        """A dispatch pass after an event whose effect is stored.

        A failure here does not undo the event (it is acked): the next tick dispatches again.
        """
        try:
            self._dispatcher.dispatch(target)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("dispatch for %s after event_id=%s failed: %r", target, event.event_id, exc)
        except Exception:
            log.exception("dispatch for %s after event_id=%s failed", target, event.event_id)


def _with_counters(agent: Agent, payload: AgentCounters) -> Agent:
    return dataclasses.replace(
        agent,
        target=payload["target"].value,
        state=payload["state"].value,
        installed_app_version=payload["installed_app_version"],
        installs=payload["installs"],
        jobs_run=payload["jobs_run"],
    )


def _log_verdict(
    verdict: Verdict, event: Envelope, job_id: str, batch_id: str, status: str
) -> None:
    if verdict is Verdict.APPLY:
        log.info(
            "job_id=%s -> %s (batch_id=%s, event_id=%s)", job_id, status, batch_id, event.event_id
        )
    elif verdict is Verdict.NOT_ALLOWED:
        log.info(
            "%s for job_id=%s not applicable in its current status (batch_id=%s, event_id=%s): "
            "ignored",
            event.type.value,
            job_id,
            batch_id,
            event.event_id,
        )
    else:
        log.warning(
            "%s for job_id=%s ignored: %s (batch_id=%s, event_id=%s)",
            event.type.value,
            job_id,
            verdict.value,
            batch_id,
            event.event_id,
        )
