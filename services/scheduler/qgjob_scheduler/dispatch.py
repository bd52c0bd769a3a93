"""Dispatch: hand batches of pending jobs to the free agents of a target.

A pass reads the free agents and pending groups of a target, asks the policy for
assignments, and carries each out with ONE Lua script (agent still unbound? pop the jobs,
mark them assigned, write the batch, bind it to the agent), then enqueues the batch as one
RQ job on the agent's own queue. Enqueueing is a second step, so it is not atomic with the
first: when it fails, a compensating script hands the batch's jobs back to their group
(`_undo`). The same undo takes back a batch whose agent went offline before starting it
(`take_back`).

Groups of a target take turns. A group's score in `Keys.groups(target)` is the moment it
(re-)arrived: a new group arrives with its first job, and a group that a batch takes only
part of is re-scored as if it arrived at that moment. Cold agents take the group with the
lowest score, so they go round the waiting app versions instead of serving, again and again,
a version that keeps receiving jobs. A job joining a group that is already waiting leaves
the group's score alone (`ZADD NX`), so a late job cannot pull a group forward.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer

from qgjob_contract import names
from qgjob_contract.events import format_timestamp, timestamp_ms
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Batch
from qgjob_contract.statuses import AgentState, JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler.errors import REDIS_ERRORS
from qgjob_scheduler.policy import Assignment, FreeAgent, PendingGroup, Policy, assign

log = logging.getLogger(__name__)

# RQ job settings of a batch. The timeout only stops a runaway worker; losing an agent is
# the scheduler's business (heartbeats), not RQ's.
BATCH_JOB_TIMEOUT_S = 24 * 3600
BATCH_RESULT_TTL_S = 24 * 3600
BATCH_FAILURE_TTL_S = 7 * 24 * 3600

# KEYS: agent, group, groups, batch
# ARGV: agent_id, app_version_id, count, batch_id, now, now in ms, job key prefix,
#       queued status, assigned status, target
# Returns the batch record as written (HGETALL), or false when nothing was dispatched. Next
# to the fields of records.Batch, the record keeps what `_undo` needs to take the batch back:
# `job_scores` ({job_id: its score in the group} as JSON) and `group_score` (the group's score
# in groups before the pop; empty if it had none).
# The job keys are built from a prefix, not declared in KEYS: the job ids are only known once
# ZPOPMIN has run. Fine on a single Redis instance; Redis Cluster would refuse the script.
_FORM_BATCH = """
local agent_key, group_key, groups_key, batch_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local agent_id, version, count, batch_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, now_ms, job_prefix = ARGV[5], ARGV[6], ARGV[7]
local queued, assigned, target = ARGV[8], ARGV[9], ARGV[10]

-- `is_free` chose this agent moments before, in this pass: re-check only that it is still
-- known and that no batch was bound to it meanwhile.
local agent = redis.call('HMGET', agent_key, 'agent_id', 'current_batch_id')
if not agent[1] or (agent[2] and agent[2] ~= '') then
  return false
end

local group_score = redis.call('ZSCORE', groups_key, version)
local popped = redis.call('ZPOPMIN', group_key, count)
if redis.call('ZCARD', group_key) == 0 then
  redis.call('ZREM', groups_key, version)
else
  -- only part of the group was taken: it goes to the back, as if it re-arrived now
  redis.call('ZADD', groups_key, now_ms, version)
end
local jobs, scores = {}, {}
for i = 1, #popped, 2 do
  local job_id = popped[i]
  local job_key = job_prefix .. job_id
  local job = redis.call('HMGET', job_key, 'status', 'org_id', 'test_path', 'priority', 'attempts')
  if job[1] == queued then
    redis.call('HSET', job_key, 'status', assigned, 'assigned_agent', agent_id,
      'batch_id', batch_id, 'attempts', (tonumber(job[5]) or 0) + 1, 'assigned_at', now)
    table.insert(jobs, {job_id = job_id, org_id = job[2], test_path = job[3],
      priority = tonumber(job[4])})
    scores[job_id] = popped[i + 1]
  end
end
if #jobs == 0 then
  return false
end

redis.call('HSET', batch_key, 'batch_id', batch_id, 'agent_id', agent_id, 'target', target,
  'app_version_id', version, 'created_at', now, 'jobs', cjson.encode(jobs),
  'job_scores', cjson.encode(scores), 'group_score', group_score or '')
redis.call('HSET', agent_key, 'current_batch_id', batch_id)
return redis.call('HGETALL', batch_key)
"""

# The compensation of _FORM_BATCH, for a batch no agent will run (see `_undo`).
# KEYS: agent, group, groups, batch
# ARGV: batch_id, job key prefix, assigned status, queued status, app_version_id,
#       the group's score in groups, then per job: job_id, its score in the group
# Returns the ids of the jobs put back. Jobs that left `assigned` to this batch meanwhile are
# left alone. assigned -> queued is in the contract's transition table.
# Job keys from a prefix, as in _FORM_BATCH: single Redis instance only.
_UNDO_BATCH = """
local agent_key, group_key, groups_key, batch_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local batch_id, job_prefix, assigned, queued = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local version, group_score = ARGV[5], ARGV[6]

local restored = {}
for i = 7, #ARGV, 2 do
  local job_id, score = ARGV[i], ARGV[i + 1]
  local job_key = job_prefix .. job_id
  local job = redis.call('HMGET', job_key, 'status', 'batch_id', 'attempts')
  if job[1] == assigned and job[2] == batch_id then
    redis.call('HSET', job_key, 'status', queued, 'assigned_agent', '', 'batch_id', '',
      'assigned_at', '', 'attempts', math.max((tonumber(job[3]) or 1) - 1, 0))
    redis.call('ZADD', group_key, score, job_id)
    table.insert(restored, job_id)
  end
end
if #restored > 0 then
  redis.call('ZADD', groups_key, 'LT', group_score, version)
end
if redis.call('HGET', agent_key, 'current_batch_id') == batch_id then
  redis.call('HSET', agent_key, 'current_batch_id', '')
end
redis.call('DEL', batch_key)
return restored
"""

Enqueue = Callable[[Redis, Batch], None]


def is_free(agent: Agent, target: str, now: datetime, timeout_s: float) -> bool:
    """May `agent` take a batch of `target` now? (pure)

    Free = of that target, alive (a heartbeat within `timeout_s`), not offline, no batch
    outstanding. The hand-over script (`_FORM_BATCH`) trusts this choice and re-checks only,
    atomically, that no batch was bound to the agent meanwhile.
    """
    return (
        agent.target == target
        and agent.state != AgentState.OFFLINE
        and not agent.current_batch_id
        and agent.is_alive(now, timeout_s)
    )


def agent_queue(connection: Redis, agent_id: str) -> Queue:
    """The agent's own RQ queue (JSON serializer)."""
    return Queue(names.agent_queue(agent_id), connection=connection, serializer=JSONSerializer)


def enqueue_batch(connection: Redis, batch: Batch) -> None:
    """Put `batch` on its agent's own RQ queue as one RQ job, enqueued by function name."""
    agent_queue(connection, batch.agent_id).enqueue(
        names.RUN_BATCH_FUNCTION,
        batch.to_json(),
        job_id=batch.batch_id,
        job_timeout=BATCH_JOB_TIMEOUT_S,
        result_ttl=BATCH_RESULT_TTL_S,
        failure_ttl=BATCH_FAILURE_TTL_S,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Formed:
    """A batch handed over in Redis, with what `_undo` needs to take it back."""

    batch: Batch
    job_scores: dict[str, str]  # job_id -> its score in the group before the pop
    group_score: str | None  # the group's score in groups before the pop

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> _Formed:
        """From a batch record as `_FORM_BATCH` writes it (read with decoded responses)."""
        return cls(Batch.from_redis(raw), json.loads(raw["job_scores"]), raw["group_score"] or None)


class Dispatcher:
    """Carries out dispatch passes; `store` decodes responses, `rq_connection` must not."""

    def __init__(
        self,
        store: Redis,
        rq_connection: Redis,
        *,
        batch_max: int,
        agent_timeout_s: float,
        policy: Policy = assign,
        enqueue: Enqueue = enqueue_batch,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._rq_connection = rq_connection
        self._batch_max = batch_max
        self._agent_timeout_s = agent_timeout_s
        self._policy = policy
        self._enqueue = enqueue
        self._clock = clock
        self._form_batch = store.register_script(_FORM_BATCH)
        self._undo_batch = store.register_script(_UNDO_BATCH)

    def dispatch_all(self) -> list[Batch]:
        """One pass over every target."""
        return self.dispatch_targets(Target)

    def dispatch_targets(self, targets: Iterable[str]) -> list[Batch]:
        """One pass over each of `targets`: a target whose pass fails does not stop the others.

        A failed pass is logged and left to the next one (the periodic tick at the latest).
        """
        batches: list[Batch] = []
        for target in targets:
            try:
                batches += self.dispatch(target)
            except REDIS_ERRORS as exc:
                log.warning("dispatch for target %s failed, Redis unreachable: %r", target, exc)
            except Exception:
                log.exception("dispatch for target %s failed", target)
        return batches

    def dispatch(self, target: str) -> list[Batch]:
        """One pass over `target`: returns the batches it enqueued."""
        agents = self.free_agents(target)
        if not agents:
            return []
        groups = self.pending_groups(target)
        if not groups:
            return []
        batches = []
        for assignment in self._policy(agents, groups, self._batch_max):
            formed = self._form(target, assignment)
            if formed is None:
                continue
            batch = formed.batch
            try:
                self._enqueue(self._rq_connection, batch)
            except Exception:
                log.exception(
                    "batch_id=%s formed for agent %s but not enqueued (job_ids=%s): undoing it",
                    batch.batch_id,
                    batch.agent_id,
                    _job_ids(batch),
                )
                self._undo(formed, "not enqueued")
                continue
            log.info(
                "dispatched batch_id=%s to agent %s: app version %s, job_ids=%s",
                batch.batch_id,
                batch.agent_id,
                batch.app_version_id,
                _job_ids(batch),
            )
            batches.append(batch)
        return batches

    def free_agents(self, target: str) -> list[FreeAgent]:
        """The target's free agents, by agent id."""
        agent_ids = sorted(self._store.smembers(Keys.AGENTS), key=str)
        pipe = self._store.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(Keys.agent(str(agent_id)))
        now = self._clock()
        return [
            FreeAgent(agent.agent_id, agent.installed_app_version)
            for agent in _agents(pipe.execute())
            if is_free(agent, target, now, self._agent_timeout_s)
        ]

    def pending_groups(self, target: str) -> list[PendingGroup]:
        versions = cast(
            list[tuple[str, float]],
            self._store.zrange(Keys.groups(target), 0, -1, withscores=True),
        )
        pipe = self._store.pipeline(transaction=False)
        for version, _ in versions:
            pipe.zcard(Keys.group(target, version))
        sizes = pipe.execute()
        return [
            PendingGroup(version, int(size), float(arrival))
            for (version, arrival), size in zip(versions, sizes, strict=True)
        ]

    def take_back(self, batch_id: str, why: str) -> bool:
        """Undo a batch bound to an agent that went offline (`why`), unless it has started.

        The batch is left to its agent (False) when one of its jobs is no longer `assigned`
        to it (the agent is running it and will report its end), or when its RQ job is no
        longer waiting on the agent's queue (a worker took it). Otherwise the RQ job is
        deleted, then the batch is undone (`_undo`): its jobs wait in their group again.
        """
        raw = self._store.hgetall(Keys.batch(batch_id))
        if not raw:
            log.warning("batch_id=%s to take back (%s) has no record: left alone", batch_id, why)
            return False
        formed = _Formed.from_redis(raw)
        batch = formed.batch
        if started := self._not_assigned(batch):
            log.info(
                "batch_id=%s not taken back (%s): job_ids=%s started, agent %s finishes it",
                batch_id,
                why,
                ",".join(started),
                batch.agent_id,
            )
            return False
        if not self._withdraw(batch):
            log.info(
                "batch_id=%s not taken back (%s): agent %s's worker has taken it (job_ids=%s)",
                batch_id,
                why,
                batch.agent_id,
                _job_ids(batch),
            )
            return False
        self._undo(formed, why)
        return True

    def _not_assigned(self, batch: Batch) -> list[str]:
        """Ids of the batch's jobs that are no longer `assigned` to it."""
        pipe = self._store.pipeline(transaction=False)
        for job in batch.jobs:
            pipe.hmget(Keys.job(job.job_id), ["status", "batch_id"])
        return [
            job.job_id
            for job, (status, job_batch) in zip(batch.jobs, pipe.execute(), strict=True)
            if status != JobStatus.ASSIGNED or job_batch != batch.batch_id
        ]

    def _withdraw(self, batch: Batch) -> bool:
        """Take the batch's RQ job off its agent's queue and delete it; False if a worker has it.

        LREM is atomic: once the job is off the queue, no worker can take it. A job that was
        not on the queue but still exists was taken by a worker; one that no longer exists
        cannot run.
        """
        removed = agent_queue(self._rq_connection, batch.agent_id).remove(batch.batch_id)
        try:
            rq_job = RqJob.fetch(
                batch.batch_id, connection=self._rq_connection, serializer=JSONSerializer
            )
        except NoSuchJobError:
            return True
        if not removed:
            return False
        rq_job.delete()
        return True

    def _form(self, target: str, assignment: Assignment) -> _Formed | None:
        batch_id = str(uuid.uuid4())
        now = format_timestamp(self._clock())
        formed = self._form_batch(
            keys=[
                Keys.agent(assignment.agent_id),
                Keys.group(target, assignment.app_version_id),
                Keys.groups(target),
                Keys.batch(batch_id),
            ],
            args=[
                assignment.agent_id,
                assignment.app_version_id,
                assignment.count,
                batch_id,
                now,
                timestamp_ms(now),
                Keys.job(""),  # the prefix of every job key
                JobStatus.QUEUED.value,
                JobStatus.ASSIGNED.value,
                target,
            ],
        )
        if not formed:
            return None
        return _Formed.from_redis(dict(zip(formed[::2], formed[1::2], strict=True)))

    def _undo(self, formed: _Formed, why: str) -> None:
        """Take back a batch that was handed over in Redis but that no agent will run (`why`).

        Atomically: its jobs still `assigned` to it go back to `queued` in their group with
        their original scores (so their original order) and their attempt count restored
        (the batch never ran); the group gets its place among the groups back; the
        agent is freed if the batch is still its outstanding one; the batch record goes.
        """
        batch = formed.batch
        pairs = [
            value for job in batch.jobs for value in (job.job_id, formed.job_scores[job.job_id])
        ]
        fallback_score = timestamp_ms(batch.created_at)  # the group had no score (not expected)
        restored = self._undo_batch(
            keys=[
                Keys.agent(batch.agent_id),
                Keys.group(batch.target, batch.app_version_id),
                Keys.groups(batch.target),
                Keys.batch(batch.batch_id),
            ],
            args=[
                batch.batch_id,
                Keys.job(""),
                JobStatus.ASSIGNED.value,
                JobStatus.QUEUED.value,
                batch.app_version_id,
                formed.group_score if formed.group_score is not None else fallback_score,
                *pairs,
            ],
        )
        log.warning(
            "batch_id=%s undone (%s): job_ids=%s back to queued in group %s/%s; agent %s released",
            batch.batch_id,
            why,
            ",".join(restored),
            batch.target,
            batch.app_version_id,
            batch.agent_id,
        )
        left = [job.job_id for job in batch.jobs if job.job_id not in restored]
        if left:
            log.warning(
                "batch_id=%s undone: job_ids=%s had left it meanwhile and were not touched",
                batch.batch_id,
                ",".join(left),
            )


def _job_ids(batch: Batch) -> str:
    return ",".join(job.job_id for job in batch.jobs)


def _agents(raws: Iterable[dict[str, str]]) -> list[Agent]:
    return [Agent.from_redis(raw) for raw in raws if raw]
