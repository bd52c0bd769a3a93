"""The reaper: batches whose agent is gone go back to their groups, within one tick.

Every tick (`SCHEDULER_TICK_S`) it looks at each agent that has a batch bound to it and
asks `verdict` (pure) whether that batch can still end by the agent's own reports:
- the agent's lease expired on Redis TIME (killed, OOM, host gone): `agent_lost`;
- a new instance of the agent holds the lease (a restart under the same agent id):
  `agent_restarted`, at once;
- the batch was formed but never marked enqueued, and after `ENQUEUE_GRACE_S` no RQ job
  exists for it (the scheduler died between the two steps): `not_enqueued`.
Then the dead agent's RQ job is withdrawn (off its queue, or out of the registry its dead
worker left it in) and the batch is requeued by THE requeue script (`Requeuer`): unfinished
jobs go back to their group in their order, the attempt recorded in their history. A report
that arrives late from the dead batch changes nothing: its jobs no longer name that batch.

It also settles ended batches (`settle`): once a batch ended (its batch.finished, or a
heartbeat naming it as `last_batch_id`) more than `report_grace_s` ago, each of its jobs that
still has no final status ends `error` (reason `not_reported`), or goes back to its group
when `retry.decide` retries it (through the requeue script), and the batch record goes.
The grace lets a report that the broker redelivered after the end be applied first.

Every step is conditional in Redis (the requeue acts only on jobs still of that batch, and
frees the agent only if still bound to it), so several scheduler replicas may run it at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from redis import Redis, WatchError
from redis.client import Pipeline

from qgjob_contract import leases
from qgjob_contract.events import utc_now
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Job, Lease
from qgjob_contract.statuses import ErrorReason, JobStatus, RequeueReason
from qgjob_scheduler import transitions
from qgjob_scheduler.atomic import fields, transaction
from qgjob_scheduler.dispatch import ENQUEUED, Formed, Requeuer, Retry
from qgjob_scheduler.retry import Action

log = logging.getLogger(__name__)

# How long a formed batch may wait for its RQ job before the reaper looks for it.
ENQUEUE_GRACE_S: Final = 5.0
# How long after a batch ended its jobs' reports may still arrive before they count as lost.
REPORT_GRACE_S: Final = 5.0


def verdict(
    batch: Formed,
    lease: Lease | None,
    now_ms: int,
    timeout_s: float,
    *,
    enqueue_grace_s: float = ENQUEUE_GRACE_S,
    renewable_since_ms: int = 0,
) -> RequeueReason | None:
    """Why the batch must be requeued now, or None while its agent may still end it (pure).

    A lease counts as renewed no earlier than `renewable_since_ms`: when Redis was
    restarted or unreachable, no agent could renew, so no lease expires before the agents had
    `timeout_s` to renew again. An agent never seen to renew counts as lost once the batch is
    older than the timeout (a batch is only bound to an agent with a fresh lease).
    """
    if (
        lease is not None
        and batch.batch.instance_id
        and (lease.instance_id != batch.batch.instance_id)
    ):
        return RequeueReason.AGENT_RESTARTED
    if lease is not None:
        renewed = max(lease.renewed_ms, renewable_since_ms)
        if now_ms - renewed > timeout_s * 1000:
            return RequeueReason.AGENT_LOST
    elif now_ms - max(batch.formed_ms, renewable_since_ms) > timeout_s * 1000:
        return RequeueReason.AGENT_LOST
    if not batch.enqueued and now_ms - batch.formed_ms > enqueue_grace_s * 1000:
        return RequeueReason.NOT_ENQUEUED
    return None


class Reaper:
    def __init__(
        self,
        store: Redis,
        requeuer: Requeuer,
        *,
        agent_timeout_s: float,
        enqueue_grace_s: float = ENQUEUE_GRACE_S,
        report_grace_s: float = REPORT_GRACE_S,
    ) -> None:
        self._store = store
        self._requeuer = requeuer
        self._timeout_s = agent_timeout_s
        self._grace_s = enqueue_grace_s
        self._report_grace_ms = int(report_grace_s * 1000)
        # Redis TIME of this reaper's last pass that reached Redis (see `_renewable_since`).
        self._last_pass_ms: int | None = None

    def tick(self) -> None:
        """What the scheduler's tick asks of the reaper: lost agents, then ended batches."""
        self.reap()
        self.settle()

    def settle(self) -> list[str]:
        """Settle the batches that ended more than the report grace ago; returns the ids of
        the jobs ended `error` (`not_reported`)."""
        now_ms = leases.redis_now_ms(self._store)
        due = self._store.zrangebyscore(Keys.ENDED_BATCHES, "-inf", now_ms - self._report_grace_ms)
        ended: list[str] = []
        for batch_id in due:
            ended += self._settle_one(str(batch_id))
        return ended

    def _settle_one(self, batch_id: str) -> list[str]:
        batch_key = Keys.batch(batch_id)
        policy = self._requeuer.policy

        def settle(pipe: Pipeline) -> tuple[list[Job], Formed | None, list[Retry]]:
            raw = pipe.hgetall(batch_key)
            formed = Formed.from_redis(raw) if raw else None
            moved: list[Job] = []
            retries: list[Retry] = []
            if formed is not None:
                batch = formed.batch
                job_keys = [Keys.job(job.job_id) for job in batch.jobs]
                pipe.watch(*job_keys)  # type: ignore[no-untyped-call]
                now = utc_now()
                jitter = self._requeuer.jitter()  # one per batch: its jobs come back together
                for job_key in job_keys:
                    raw_job = pipe.hgetall(job_key)
                    job = Job.from_redis(raw_job) if raw_job else None
                    lost = transitions.end_unreported(job, batch_id, batch.agent_id, now)
                    if lost is None or job is None:
                        continue
                    reason = ErrorReason.NOT_REPORTED.value
                    decision = transitions.retry_decision(
                        job,
                        JobStatus.ERROR,
                        reason,
                        batch.agent_id,
                        policy=policy,
                        jitter=jitter,
                    )
                    if decision.action is Action.REQUEUE:
                        score = formed.job_scores.get(job.job_id, "")
                        retries.append(Retry(job.job_id, score, decision, JobStatus.ERROR, reason))
                    else:
                        moved.append(lost)
            pipe.multi()
            for job in moved:
                pipe.hset(Keys.job(job.job_id), mapping=fields(job.to_redis()))
            if not retries:
                pipe.delete(batch_key)
                pipe.zrem(Keys.ENDED_BATCHES, batch_id)
            # else the batch stays among the ended ones until the requeue below has run: if it
            # fails, the next pass settles the same jobs again (they are still bound to it).
            return moved, formed, retries

        moved, formed, retries = transaction(self._store, batch_key, settle)
        for job in moved:
            log.warning(
                "job_id=%s -> %s (%s): batch_id=%s ended on agent %s without reporting it",
                job.job_id,
                job.status,
                ErrorReason.NOT_REPORTED.value,
                batch_id,
                job.assigned_agent,
            )
        if formed is not None and retries:
            # the script ends the batch (its record goes); the agent is free already
            self._requeuer.requeue_jobs(
                formed.batch,
                formed.group_score,
                retries,
                why=ErrorReason.NOT_REPORTED.value,
                end_batch=True,
            )
            self._store.zrem(Keys.ENDED_BATCHES, batch_id)
        return [job.job_id for job in moved]

    def reap(self) -> list[str]:
        """One look at every bound agent; returns the ids of the batches requeued."""
        now_ms = leases.redis_now_ms(self._store)
        renewable_since = self._renewable_since(now_ms)
        agents = self._bound_agents()
        if not agents:
            return []
        lease_of = leases.read(self._store, (agent.agent_id for agent in agents))
        reaped = []
        for agent in agents:
            batch_id = agent.current_batch_id
            assert batch_id is not None  # _bound_agents
            raw = self._store.hgetall(Keys.batch(batch_id))
            if not raw:
                self._unbind_missing(agent.agent_id, batch_id)
                continue
            formed = Formed.from_redis(raw)
            reason = verdict(
                formed,
                lease_of.get(agent.agent_id),
                now_ms,
                self._timeout_s,
                enqueue_grace_s=self._grace_s,
                renewable_since_ms=renewable_since,
            )
            if reason is None:
                continue
            if reason is RequeueReason.NOT_ENQUEUED:
                if self._requeuer.rq_job_exists(batch_id):
                    # enqueued, but the scheduler that did it died before saying so
                    self._store.hset(Keys.batch(batch_id), ENQUEUED, "1")  # it exists: read above
                    continue
            else:
                self._requeuer.withdraw(formed.batch, started_too=True)
            log.warning(
                "batch_id=%s of agent %s: %s, requeuing its unfinished jobs",
                batch_id,
                agent.agent_id,
                reason.value,
            )
            self._requeuer.requeue(formed, reason)
            reaped.append(batch_id)
        return reaped

    def _renewable_since(self, now_ms: int) -> int:
        """Since when agents could renew their leases, as far as this reaper can tell: not
        before Redis last started, nor before this reaper reached Redis again after it could
        not (a gap of more than half the timeout between two of its passes)."""
        uptime_s = int(self._store.info("server").get("uptime_in_seconds", 0))
        since = now_ms - uptime_s * 1000
        last, self._last_pass_ms = self._last_pass_ms, now_ms
        if last is None or now_ms - last > self._timeout_s * 500:
            since = max(since, now_ms)
        return since

    def _bound_agents(self) -> list[Agent]:
        agent_ids = sorted(str(agent_id) for agent_id in self._store.smembers(Keys.AGENTS))
        pipe = self._store.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(Keys.agent(agent_id))
        return [agent for agent in _agents(pipe.execute()) if agent.current_batch_id]

    def _unbind_missing(self, agent_id: str, batch_id: str) -> None:
        """An agent bound to a batch that has no record (not expected): free it."""
        key = Keys.agent(agent_id)
        with self._store.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                if pipe.hget(key, "current_batch_id") != batch_id:
                    return
                pipe.multi()
                pipe.hset(key, "current_batch_id", "")
                pipe.execute()
            except WatchError:
                return  # the agent changed meanwhile: the next tick looks again
        log.warning(
            "agent %s was bound to batch_id=%s, which has no record: freed", agent_id, batch_id
        )


def _agents(raws: Iterable[dict[str, str]]) -> list[Agent]:
    return [Agent.from_redis(raw) for raw in raws if raw]
