"""Dispatch: hand batches of pending jobs to the free agents of a target.

A pass reads the free agents and pending groups of a target, asks the policy for
assignments, and carries each out with ONE Lua script (agent still free? pop the jobs, mark
them assigned, write the batch, bind it to the agent), then enqueues the batch as one RQ job
on the agent's own queue.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import cast

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from qgjob_contract import names
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Batch, BatchJob
from qgjob_contract.statuses import AgentState, JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler.payloads import iso
from qgjob_scheduler.policy import Assignment, FreeAgent, PendingGroup, Policy, assign

log = logging.getLogger(__name__)

# RQ job settings of a batch. The timeout only stops a runaway worker; losing an agent is
# the scheduler's business (heartbeats), not RQ's.
BATCH_JOB_TIMEOUT_S = 24 * 3600
BATCH_RESULT_TTL_S = 24 * 3600
BATCH_FAILURE_TTL_S = 7 * 24 * 3600

# KEYS: agent, group, groups, batch
# ARGV: agent_id, app_version_id, count, batch_id, now, job key prefix,
#       queued status, assigned status, offline state, target
# Returns the batch's jobs as a JSON list, or false when nothing was dispatched.
_FORM_BATCH = """
local agent_key, group_key, groups_key, batch_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local agent_id, version, count, batch_id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job_prefix, queued, assigned, offline, target = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]

local agent = redis.call('HMGET', agent_key, 'agent_id', 'current_batch_id', 'state')
if not agent[1] or (agent[2] and agent[2] ~= '') or agent[3] == offline then
  return false
end

local popped = redis.call('ZPOPMIN', group_key, count)
if redis.call('ZCARD', group_key) == 0 then
  redis.call('ZREM', groups_key, version)
end
local jobs = {}
for i = 1, #popped, 2 do
  local job_id = popped[i]
  local job_key = job_prefix .. job_id
  local job = redis.call('HMGET', job_key, 'status', 'org_id', 'test_path', 'priority', 'attempts')
  if job[1] == queued then
    redis.call('HSET', job_key, 'status', assigned, 'assigned_agent', agent_id,
      'batch_id', batch_id, 'attempts', (tonumber(job[5]) or 0) + 1, 'assigned_at', now)
    table.insert(jobs, {job_id = job_id, org_id = job[2], test_path = job[3],
      priority = tonumber(job[4])})
  end
end
if #jobs == 0 then
  return false
end

local jobs_json = cjson.encode(jobs)
redis.call('HSET', batch_key, 'batch_id', batch_id, 'agent_id', agent_id, 'target', target,
  'app_version_id', version, 'created_at', now, 'jobs', jobs_json)
redis.call('HSET', agent_key, 'current_batch_id', batch_id)
return jobs_json
"""


def is_free(agent: Agent, target: str, now: datetime, timeout_s: float) -> bool:
    """May `agent` take a batch of `target` now? (pure)

    Free = of that target, a heartbeat within `timeout_s`, not offline, no batch outstanding.
    """
    if agent.target != target or agent.state == AgentState.OFFLINE:
        return False
    if agent.current_batch_id or agent.last_heartbeat is None:
        return False
    try:
        seen = datetime.fromisoformat(agent.last_heartbeat)
    except ValueError:
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return now - seen <= timedelta(seconds=timeout_s)


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._rq_connection = rq_connection
        self._batch_max = batch_max
        self._agent_timeout_s = agent_timeout_s
        self._policy = policy
        self._clock = clock
        self._form_batch = store.register_script(_FORM_BATCH)

    def dispatch_all(self) -> list[Batch]:
        """One pass over every target."""
        return [batch for target in Target for batch in self.dispatch(target)]

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
            batch = self._form(target, assignment)
            if batch is None:
                continue
            try:
                self._enqueue(batch)
            except Exception:
                # Jobs stay assigned to an agent that will never get them, until agent
                # leases (roadmap) hand them back.
                log.exception(
                    "batch_id=%s formed for agent %s but not enqueued: job_ids=%s",
                    batch.batch_id,
                    batch.agent_id,
                    ",".join(job.job_id for job in batch.jobs),
                )
                raise
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

    def _form(self, target: str, assignment: Assignment) -> Batch | None:
        batch_id = str(uuid.uuid4())
        now = iso(self._clock())
        jobs_json = self._form_batch(
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
                Keys.job(""),  # the prefix of every job key
                JobStatus.QUEUED.value,
                JobStatus.ASSIGNED.value,
                AgentState.OFFLINE.value,
                target,
            ],
        )
        if not jobs_json:
            return None
        return Batch(
            batch_id=batch_id,
            agent_id=assignment.agent_id,
            target=target,
            app_version_id=assignment.app_version_id,
            created_at=now,
            jobs=[BatchJob(**job) for job in json.loads(jobs_json)],
        )

    def _enqueue(self, batch: Batch) -> None:
        queue = Queue(
            names.agent_queue(batch.agent_id),
            connection=self._rq_connection,
            serializer=JSONSerializer,
        )
        queue.enqueue(
            names.RUN_BATCH_FUNCTION,
            batch.to_json(),
            job_id=batch.batch_id,
            job_timeout=BATCH_JOB_TIMEOUT_S,
            result_ttl=BATCH_RESULT_TTL_S,
            failure_ttl=BATCH_FAILURE_TTL_S,
        )
        log.info(
            "dispatched batch_id=%s to agent %s: app version %s, job_ids=%s",
            batch.batch_id,
            batch.agent_id,
            batch.app_version_id,
            ",".join(job.job_id for job in batch.jobs),
        )


def _agents(raws: Iterable[dict[str, str]]) -> list[Agent]:
    return [Agent.from_redis(raw) for raw in raws if raw]
