"""What a planning policy sees: a `planning.Situation` of one target, read from Redis.

- **Pending jobs**: every build in `Keys.groups(target)`, its jobs in group order (the score
  is the job's `order`; its priority is recovered from the score, see `grouping`), each
  job's age from its `created_at` and its estimated duration from the duration history
  (`history.test_estimates`, per org, one round trip each). At most `MAX_JOBS_PER_BUILD`
  jobs are read per build: a pass never takes that many from one build, and the policy
  only sees a build's backlog as that large (its batches then stay at `batch_max`).
- **Agents**: every live agent of the target (lease fresh on Redis TIME, not offline, the
  record of the instance holding the lease). A free one (no batch outstanding) shows the
  build it has installed. A busy one shows the build of its outstanding batch (the one it
  will have installed when it is free) and `busy_for_s`: the estimates of the batch's jobs
  that have not ended, plus the build's install when it does not have it yet.
- **Install times**: per build, from the history (`history.install_estimates`).

Ages compare the API's `created_at` with the scheduler's clock: aging works in steps of
`aging_s` (a minute by default), so a skew of a few seconds between hosts is immaterial.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis import Redis

from qgjob_contract import names
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent, Batch, BatchJob, Lease, is_alive
from qgjob_contract.statuses import AgentState, JobStatus
from qgjob_scheduler import history, planning
from qgjob_scheduler.grouping import PRIORITY_WEIGHT

MAX_JOBS_PER_BUILD = 2000
_UNFINISHED = (JobStatus.ASSIGNED.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class Planner:
    """A planning policy and the settings the dispatcher gives it (see `config`)."""

    policy: planning.Policy
    default_test_s: float = planning.DEFAULT_TEST_S
    default_install_s: float = planning.DEFAULT_INSTALL_S
    aging_s: float = planning.DEFAULT_AGING_S


def priority_of(score: float) -> int:
    """The priority in a group score `arrival - priority * PRIORITY_WEIGHT` (0 < arrival)."""
    return -int((score - 1) // PRIORITY_WEIGHT)


def is_live(agent: Agent, lease: Lease | None, target: str, now_ms: int, timeout_s: float) -> bool:
    """Of `target`, not offline, its lease fresh and held by the instance of this record."""
    return (
        agent.target == target
        and agent.state != AgentState.OFFLINE
        and lease is not None
        and is_alive(lease, now_ms, timeout_s)
        and agent.instance_id == lease.instance_id
    )


Pending = tuple[str, str, str, float]  # (org_id, app_version_id, job_id, group score)


def read_situation(
    store: Redis,
    target: str,
    planner: Planner,
    *,
    batch_max: int,
    agent_timeout_s: float,
    now: datetime,
) -> planning.Situation | None:
    """The target's situation, or None when no agent is free or no job is pending.

    Four pipelined round trips, whatever the number of agents, builds and jobs (a pass
    runs after every burst of events, on the path from a job ready to a job running):
    the agents, the clock and the builds; each agent's record and lease and each build's
    jobs; the jobs' details and the outstanding batches; the batches' job statuses and the
    duration history.
    """
    read = _agents_and_pending(store, target, agent_timeout_s)
    if read is None:
        return None
    agents, pending = read
    busy = [agent for agent in agents if agent.current_batch_id]
    pipe = store.pipeline(transaction=False)
    for *_, job_id, _ in pending:
        pipe.hmget(Keys.job(job_id), ["test_path", "created_at"])
    for agent in busy:
        pipe.hgetall(Keys.batch(agent.current_batch_id or ""))
    replies = pipe.execute()
    details = cast(list[list[str | None]], replies[: len(pending)])
    found = [
        (agent.agent_id, Batch.from_redis(raw))
        for agent, raw in zip(busy, replies[len(pending) :], strict=True)
        if raw
    ]
    batches, estimate, install_s = _statuses_and_estimates(
        store, target, planner, pending=pending, details=details, found=found
    )
    now_s = now.timestamp()
    jobs = [
        planning.PendingJob(
            job_id,
            org_id,
            version,
            priority_of(score),
            max(now_s - datetime.fromisoformat(created).timestamp(), 0.0) if created else 0.0,
            estimate[org_id, path or ""],
            score,
        )
        for (org_id, version, job_id, score), (path, created) in zip(pending, details, strict=True)
    ]
    views = []
    for agent in agents:
        if agent.agent_id in batches:
            batch, unfinished = batches[agent.agent_id]
            build = (batch.org_id, batch.app_version_id)
            busy_s = sum(estimate[batch.org_id, job.test_path] for job in unfinished)
            if (agent.installed_org_id, agent.installed_app_version) != build:
                busy_s += install_s[build]
            views.append(planning.AgentView(agent.agent_id, build, False, busy_s))
        elif not agent.current_batch_id:
            views.append(planning.AgentView(agent.agent_id, _installed(agent), True, 0.0))
    return planning.Situation(
        target,
        jobs,
        views,
        install_s,
        batch_max,
        default_install_s=planner.default_install_s,
        aging_s=planner.aging_s,
    )


def _agents_and_pending(
    store: Redis, target: str, timeout_s: float
) -> tuple[list[Agent], list[Pending]] | None:
    """The target's live agents and pending jobs (two round trips); None when no agent is
    free or no job is pending."""
    pipe = store.pipeline(transaction=False)
    pipe.smembers(Keys.AGENTS)
    pipe.time()
    pipe.zrange(Keys.groups(target), 0, -1)
    members, (seconds, micros), groups = pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    agent_ids = sorted(str(agent_id) for agent_id in members)
    builds = [names.parse_build(str(member)) for member in groups]
    if not builds or not agent_ids:
        return None
    pipe = store.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hgetall(Keys.agent(agent_id))
        pipe.hgetall(Keys.lease(agent_id))
    for org_id, version in builds:
        pipe.zrange(Keys.group(target, org_id, version), 0, MAX_JOBS_PER_BUILD - 1, withscores=True)
    replies = pipe.execute()
    agents = _live_agents(agent_ids, replies[: 2 * len(agent_ids)], target, now_ms, timeout_s)
    if not any(not agent.current_batch_id for agent in agents):
        return None
    jobs_of = cast(list[list[tuple[str, float]]], replies[2 * len(agent_ids) :])
    pending = [
        (org_id, version, job_id, score)
        for (org_id, version), jobs in zip(builds, jobs_of, strict=True)
        for job_id, score in jobs
    ]
    return (agents, pending) if pending else None


def _statuses_and_estimates(
    store: Redis,
    target: str,
    planner: Planner,
    *,
    pending: list[Pending],
    details: list[list[str | None]],
    found: list[tuple[str, Batch]],
) -> tuple[
    dict[str, tuple[Batch, list[BatchJob]]],
    dict[tuple[str, str], float],
    dict[tuple[str, str], float],
]:
    """One round trip: (agent_id -> (its outstanding batch, the batch's jobs that have not
    ended)), the test estimates by (org, path), the install estimates by (org, version)."""
    paths: dict[str, set[str]] = {}  # org -> test paths to estimate
    for (org_id, *_), (path, _) in zip(pending, details, strict=True):
        paths.setdefault(org_id, set()).add(path or "")
    versions: dict[str, set[str]] = {}  # org -> app versions to estimate
    for org_id, version, *_ in pending:
        versions.setdefault(org_id, set()).add(version)
    for _, batch in found:
        paths.setdefault(batch.org_id, set()).update(job.test_path for job in batch.jobs)
        versions.setdefault(batch.org_id, set()).add(batch.app_version_id)
    test_fields = {org_id: sorted(values) for org_id, values in paths.items()}
    install_fields = {org_id: sorted(values) for org_id, values in versions.items()}

    pipe = store.pipeline(transaction=False)
    for _, batch in found:
        for job in batch.jobs:
            pipe.hget(Keys.job(job.job_id), "status")
    for org_id, fields in test_fields.items():
        pipe.hmget(Keys.test_history(org_id, target), fields)
    for org_id, fields in install_fields.items():
        pipe.hmget(Keys.install_history(org_id, target), fields)
    replies = iter(pipe.execute())
    batches = {}
    for agent_id, batch in found:
        statuses = [next(replies) for _ in batch.jobs]
        unfinished = [j for j, st in zip(batch.jobs, statuses, strict=True) if st in _UNFINISHED]
        batches[agent_id] = (batch, unfinished)
    estimate: dict[tuple[str, str], float] = {}
    for org_id, fields in test_fields.items():
        values = history.estimates(next(replies), planner.default_test_s)
        estimate.update({(org_id, f): v for f, v in zip(fields, values, strict=True)})
    install_s: dict[tuple[str, str], float] = {}
    for org_id, fields in install_fields.items():
        values = history.estimates(next(replies), planner.default_install_s)
        install_s.update({(org_id, f): v for f, v in zip(fields, values, strict=True)})
    return batches, estimate, install_s


def _live_agents(
    agent_ids: list[str], replies: list[dict[str, str]], target: str, now_ms: int, timeout_s: float
) -> list[Agent]:
    """The live agents of `target`, from (record, lease) replies in `agent_ids` order."""
    agents = []
    for index, agent_id in enumerate(agent_ids):
        raw, raw_lease = replies[2 * index], replies[2 * index + 1]
        if not raw:
            continue
        agent = Agent.from_redis(raw)
        lease = Lease.from_redis(agent_id, raw_lease) if raw_lease else None
        if is_live(agent, lease, target, now_ms, timeout_s):
            agents.append(agent)
    return agents


def _installed(agent: Agent) -> tuple[str, str] | None:
    if agent.installed_org_id is None or agent.installed_app_version is None:
        return None
    return (agent.installed_org_id, agent.installed_app_version)
