"""What a planning policy sees: a `planning.Situation` of one target, read from Redis.

- **Pending jobs**: every build in `Keys.groups(target)`, its jobs in group order (the score
  is the job's `order`; its priority is recovered from the score, see `grouping`), each
  job's age from its `created_at` and its estimated duration from the duration history
  (`history.test_estimates`, per org, one round trip each; a test never seen gets the org's
  recent runs of any test, and `seen` False). At most `MAX_JOBS_PER_BUILD` jobs are read per
  build: the policy only sees a build's backlog as that large (its batches are then as
  large as with a larger backlog; a pass takes at most `planning.BATCH_CEILING` per free
  agent, 4 x 500 = 2000 at most with four free agents on one build of short tests).
- **Agents**: every live agent of the target (lease fresh on Redis TIME, not offline, the
  record of the instance holding the lease). A free one (no batch outstanding) shows the
  build it has installed. A busy one shows the build of its outstanding batch (the one it
  will have installed when it is free) and `busy_for_s`: the estimates of the batch's jobs
  that have not ended, plus the build's install when it does not have it yet.
- **Install times**: per build, from the history (`history.install_estimates`).
- **Retries** (`retry`): a job in its backoff is left out; a free agent that a retried job
  avoids is left out while another free agent is not avoided.

Ages compare the API's `created_at` with the scheduler's clock: aging works in steps of
`aging_s` (a minute by default), so a skew of a few seconds between hosts is immaterial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis import Redis

from qgjob_contract import leases, names
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
    batch_fill_s: float = planning.DEFAULT_BATCH_FILL_S


# Job hash fields of a retried job's wait (written by lua/requeue_batch.lua).
_WAIT_FIELDS = ("not_before_ms", "avoid_agent", "avoid_until_ms")


def waits(fields: list[str | None], now_ms: int, *, avoid: bool = False) -> str | None:
    """Of a job's `_WAIT_FIELDS`: "backoff" while its retry delay runs (pure); with `avoid`,
    instead, the agent it avoids now, if any."""
    not_before, agent, until = fields
    if avoid:
        return agent if agent and until and int(until) > now_ms else None
    return "backoff" if not_before and int(not_before) > now_ms else None


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


def read_situation(
    store: Redis,
    target: str,
    planner: Planner,
    *,
    batch_max: int,
    agent_timeout_s: float,
    now: datetime,
) -> planning.Situation | None:
    """The target's situation, or None when no agent is free or no job is pending."""
    agents = _live_agents(store, target, agent_timeout_s)
    if not any(not agent.current_batch_id for agent in agents):
        return None
    builds = [names.parse_build(str(member)) for member in store.zrange(Keys.groups(target), 0, -1)]
    if not builds:
        return None
    pipe = store.pipeline(transaction=False)
    for org_id, version in builds:
        pipe.zrange(Keys.group(target, org_id, version), 0, MAX_JOBS_PER_BUILD - 1, withscores=True)
    members = cast(list[list[tuple[str, float]]], pipe.execute())
    pending = [
        (org_id, version, job_id, score)
        for (org_id, version), jobs in zip(builds, members, strict=True)
        for job_id, score in jobs
    ]
    pipe = store.pipeline(transaction=False)
    for *_, job_id, _ in pending:
        pipe.hmget(Keys.job(job_id), ["test_path", "created_at", *_WAIT_FIELDS])
    everything = cast(list[list[str | None]], pipe.execute())
    redis_ms = leases.redis_now_ms(store)
    free_ids = {agent.agent_id for agent in agents if not agent.current_batch_id}
    # A retried job in its backoff is not pending yet. A free agent that a retried job
    # avoids (it failed there) sits this pass out while another free agent is not avoided,
    # so that one takes the job; form_batch.lua enforces both per job.
    eligible = [waits(fields[2:], redis_ms) is None for fields in everything]
    avoided = {
        avoids
        for fields, ok in zip(everything, eligible, strict=True)
        if ok and (avoids := waits(fields[2:], redis_ms, avoid=True)) in free_ids
    }
    pending = [item for item, ok in zip(pending, eligible, strict=True) if ok]
    details = [fields[:2] for fields, ok in zip(everything, eligible, strict=True) if ok]
    if not pending:
        return None
    if free_ids - avoided:
        agents = [agent for agent in agents if agent.agent_id not in avoided]

    batches = _outstanding_batches(store, agents)
    paths: dict[str, list[str]] = {}  # org -> test paths to estimate
    for (org_id, *_), (path, _) in zip(pending, details, strict=True):
        paths.setdefault(org_id, []).append(path or "")
    for batch, _ in batches.values():
        paths.setdefault(batch.org_id, []).extend(job.test_path for job in batch.jobs)
    estimate, seen = _test_estimates(store, target, paths, planner.default_test_s)
    wanted = {(org_id, version) for org_id, version, *_ in pending}
    wanted |= {(batch.org_id, batch.app_version_id) for batch, _ in batches.values()}
    install_s = _install_estimates(store, target, wanted, planner.default_install_s)

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
            (org_id, path or "") in seen,
        )
        for (org_id, version, job_id, score), (path, created) in zip(pending, details, strict=True)
    ]
    views = []
    for agent in agents:
        if agent.agent_id in batches:
            batch, unfinished = batches[agent.agent_id]
            build = (batch.org_id, batch.app_version_id)
            busy = sum(estimate[batch.org_id, job.test_path] for job in unfinished)
            if (agent.installed_org_id, agent.installed_app_version) != build:
                busy += install_s[build]
            views.append(planning.AgentView(agent.agent_id, build, False, busy))
        elif not agent.current_batch_id:
            views.append(planning.AgentView(agent.agent_id, _installed(agent), True, 0.0))
    return planning.Situation(
        target,
        jobs,
        views,
        install_s,
        batch_max,
        batch_fill_s=planner.batch_fill_s,
        default_install_s=planner.default_install_s,
        aging_s=planner.aging_s,
    )


def _live_agents(store: Redis, target: str, timeout_s: float) -> list[Agent]:
    """Two round trips (the ids and Redis TIME; every record and lease): a pass runs after
    every burst of events, on the path from a job ready to a job running."""
    pipe = store.pipeline(transaction=False)
    pipe.smembers(Keys.AGENTS)
    pipe.time()
    members, (seconds, micros) = pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    agent_ids = sorted(str(agent_id) for agent_id in members)
    pipe = store.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hgetall(Keys.agent(agent_id))
        pipe.hgetall(Keys.lease(agent_id))
    replies = pipe.execute()
    live = []
    for agent_id, raw, raw_lease in zip(agent_ids, replies[::2], replies[1::2], strict=True):
        if not raw:
            continue
        agent = Agent.from_redis(raw)
        lease = Lease.from_redis(agent_id, raw_lease) if raw_lease else None
        if is_live(agent, lease, target, now_ms, timeout_s):
            live.append(agent)
    return live


def _outstanding_batches(
    store: Redis, agents: Iterable[Agent]
) -> dict[str, tuple[Batch, list[BatchJob]]]:
    """agent_id -> (its outstanding batch, the batch's jobs that have not ended)."""
    busy = [agent for agent in agents if agent.current_batch_id]
    pipe = store.pipeline(transaction=False)
    for agent in busy:
        pipe.hgetall(Keys.batch(agent.current_batch_id or ""))
    found = [
        (agent.agent_id, Batch.from_redis(raw))
        for agent, raw in zip(busy, pipe.execute(), strict=True)
        if raw
    ]
    pipe = store.pipeline(transaction=False)
    for _, batch in found:
        for job in batch.jobs:
            pipe.hget(Keys.job(job.job_id), "status")
    statuses = iter(pipe.execute())
    result = {}
    for agent_id, batch in found:
        unfinished = [job for job in batch.jobs if next(statuses) in _UNFINISHED]
        result[agent_id] = (batch, unfinished)
    return result


def _test_estimates(
    store: Redis, target: str, paths: dict[str, list[str]], default_s: float
) -> tuple[dict[tuple[str, str], float], set[tuple[str, str]]]:
    """(org, path) -> its estimate, and the (org, path) with a history of their own: one
    round trip for every org. A path never seen gets the org's `history.unseen_default` (a
    missing path, "", too)."""
    fields = {org_id: sorted(set(org_paths) - {""}) for org_id, org_paths in paths.items()}
    pipe = store.pipeline(transaction=False)
    for org_id, org_fields in fields.items():
        pipe.get(Keys.test_history_recent(org_id, target))
        # HMGET needs a field: an org whose jobs all lack a path asks for "" (never one)
        pipe.hmget(Keys.test_history(org_id, target), [*org_fields] or [""])
    replies = pipe.execute()
    estimates, seen = {}, set()
    for i, (org_id, org_fields) in enumerate(fields.items()):
        default = history.unseen_default(replies[2 * i], default_s)
        raws = replies[2 * i + 1][: len(org_fields)]
        estimates[org_id, ""] = default
        estimates.update(
            {
                (org_id, f): v
                for f, v in zip(org_fields, history.estimates(raws, default), strict=True)
            }
        )
        seen |= {(org_id, f) for f, raw in zip(org_fields, raws, strict=True) if raw is not None}
    return estimates, seen


def _install_estimates(
    store: Redis, target: str, builds: Iterable[tuple[str, str]], default_s: float
) -> dict[tuple[str, str], float]:
    by_org: dict[str, set[str]] = {}
    for org_id, version in builds:
        by_org.setdefault(org_id, set()).add(version)
    fields = {org_id: sorted(versions) for org_id, versions in by_org.items()}
    keys = {org_id: Keys.install_history(org_id, target) for org_id in fields}
    return _estimates(store, keys, fields, default_s)


def _estimates(
    store: Redis, keys: dict[str, str], fields: dict[str, list[str]], default_s: float
) -> dict[tuple[str, str], float]:
    """(org, field) -> its estimate from the history hash `keys[org]`: one round trip for
    every org."""
    fields = {org_id: org_fields for org_id, org_fields in fields.items() if org_fields}
    pipe = store.pipeline(transaction=False)
    for org_id, org_fields in fields.items():
        pipe.hmget(keys[org_id], org_fields)
    estimates = {}
    for (org_id, org_fields), raws in zip(fields.items(), pipe.execute(), strict=True):
        values = history.estimates(raws, default_s)
        estimates.update({(org_id, f): v for f, v in zip(org_fields, values, strict=True)})
    return estimates


def _installed(agent: Agent) -> tuple[str, str] | None:
    if agent.installed_org_id is None or agent.installed_app_version is None:
        return None
    return (agent.installed_org_id, agent.installed_app_version)
