"""Dispatch: hand batches of pending jobs to the free agents of a target.

A pass reads the free agents and pending groups of a target, asks the policy for
assignments, and carries each out with ONE Lua script (`lua/form_batch.lua`: agent still
unbound and its lease fresh? take the chosen jobs from their group, mark them assigned, write
the batch, bind it to the agent), then enqueues the batch as one RQ job on the agent's own
queue and marks the batch `enqueued`. Enqueueing is a second step, so it is not atomic with
the first: when it fails, the batch is requeued at once (`Requeuer`); when the scheduler dies
between the two, the reaper finds the batch not enqueued and requeues it.

A group is one build, (org_id, app_version_id), of one target: two orgs never share a batch.
Groups of a target take turns. A group's score in `Keys.groups(target)` is the moment it
(re-)arrived: a new group arrives with its first job, and a group that a batch takes only
part of is re-scored as if it arrived at that moment. Cold agents take the group with the
lowest score, so they go round the waiting builds instead of serving, again and again,
a build that keeps receiving jobs. A job joining a group that is already waiting leaves
the group's score alone (`ZADD NX`), so a late job cannot pull a group forward.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.serializers import JSONSerializer

from qgjob_contract import leases, names
from qgjob_contract.events import JobResult, timestamp_ms, utc_now
from qgjob_contract.lua import script
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Batch, Lease, is_alive
from qgjob_contract.statuses import AgentState, ErrorReason, JobStatus, RequeueReason
from qgjob_contract.targets import Target
from qgjob_scheduler import retry
from qgjob_scheduler.errors import REDIS_ERRORS, DispatchFailed
from qgjob_scheduler.planning import Assignment as Planned
from qgjob_scheduler.policy import FreeAgent, PendingGroup, Policy, assign
from qgjob_scheduler.retry import Decision, RetryPolicy
from qgjob_scheduler.snapshot import Planner, read_situation

log = logging.getLogger(__name__)

# RQ job settings of a batch. The timeout only stops a runaway worker; losing an agent is
# the scheduler's business (leases), not RQ's.
BATCH_JOB_TIMEOUT_S = 24 * 3600
BATCH_RESULT_TTL_S = 24 * 3600
BATCH_FAILURE_TTL_S = 7 * 24 * 3600

# Fields the scheduler keeps in a batch hash next to those of records.Batch.
JOB_SCORES: Final = "job_scores"  # {job_id: its score in the group before the batch} (JSON)
GROUP_SCORE: Final = "group_score"  # the build's score in groups before the batch
FORMED_MS: Final = "formed_ms"  # Redis TIME when the batch was formed
ENQUEUED: Final = "enqueued"  # "1" once the batch's RQ job is on the agent's queue
BATCH_PRIVATE_FIELDS: Final = (JOB_SCORES, GROUP_SCORE, FORMED_MS, ENQUEUED)

# JOB_QUEUE_TTL_S's default: a job no agent took within an hour ends `error`/`expired`.
DEFAULT_QUEUE_TTL_S = 3600.0

Enqueue = Callable[[Redis, Batch], None]

# The result of a job whose cancel was asked before a batch took it (form_batch.lua).
CANCELLED_BEFORE_DISPATCH: Final = json.dumps(
    JobResult(
        outcome=JobStatus.CANCELLED,
        duration_s=0.0,
        install_paid=False,
        install_s=0.0,
        log_tail="cancelled before an agent took it",
        driver="",
        simulated=False,
        reason=ErrorReason.CANCELLED.value,
    )
)


def is_free(agent: Agent, lease: Lease | None, target: str, now_ms: int, timeout_s: float) -> bool:
    """May `agent` take a batch of `target` now? (pure)

    Free = of that target, its lease fresh on Redis time `now_ms`, the record is of the
    instance holding the lease (a restarted agent is free once it has reported), not
    offline, no batch outstanding. The hand-over script re-checks, atomically, that no batch
    was bound to the agent meanwhile and that its lease is still fresh.
    """
    return (
        agent.target == target
        and agent.state != AgentState.OFFLINE
        and not agent.current_batch_id
        and is_alive(lease, now_ms, timeout_s)
        and lease is not None
        and agent.instance_id == lease.instance_id
    )


def agent_queue(connection: Redis, agent_id: str) -> Queue:
    """The agent's own RQ queue (JSON serializer)."""
    return Queue(names.agent_queue(agent_id), connection=connection, serializer=JSONSerializer)


def enqueue_batch(
    connection: Redis,
    batch: Batch,
    *,
    result_ttl: float = BATCH_RESULT_TTL_S,
    failure_ttl: float = BATCH_FAILURE_TTL_S,
) -> None:
    """Put `batch` on its agent's own RQ queue as one RQ job, enqueued by function name.
    The TTLs bound what RQ keeps of it (main.py passes JOB_RETENTION_S, see retention.py)."""
    agent_queue(connection, batch.agent_id).enqueue(
        names.RUN_BATCH_FUNCTION,
        batch.to_json(),
        job_id=batch.batch_id,
        job_timeout=BATCH_JOB_TIMEOUT_S,
        result_ttl=int(result_ttl),
        failure_ttl=int(failure_ttl),
    )


@dataclass(frozen=True)
class Formed:
    """A batch handed over in Redis, with what the requeue script needs to take it back."""

    batch: Batch
    job_scores: dict[str, str]  # job_id -> its score in the group before the batch
    group_score: str | None  # the build's score in groups before the batch
    formed_ms: int
    enqueued: bool

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> Formed:
        """From a batch record as `form_batch.lua` writes it (read with decoded responses)."""
        return cls(
            Batch.from_redis(raw),
            json.loads(raw[JOB_SCORES]),
            raw.get(GROUP_SCORE) or None,
            int(raw.get(FORMED_MS) or 0),
            raw.get(ENQUEUED) == "1",
        )


@dataclass(frozen=True)
class Retry:
    """One job to hand to the requeue script: what `retry.decide` chose after its attempt."""

    job_id: str
    score: str  # its score in the group before the batch
    decision: Decision
    outcome: str  # the attempt's outcome and reason, as its history entry records them
    reason: str
    result: str = ""  # the result to store if it ends (JSON); "" = an error from `reason`
    finished_at: str = ""  # when the attempt ended, as its agent reported; "" = the call's now


class Requeuer:
    """The one way jobs go back to their group (`lua/requeue_batch.lua`), and RQ withdrawal."""

    def __init__(
        self,
        store: Redis,
        rq_connection: Redis,
        *,
        policy: RetryPolicy | None = None,
        queue_ttl_s: float = DEFAULT_QUEUE_TTL_S,
        jitter: Callable[[], float] = random.random,
    ):
        self._store = store
        self._rq_connection = rq_connection
        self.policy = policy or RetryPolicy()
        self._queue_ttl_ms = int(queue_ttl_s * 1000)
        self.jitter = jitter
        self._requeue = store.register_script(script("qgjob_scheduler", "requeue_batch"))

    def requeue(self, formed: Formed, reason: RequeueReason) -> tuple[list[str], list[str]]:
        """End the batch: its unfinished jobs go back to their group, in their order.

        A batch that never ran (not enqueued, taken back) gives the attempts back; one that
        ran (agent lost or restarted) records the attempt in each job's history, and
        `retry.decide` says, per job, whether it goes back (after a backoff, away from this
        agent) or ends `error` (out of attempts). Returns (requeued, ended job ids).
        """
        batch = formed.batch
        restore = reason in (RequeueReason.NOT_ENQUEUED, RequeueReason.TAKEN_BACK)
        job_ids = [job.job_id for job in batch.jobs]
        pipe = self._store.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(Keys.job(job_id), ["history", "retries", "cancel_requested_at"])
        retries = []
        # One jitter for the whole batch: its jobs come back together, in their order, as
        # one batch for the next agent (per-job delays would split it and reorder them).
        jitter = self.jitter()
        for job_id, (raw_history, wanted, cancel_at) in zip(job_ids, pipe.execute(), strict=True):
            decision = retry.decide(
                JobStatus.ERROR.value,
                reason.value,
                json.loads(raw_history) if raw_history else [],
                retries=int(wanted or 0),
                agent_id=batch.agent_id,
                cancel_requested=bool(cancel_at),
                policy=self.policy,
                jitter=jitter,
            )
            retries.append(
                Retry(job_id, formed.job_scores[job_id], decision, JobStatus.ERROR, reason.value)
            )
        return self.requeue_jobs(
            batch, formed.group_score, retries, why=reason.value, restore=restore, end_batch=True
        )

    def requeue_jobs(
        self,
        batch: Batch,
        group_score: str | None,
        retries: list[Retry],
        *,
        why: str,
        restore: bool = False,
        end_batch: bool = False,
        now: str | None = None,
    ) -> tuple[list[str], list[str]]:
        """Run the requeue script on `retries` of `batch` (see `lua/requeue_batch.lua`).

        Without `end_batch`, only these jobs leave the batch (their attempt ended with a
        retried outcome) and the agent goes on with the rest of it.
        """
        args: list[str | int | float] = []
        for item in retries:
            decision = item.decision
            args += [
                item.job_id,
                item.score,
                "1" if decision.action is retry.Action.END else "0",
                int(decision.delay_s * 1000),
                decision.avoid_agent or "",
                int(self.policy.avoid_s * 1000) if decision.avoid_agent else 0,
                item.outcome,
                item.reason,
                item.result,
                item.finished_at,
            ]
        fallback_score = timestamp_ms(batch.created_at)  # the group had no score (not expected)
        build = names.build(batch.org_id, batch.app_version_id)
        requeued, ended = self._requeue(
            keys=[
                Keys.agent(batch.agent_id),
                Keys.group(batch.target, batch.org_id, batch.app_version_id),
                Keys.groups(batch.target),
                Keys.batch(batch.batch_id),
                Keys.QUEUE_EXPIRY,
            ],
            args=[
                batch.batch_id,
                Keys.job(""),
                JobStatus.ASSIGNED.value,
                JobStatus.RUNNING.value,
                JobStatus.QUEUED.value,
                JobStatus.CANCELLED.value,
                build,
                group_score if group_score is not None else fallback_score,
                "1" if restore else "0",
                now or utc_now(),
                retry.HISTORY_MAX,
                batch.agent_id,
                "1" if end_batch else "0",
                self._queue_ttl_ms,
                *args,
            ],
        )
        notes = {item.job_id: item.decision.note for item in retries if item.decision.note}
        log.warning(
            "batch_id=%s requeued (%s) from agent %s: job_ids=%s back in group %s/%s%s%s",
            batch.batch_id,
            why,
            batch.agent_id,
            ",".join(requeued) or "none",
            batch.target,
            build,
            f"; job_ids={','.join(ended)} ended instead" if ended else "",
            "".join(f"; {job_id}: {note}" for job_id, note in notes.items()),
        )
        touched = {*requeued, *ended}
        if left := [item.job_id for item in retries if item.job_id not in touched]:
            log.info(
                "batch_id=%s: job_ids=%s had left it meanwhile and were not touched",
                batch.batch_id,
                ",".join(left),
            )
        return list(requeued), list(ended)

    def withdraw(self, batch: Batch, *, started_too: bool) -> bool:
        """Take the batch's RQ job off its agent's queue and delete it.

        LREM is atomic: once the job is off the queue, no worker can take it. With
        `started_too` (the agent is dead: lost, or replaced by a new instance) a job its
        worker had taken is deleted as well (RQ removes it from its registries). Otherwise
        returns False when a worker has taken the job (the agent runs it).
        """
        removed = agent_queue(self._rq_connection, batch.agent_id).remove(batch.batch_id)
        try:
            rq_job = RqJob.fetch(
                batch.batch_id, connection=self._rq_connection, serializer=JSONSerializer
            )
        except NoSuchJobError:
            return True
        if not removed and not started_too:
            return False
        rq_job.delete()
        return True

    def rq_job_exists(self, batch_id: str) -> bool:
        return RqJob.exists(batch_id, connection=self._rq_connection)


class Dispatcher:
    """Carries out dispatch passes; `store` decodes responses, `rq_connection` must not."""

    def __init__(
        self,
        store: Redis,
        rq_connection: Redis,
        requeuer: Requeuer,
        *,
        batch_max: int,
        agent_timeout_s: float,
        policy: Policy = assign,
        enqueue: Enqueue = enqueue_batch,
        planner: Planner | None = None,
    ) -> None:
        self._store = store
        self._rq_connection = rq_connection
        self._requeuer = requeuer
        self._batch_max = batch_max
        self._agent_timeout_s = agent_timeout_s
        self._policy = policy
        self._enqueue = enqueue
        # With a planner, passes plan with `qgjob_scheduler.planning` (SCHEDULER_POLICY) on
        # a snapshot of the target (`snapshot.read_situation`); `policy` is then unused.
        self._planner = planner
        self._form_batch = store.register_script(script("qgjob_scheduler", "form_batch"))
        self._mark_enqueued = store.register_script(script("qgjob_scheduler", "mark_enqueued"))

    def dispatch_all(self) -> list[Batch]:
        """One pass over every target."""
        return self.dispatch_targets(Target)

    def dispatch_targets(self, targets: Iterable[str]) -> list[Batch]:
        """One pass over each of `targets`: a target whose pass fails does not stop the others.

        A failed pass is logged and left to the next one (the periodic tick at the latest);
        once every target was tried, DispatchFailed says that some failed (the health of the
        scheduler depends on it).
        """
        batches: list[Batch] = []
        failed: list[str] = []
        for target in targets:
            try:
                batches += self.dispatch(target)
            except REDIS_ERRORS as exc:
                log.warning("dispatch for target %s failed, Redis unreachable: %r", target, exc)
                failed.append(str(target))
            except Exception:
                log.exception("dispatch for target %s failed", target)
                failed.append(str(target))
        if failed:
            raise DispatchFailed(f"dispatch failed for target(s) {', '.join(failed)}")
        return batches

    def dispatch(self, target: str) -> list[Batch]:
        """One pass over `target`: returns the batches it enqueued."""
        if self._planner is not None:
            return self._dispatch_planned(target, self._planner)
        agents = self.free_agents(target)
        if not agents:
            return []
        groups = self.pending_groups(target)
        if not groups:
            return []
        formed = []
        for assignment in self._policy(agents, groups, self._batch_max):
            org_id, version = names.parse_build(assignment.build)
            group_key = Keys.group(target, org_id, version)
            job_ids = cast(list[str], self._store.zrange(group_key, 0, assignment.count - 1))
            formed.append(self._form(target, assignment.agent_id, org_id, version, job_ids))
        return self._hand_over(formed)

    def _dispatch_planned(self, target: str, planner: Planner) -> list[Batch]:
        situation = read_situation(
            self._store,
            target,
            planner,
            batch_max=self._batch_max,
            agent_timeout_s=self._agent_timeout_s,
            now=datetime.now(UTC),
        )
        if situation is None:
            return []
        plan: list[Planned] = planner.policy(situation)
        return self._hand_over(
            self._form(
                target,
                a.agent_id,
                a.org_id,
                a.app_version_id,
                list(a.job_ids),
                force_install=a.force_install,
            )
            for a in plan
        )

    def _hand_over(self, batches_formed: Iterable[Formed | None]) -> list[Batch]:
        """Enqueue each batch formed in Redis (requeue it if that fails); those enqueued."""
        batches = []
        for formed in batches_formed:
            if formed is None:
                continue
            batch = formed.batch
            try:
                self._enqueue(self._rq_connection, batch)
            except Exception:
                log.exception(
                    "batch_id=%s formed for agent %s but not enqueued (job_ids=%s): requeuing",
                    batch.batch_id,
                    batch.agent_id,
                    _job_ids(batch),
                )
                self._requeuer.withdraw(batch, started_too=False)
                self._requeuer.requeue(formed, RequeueReason.NOT_ENQUEUED)
                continue
            # If this fails (Redis gone), the reaper finds the RQ job and marks it itself.
            if not self._mark_enqueued(keys=[Keys.batch(batch.batch_id)], args=[ENQUEUED]):
                # another replica requeued the batch meanwhile (it took too long to enqueue)
                log.warning(
                    "batch_id=%s was requeued while being enqueued: its RQ job is withdrawn",
                    batch.batch_id,
                )
                self._requeuer.withdraw(batch, started_too=False)
                continue
            log.info(
                "dispatched batch_id=%s to agent %s: build %s/%s, job_ids=%s",
                batch.batch_id,
                batch.agent_id,
                batch.org_id,
                batch.app_version_id,
                _job_ids(batch),
            )
            batches.append(batch)
        return batches

    def free_agents(self, target: str) -> list[FreeAgent]:
        """The target's free agents, by agent id."""
        agent_ids = sorted(str(agent_id) for agent_id in self._store.smembers(Keys.AGENTS))
        pipe = self._store.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(Keys.agent(agent_id))
        agents = _agents(pipe.execute())
        lease_of = leases.read(self._store, (agent.agent_id for agent in agents))
        now_ms = leases.redis_now_ms(self._store)
        return [
            FreeAgent(agent.agent_id, installed_build(agent))
            for agent in agents
            if is_free(agent, lease_of.get(agent.agent_id), target, now_ms, self._agent_timeout_s)
        ]

    def pending_groups(self, target: str) -> list[PendingGroup]:
        builds = cast(
            list[tuple[str, float]],
            self._store.zrange(Keys.groups(target), 0, -1, withscores=True),
        )
        pipe = self._store.pipeline(transaction=False)
        for build, _ in builds:
            pipe.zcard(Keys.group(target, *names.parse_build(build)))
        sizes = pipe.execute()
        return [
            PendingGroup(build, int(size), float(arrival))
            for (build, arrival), size in zip(builds, sizes, strict=True)
        ]

    def take_back(self, batch_id: str, why: str) -> bool:
        """Requeue a batch bound to an agent that went offline (`why`), unless it has started.

        The batch is left to its agent (False) when one of its jobs is no longer `assigned`
        to it (the agent is running it and will report its end), or when its RQ job is no
        longer waiting on the agent's queue (a worker took it). Otherwise the RQ job is
        deleted, then the batch is requeued: its jobs wait in their group again, attempts
        given back.
        """
        raw = self._store.hgetall(Keys.batch(batch_id))
        if not raw:
            log.warning("batch_id=%s to take back (%s) has no record: left alone", batch_id, why)
            return False
        formed = Formed.from_redis(raw)
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
        if not self._requeuer.withdraw(batch, started_too=False):
            log.info(
                "batch_id=%s not taken back (%s): agent %s's worker has taken it (job_ids=%s)",
                batch_id,
                why,
                batch.agent_id,
                _job_ids(batch),
            )
            return False
        log.info("batch_id=%s taken back: %s", batch_id, why)
        self._requeuer.requeue(formed, RequeueReason.TAKEN_BACK)
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

    def _form(
        self,
        target: str,
        agent_id: str,
        org_id: str,
        version: str,
        job_ids: list[str],
        *,
        force_install: bool = False,
    ) -> Formed | None:
        """Hand `job_ids` (in the order the agent runs them) of one build to `agent_id`."""
        if not job_ids:
            return None
        group_key = Keys.group(target, org_id, version)
        build = names.build(org_id, version)
        batch_id = str(uuid.uuid4())
        now_iso = utc_now()
        formed = self._form_batch(
            keys=[
                Keys.agent(agent_id),
                Keys.lease(agent_id),
                group_key,
                Keys.groups(target),
                Keys.batch(batch_id),
                Keys.QUEUE_EXPIRY,
            ],
            args=[
                agent_id,
                org_id,
                version,
                build,
                batch_id,
                now_iso,
                timestamp_ms(now_iso),
                Keys.job(""),  # the prefix of every job key
                JobStatus.QUEUED.value,
                JobStatus.ASSIGNED.value,
                AgentState.OFFLINE.value,
                target,
                int(self._agent_timeout_s * 1000),
                JobStatus.CANCELLED.value,
                CANCELLED_BEFORE_DISPATCH,
                *job_ids,
            ],
        )
        if not formed:
            return None
        raw = dict(zip(formed[::2], formed[1::2], strict=True))
        if force_install:  # read by the agent from the batch it is sent (records.Batch)
            self._store.hset(Keys.batch(batch_id), "force_install", "1")
            raw["force_install"] = "1"
        return Formed.from_redis(raw)


def installed_build(agent: Agent) -> str | None:
    """The build the agent has installed, as a groups member, or None."""
    if agent.installed_app_version is None or agent.installed_org_id is None:
        return None
    return names.build(agent.installed_org_id, agent.installed_app_version)


def _job_ids(batch: Batch) -> str:
    return ",".join(job.job_id for job in batch.jobs)


def _agents(raws: Iterable[dict[str, str]]) -> list[Agent]:
    return [Agent.from_redis(raw) for raw in raws if raw]
