"""What the scheduler does with each event. Every effect is stored in Redis before return.

Handlers do not dispatch: they mark the targets whose situation changed (jobs joined a group,
an agent reported or was freed), and the consumer runs one dispatch pass over those targets
once every delivery it pulled in together has been applied (`take_dirty`).

Handlers are idempotent: a redelivered event finds its effect already there and changes
nothing. Events that do not apply (unknown job, stale batch, duplicate) are logged and
dropped; a payload that cannot be applied at all raises InvalidEvent.

An agent that reports `offline` (it is stopping) while the scheduler still holds a batch bound
to it will not start that batch: the handler asks `take_back` (the dispatcher's) to return the
batch's jobs to their group, unless the agent has started it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from redis import Redis
from redis.client import Pipeline

from qgjob_contract import names
from qgjob_contract.events import (
    AgentCounters,
    AgentHeartbeat,
    BatchFinished,
    Envelope,
    EventType,
    JobFinished,
    JobReport,
    JobResult,
    JobsCancelRequested,
    JobsSubmitted,
    JobStarted,
    timestamp_ms,
    utc_now,
)
from qgjob_contract.lua import script
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Batch, Job, Lease
from qgjob_contract.statuses import AgentState, ErrorReason, JobStatus
from qgjob_scheduler import history, transitions
from qgjob_scheduler.atomic import Guard, guarded
from qgjob_scheduler.dispatch import DEFAULT_QUEUE_TTL_S, Formed, Requeuer, Retry
from qgjob_scheduler.grouping import PRIORITY_WEIGHT
from qgjob_scheduler.grouping import group_score as group_score_of
from qgjob_scheduler.jobcontrol import Canceller
from qgjob_scheduler.payloads import parse, timestamp
from qgjob_scheduler.retry import Action
from qgjob_scheduler.transitions import Verdict

log = logging.getLogger(__name__)

TakeBack = Callable[[str, str], object]  # (batch_id, why): `Dispatcher.take_back`


class EventHandler:
    def __init__(
        self,
        store: Redis,
        *,
        take_back: TakeBack,
        requeuer: Requeuer | None = None,
        queue_ttl_s: float = DEFAULT_QUEUE_TTL_S,
    ) -> None:
        self._store = store
        self._take_back = take_back
        # Jobs whose attempt ended with a retried outcome go back through it.
        self._requeuer = requeuer or Requeuer(store, store, queue_ttl_s=queue_ttl_s)
        self._queue_ttl_ms = int(queue_ttl_s * 1000)
        self._cancel = Canceller(store)
        self._join_groups = store.register_script(script("qgjob_scheduler", "join_groups"))
        self._dirty: set[str] = set()
        self._handlers: dict[EventType, Callable[[Envelope], None]] = {
            EventType.JOBS_SUBMITTED: self.on_jobs_submitted,
            EventType.JOB_STARTED: self.on_job_started,
            EventType.JOB_FINISHED: self.on_job_finished,
            EventType.BATCH_FINISHED: self.on_batch_finished,
            EventType.AGENT_HEARTBEAT: self.on_agent_heartbeat,
            EventType.JOBS_CANCEL_REQUESTED: self.on_jobs_cancel_requested,
        }

    def handle(self, event: Envelope) -> None:
        self._handlers[event.type](event)

    def take_dirty(self) -> list[str]:
        """The targets marked since the last call, which a dispatch pass should now visit."""
        dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def on_jobs_submitted(self, event: Envelope) -> None:
        """Every queued job of the request joins its group, in the request's order, in one
        atomic step."""
        jobs = parse(JobsSubmitted, event.payload)["jobs"]
        keys: list[str] = [Keys.ARRIVAL_SEQ, Keys.QUEUE_EXPIRY]
        args: list[str | int] = [JobStatus.QUEUED.value, PRIORITY_WEIGHT, self._queue_ttl_ms]
        for job in jobs:
            target, org_id, version = job["target"].value, job["org_id"], job["app_version_id"]
            keys += [
                Keys.job(job["job_id"]),
                Keys.group(target, org_id, version),
                Keys.groups(target),
            ]
            args += [
                job["job_id"],
                names.build(org_id, version),
                job["priority"],
                timestamp_ms(job["created_at"]),
            ]
        statuses = self._join_groups(keys=keys, args=args)
        for job, status in zip(jobs, statuses, strict=True):
            target, job_id = job["target"].value, job["job_id"]
            if status == JobStatus.QUEUED:
                self._dirty.add(target)
                log.info(
                    "job_id=%s joined group %s/%s/%s (event_id=%s)",
                    job_id,
                    target,
                    job["org_id"],
                    job["app_version_id"],
                    event.event_id,
                )
            elif status is None:
                log.info(
                    "%s for unknown job_id=%s (event_id=%s): skipped",
                    event.type.value,
                    job_id,
                    event.event_id,
                )
            else:
                log.info(
                    "%s for job_id=%s already %s (event_id=%s): skipped",
                    event.type.value,
                    job_id,
                    status,
                    event.event_id,
                )

    def on_job_started(self, event: Envelope) -> None:
        payload = parse(JobStarted, event.payload)
        verdict = transitions.apply_started(self._store, payload)
        _log_verdict(verdict, event, payload["job_id"], payload["batch_id"], JobStatus.RUNNING)

    def on_job_finished(self, event: Envelope) -> None:
        """Apply the outcome; an applied one feeds the duration history (`history`).

        An outcome `retry.decide` retries (an infrastructure error, a failed test with
        reruns left) sends the job back to its group instead, through the requeue script;
        the agent goes on with the rest of its batch.
        """
        payload = parse(JobFinished, event.payload)
        finished = transitions.apply_finished(
            self._store, payload, self._requeuer.policy, self._requeuer.jitter
        )
        outcome = payload["result"]["outcome"]
        # The job's own step (its final status logged, or its requeue) comes before the
        # duration history: a Redis error in `_learn` must not lose it (a redelivered
        # event finds the job final, or no longer of this batch, and changes nothing).
        if finished.retried and finished.job is not None and finished.decision is not None:
            self._retry_one(
                finished.job,
                payload["batch_id"],
                Retry(
                    finished.job.job_id,
                    "",
                    finished.decision,
                    outcome.value,
                    payload["result"].get("reason") or "",
                ),
                payload["finished_at"],
            )
            self._dirty.add(finished.job.target)
        else:
            _log_verdict(finished.verdict, event, payload["job_id"], payload["batch_id"], outcome)
        if finished.verdict == Verdict.APPLY and finished.job is not None:
            self._learn([(finished.job, payload["result"])])

    def _retry_one(self, job: Job, batch_id: str, item: Retry, finished_at: str) -> None:
        """Hand one job of a (maybe still running) batch back to its group."""
        raw = self._store.hgetall(Keys.batch(batch_id))
        if raw:
            formed = Formed.from_redis(raw)
            batch, group_score = formed.batch, formed.group_score
            score = formed.job_scores.get(job.job_id, "")
        else:  # the batch ended meanwhile: the job's own record says where it goes back
            batch = Batch(
                batch_id,
                job.assigned_agent or "",
                job.target,
                job.app_version_id,
                job.created_at,
                org_id=job.org_id,
            )
            group_score, score = None, ""
        if not score:
            score = str(group_score_of(job.priority, 0))  # at the head of its priority
        self._requeuer.requeue_jobs(
            batch,
            group_score,
            [dataclasses.replace(item, score=score)],
            why=f"{item.outcome}/{item.reason}" if item.reason else item.outcome,
            now=timestamp(finished_at),
        )

    def on_jobs_cancel_requested(self, event: Envelope) -> None:
        """A queued job leaves its group and ends `cancelled`; an assigned one not started
        ends `cancelled` (its agent skips it); a running one is its agent's to stop."""
        payload = parse(JobsCancelRequested, event.payload)
        for job_id in payload["job_ids"]:
            outcome = self._cancel.cancel(
                job_id, payload["requested_by"], timestamp(payload["requested_at"])
            )
            log.info(
                "cancel of job_id=%s by %s: %s (event_id=%s)",
                job_id,
                payload["requested_by"],
                outcome,
                event.event_id,
            )

    def _learn(self, learned: Sequence[tuple[Job, JobResult]]) -> None:
        """Record each test's duration (if it passed) and the install it paid, if any, in one
        round trip: from a job.finished, or from the reports of a batch.finished.

        Each job is the record as the report found it: the fields read here never change.
        A redelivered event is not applied twice, so it is not recorded twice either.
        """
        pipe = self._store.pipeline(transaction=False)
        for job, result in learned:
            org_id, target, version = job.org_id, job.target, job.app_version_id
            path = job.test_path
            if not (org_id and target and version and path):
                continue
            history.record_test(pipe, org_id, target, path, result["duration_s"], result["outcome"])
            if result.get("install_paid"):
                history.record_install(pipe, org_id, target, version, result["install_s"])
        if len(pipe):
            pipe.execute()

    def on_agent_heartbeat(self, event: Envelope) -> None:
        """Upsert the agent from its report; `current_batch_id` stays the scheduler's.

        A heartbeat whose `last_batch_id` is the agent's outstanding batch ends that batch
        (its batch.finished was lost, or the agent aborted the batch): see `_update_agent`.
        """
        payload = parse(AgentHeartbeat, event.payload)

        def update(agent: Agent) -> Agent:
            # last_heartbeat is when the scheduler applied it (its clock, not the agent's);
            # liveness itself is the lease's, judged on Redis TIME.
            return dataclasses.replace(_with_counters(agent, payload), last_heartbeat=utc_now())

        _, after = self._update_agent(event, payload, update, ended_batch=payload["last_batch_id"])
        self._take_back_if_stopped(event, after, running=payload["current_batch_id"])
        self._dirty.add(payload["target"].value)

    def on_batch_finished(self, event: Envelope) -> None:
        """The agent's counters; if this was its outstanding batch, the batch ends."""
        payload = parse(BatchFinished, event.payload)
        before, after = self._update_agent(
            event,
            payload,
            lambda agent: _with_counters(agent, payload),
            ended_batch=payload["batch_id"],
            reports=payload["reports"],
        )
        outstanding = before.current_batch_id if before is not None else None
        if outstanding != payload["batch_id"]:
            log.info(
                "%s batch_id=%s is not agent %s's outstanding batch %s (event_id=%s): "
                "counters and state updated, the outstanding batch does not end",
                event.type.value,
                payload["batch_id"],
                payload["agent_id"],
                outstanding,
                event.event_id,
            )
        self._take_back_if_stopped(event, after, running=None)
        self._dirty.add(payload["target"].value)

    def _take_back_if_stopped(self, event: Envelope, agent: Agent, *, running: str | None) -> None:
        """An agent that is offline but still bound to a batch will not start it: take it back.

        Not when the agent reports `running` that batch; `take_back` also leaves it alone when
        the agent has started it without saying so yet.
        """
        batch_id = agent.current_batch_id
        if agent.state == AgentState.OFFLINE and batch_id is not None and batch_id != running:
            why = f"agent {agent.agent_id} offline: {event.type.value} event_id={event.event_id}"
            self._take_back(batch_id, why)

    def _update_agent(
        self,
        event: Envelope,
        payload: AgentCounters,
        update: Callable[[Agent], Agent],
        *,
        ended_batch: str | None,
        reports: dict[str, JobReport] | None = None,
    ) -> tuple[Agent | None, Agent]:
        """Upsert an agent record atomically; returns it as it was (None: new) and as written.

        When `ended_batch` is the agent's outstanding batch, the same transaction ends it:
        the agent's `current_batch_id` is cleared (it is free), and
        - from a batch.finished (`reports` given): each job of the batch takes the outcome the
          agent reported for it, and the others end error/not_reported, at once. The outcome
          does not depend on whether the job's own job.finished came first;
        - from a heartbeat naming it as `last_batch_id` (the batch.finished was dead-lettered,
          or is being retried): the batch joins the ended batches (`Keys.ENDED_BATCHES`, on
          Redis TIME), and the reaper settles its jobs once the report grace has passed, so
          reports still in the queue are applied first.
        A batch.finished that comes after a heartbeat ended its batch (its record is still
        there, waiting for the reaper) still applies its reports, to the jobs it reports
        only: the agent's outbox may have folded their job.finished into it (`Late`).
        """
        agent_id = payload["agent_id"]
        key = Keys.agent(agent_id)
        lease_key = Keys.lease(agent_id)
        batch_key = Keys.batch(ended_batch) if ended_batch else None
        retried: list[Requeue] = []
        learned: list[tuple[Job, JobResult]] = []  # the reports this end applies, to learn

        def also(pipe: Pipeline) -> None:
            """The reads not checked at commit, on the agent's round trip (as the transaction
            watched none of them): its lease, Redis TIME and the batch record when it ends."""
            pipe.hgetall(lease_key)
            if batch_key is not None:
                pipe.time()
                if reports is not None:
                    pipe.hgetall(batch_key)  # checked once we know it applies

        def read_modify_write(guard: Guard) -> tuple[Agent | None, Agent, bool, list[Job]]:
            retried.clear()
            learned.clear()
            (raw,), unchecked = guard.read([key], also=also)
            raw_lease, clock = unchecked[0], unchecked[1] if batch_key is not None else None
            raw_batch: dict[str, str] = unchecked[2] if len(unchecked) > 2 else {}
            before = Agent.from_redis(raw) if raw else None
            lease = Lease.from_redis(agent_id, raw_lease)
            fresh = Agent(agent_id, payload["target"].value, payload["state"].value)
            if applies(before, lease, payload["instance_id"], payload["seq"]):
                after = dataclasses.replace(
                    update(before or fresh),
                    instance_id=payload["instance_id"],
                    seq=payload["seq"],
                )
            else:
                after = before or fresh  # a stale report: the record does not move back
            ends = (
                before is not None
                and ended_batch is not None
                and before.current_batch_id == ended_batch
            )
            settled: list[Job] = []
            if ends:
                after = dataclasses.replace(after, current_batch_id=None)
            if reports is not None and batch_key is not None and (ends or raw_batch):
                guard.check(batch_key, raw_batch)
                settled = self._end_batch_jobs(
                    guard,
                    raw_batch,
                    str(ended_batch),
                    agent_id,
                    reports=reports,
                    late=not ends,
                    retried=retried,
                    learned=learned,
                )
            guard.hset(key, after.to_redis())
            guard.sadd(Keys.AGENTS, agent_id)
            for job in settled:
                guard.hset(Keys.job(job.job_id), job.to_redis())
            if ends and reports is not None and not retried and batch_key is not None:
                guard.delete(batch_key)
            elif ends and clock is not None:
                # Settled by the reaper after the grace: a heartbeat's end, or a batch.finished
                # whose retried jobs the requeue below sends back. Should that requeue fail,
                # the reaper finds the batch here and settles those jobs then (they are still
                # bound to it), so a retried job is never left assigned to a batch that is gone.
                seconds, micros = clock
                ended_ms = int(seconds) * 1000 + int(micros) // 1000  # Redis TIME
                guard.zadd(Keys.ENDED_BATCHES, str(ended_batch), ended_ms)
            return before, after, ends, settled

        before, after, ends, settled = guarded(self._store, read_modify_write)
        if ends:
            log.info(
                "batch_id=%s of agent %s ended by %s (event_id=%s): agent freed%s",
                ended_batch,
                agent_id,
                event.type.value,
                event.event_id,
                "" if reports is not None else "; its unreported jobs settle after the grace",
            )
        for job in settled:
            reason = job.result.get("reason") if job.result else None
            log_final = log.warning if reason == ErrorReason.NOT_REPORTED else log.info
            log_final(
                "job_id=%s -> %s%s (batch_id=%s %s on agent %s, event_id=%s)",
                job.job_id,
                job.status,
                f" ({reason})" if reason else "",
                ended_batch,
                "ended" if ends else "reported late",
                agent_id,
                event.event_id,
            )
        self._after_end(event, learned, retried)
        return before, after

    def _after_end(
        self,
        event: Envelope,
        learned: Sequence[tuple[Job, JobResult]],
        retried: Sequence[Requeue],
    ) -> None:
        """What follows a batch's end once it is written (and logged): its retried jobs go
        back to their group, then its reports feed the history (a job.finished the agent's
        outbox folded into the batch.finished is learned from as that event would have
        been). The jobs' own steps come first, as in `on_job_finished`."""
        for item in retried:
            self._requeuer.requeue_jobs(
                item.formed.batch,
                item.formed.group_score,
                item.retries,
                why=f"{event.type.value} reports",
                end_batch=not item.late,
            )
            if not item.late:  # a late report leaves the rest of the batch to the reaper
                self._store.zrem(Keys.ENDED_BATCHES, item.formed.batch.batch_id)
        self._learn(learned)

    def _end_batch_jobs(
        self,
        guard: Guard,
        raw: dict[str, str],
        batch_id: str,
        agent_id: str,
        *,
        reports: dict[str, JobReport],
        late: bool,
        retried: list[Requeue],
        learned: list[tuple[Job, JobResult]],
    ) -> list[Job]:
        """The batch's jobs that its end changes (see transitions.end_batch_job), read through
        `guard` (checked at commit) from the batch record `raw`; `late`: the batch has ended
        already, only the reported jobs change. A job whose outcome is retried is not
        changed but added to `retried`, for the requeue script once the write is done (a
        job its job.started never told is written `running` first, from the report, so the
        attempt's history says when it started). Each report applied here (the job ended or
        retried by it) is added to `learned`, with the job as it was read."""
        if not raw:
            return []
        formed = Formed.from_redis(raw)
        job_ids = [job.job_id for job in formed.batch.jobs]
        raw_jobs, _ = guard.read([Keys.job(job_id) for job_id in job_ids])
        now = utc_now()
        changed, retries = [], []
        jitter = self._requeuer.jitter()  # one per batch: its retried jobs come back together
        for job_id, raw_job in zip(job_ids, raw_jobs, strict=True):
            job = Job.from_redis(raw_job) if raw_job else None
            report = reports.get(job_id)
            if late and report is None:
                continue  # the reaper's, after the grace
            moved = transitions.end_batch_job(
                job, batch_id, agent_id, report, now, instance_id=formed.batch.instance_id or ""
            )
            if moved is None or job is None or moved.result is None:
                continue
            if report is not None:
                learned.append((job, report["result"]))
            outcome, reason = moved.status, moved.result.get("reason")
            decision = transitions.retry_decision(
                job,
                outcome,
                reason,
                agent_id,
                policy=self._requeuer.policy,
                jitter=jitter,
            )
            if decision.action is Action.REQUEUE:
                score = formed.job_scores.get(job_id) or str(group_score_of(job.priority, 0))
                finished_at = timestamp(report["finished_at"]) if report is not None else ""
                retries.append(
                    Retry(job_id, score, decision, outcome, reason or "", finished_at=finished_at)
                )
                if report is not None and job.started_at is None and report["started_at"]:
                    running = transitions.started(job, report["started_at"])
                    guard.hset(Keys.job(job_id), running.to_redis())
            else:
                changed.append(moved)
        if retries:
            retried.append(Requeue(formed, retries, late))
        return changed


@dataclasses.dataclass(frozen=True)
class Requeue:
    """Jobs a batch.finished's reports send back to their group, once its write is done:
    `late` when the batch had ended already (see `EventHandler._update_agent`)."""

    formed: Formed
    retries: list[Retry]
    late: bool


def applies(before: Agent | None, lease: Lease | None, instance_id: str, seq: int) -> bool:
    """Does an agent report (`instance_id`, `seq`) move the agent's record forward? (pure)

    Reports of one instance apply in `seq` order: one at or below the record's `seq` is a
    duplicate or a late arrival. A report of another instance than the record's applies when
    it comes from the instance holding the lease (the agent restarted), or when no lease
    names another one; a late report of a replaced instance does not.
    """
    if before is None:
        return True
    if before.instance_id == instance_id:
        return seq > before.seq
    return lease is None or lease.instance_id == instance_id


def _with_counters(agent: Agent, payload: AgentCounters) -> Agent:
    return dataclasses.replace(
        agent,
        target=payload["target"].value,
        state=payload["state"].value,
        installed_app_version=payload["installed_app_version"],
        installed_org_id=payload["installed_org_id"],
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
