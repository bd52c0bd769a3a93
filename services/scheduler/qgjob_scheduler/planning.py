"""Which free agent runs which pending jobs of one target: pure policies, no I/O.

The dispatcher takes a snapshot of ONE target (`Situation`: every pending job with its
estimated duration, every live agent, free or busy, with the build it has installed and how
long until it is free, the install time of each build), asks a `Policy`, and carries out each
`Assignment` atomically, skipping job ids that are no longer pending. A build is
(org_id, app_version_id): two orgs never share a batch or an install. `POLICIES` names the
policies `SCHEDULER_POLICY` selects.

`qgjob` (the default) plans with install costs and test durations. Each round of its loop
picks the build to serve next and the free agent that serves it best, then sizes one batch:

- **Fair share across orgs first.** The org with the lowest (agents serving it + 1) / its
  weight goes first (serving: busy on one of its builds, or given a batch in this pass;
  weights from `org_weights`, 1 by default, 0 for best effort): one org's 1,000 queued jobs
  cannot starve another org's 5.
- **Then priority, with aging.** A job's effective priority is `priority +
  floor(waited_s / aging_s)`; a build ranks by its best job. No pending job waits forever:
  a low-priority job eventually outranks a stream of fresh high-priority ones.
- **Then warm, then unserved, then splits.** A free agent with the build installed costs no
  install; a build nobody serves comes next; adding a cold agent to a build that is already
  served (a split) comes last, and only when it pays (below); among splits, the build that
  would otherwise end last goes first.
- **A split only when it pays.** Agents serving a build (busy ones with it installed, ready
  after `busy_for_s`; ones given a batch of it in this pass, ready after their batch) and
  the build's remaining work give its estimated finish time (work shared out so that every
  agent ends together: water filling). A cold agent, which pays one install before its first
  test, joins only if that brings the finish time forward by at least `split_gain` times the
  install time, and only if its install plus its first job end before the build would
  have ended without it (jobs are not divisible: a lone job after a long install must not
  end last). The same rule keeps a cold free agent off a build whose warm agent frees
  soon: the warm agent finishes the work before the cold one could have installed.
- **Batches shrink as the backlog drains.** A batch holds the agent's share of its build:
  the work it can do before the build would end if every other agent that pays to (by the
  split rule, counting when each is ready and whether it must install) joined in. While the
  backlog is large that is more than `batch_max` jobs; near the end batches get smaller, so
  agents finish together, without a long tail. At least one job per batch.
- **Short tests fill a batch.** Past `batch_max` jobs a batch takes more while its estimated
  work stays within `batch_fill_s` (at most `BATCH_CEILING` jobs): every batch costs a
  hand-over on the platform (tens of ms), which a batch of ten 10-ms tests would spend
  mostly waiting. Tests of normal length (`batch_max` of them exceed `batch_fill_s`) are
  not affected. A test never seen (its estimate is the org's recent runs of other tests,
  `seen` False) fills a batch only up to `UNSEEN_FILL` x `batch_max` jobs: a new suite much
  slower than the org's earlier tests holds an agent at most that many times longer than
  a batch of `batch_max` would.
- **Longest first.** Within a build, jobs are taken by effective priority, then longest
  estimate first (longest processing time first: short tests fill the tail), then `order`;
  a batch runs in that order.

`fifo` is the naive baseline the benchmark compares with: one job per batch, in arrival order
(oldest first, then `order`), to any free agent, installing before every job.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

Build = tuple[str, str]  # (org_id, app_version_id)

# One priority step per this many seconds of waiting (qgjob policy).
DEFAULT_AGING_S = 60.0
# A cold agent joins a build already served only if the build's estimated finish comes
# forward by at least this fraction of the install time it pays (qgjob policy).
DEFAULT_SPLIT_GAIN = 0.25
# Estimates for a test / a build never seen (the duration history's defaults).
DEFAULT_TEST_S = 30.0
DEFAULT_INSTALL_S = 60.0
# Short tests fill a batch past batch_max up to this much estimated work (qgjob policy), and
# no batch holds more than BATCH_CEILING jobs.
DEFAULT_BATCH_FILL_S = 2.0
BATCH_CEILING = 500
UNSEEN_FILL = 5  # a batch with tests never seen fills up to this many times batch_max
_EPSILON = 1e-9


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    org_id: str
    app_version_id: str
    priority: int  # 1..10, higher first
    waited_s: float  # seconds since the job became pending (age)
    estimate_s: float  # estimated test duration (from history, or a default)
    order: float  # its score in its group: lower = earlier (priority then arrival)
    seen: bool = True  # estimate_s from this test's own history (else the org's, or default)

    @property
    def build(self) -> Build:
        return (self.org_id, self.app_version_id)


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    installed: Build | None  # (org_id, app_version_id) installed, or None
    free: bool  # may take a batch now
    busy_for_s: float  # estimated seconds until it is free (0 when free)


@dataclass(frozen=True)
class Situation:
    target: str
    jobs: Sequence[PendingJob]  # every pending job of the target (all orgs, builds)
    agents: Sequence[AgentView]  # every live agent of the target (free and busy)
    install_s: Mapping[Build, float]  # estimated install time per (org, version)
    batch_max: int
    # Optional tuning (qgjob policy): defaults suit production.
    batch_fill_s: float = 0.0  # 0: a batch holds at most batch_max jobs
    default_install_s: float = DEFAULT_INSTALL_S  # for a build missing from install_s
    aging_s: float = DEFAULT_AGING_S
    split_gain: float = DEFAULT_SPLIT_GAIN
    org_weights: Mapping[str, float] = field(default_factory=dict)  # missing org: 1.0


@dataclass(frozen=True)
class Assignment:
    agent_id: str  # must be a FREE agent of the situation
    org_id: str
    app_version_id: str
    job_ids: tuple[str, ...]  # jobs of that one build, in the order the agent must run them
    force_install: bool = False  # fifo: install even if already installed


Policy = Callable[[Situation], list[Assignment]]


def finish_time(ready_s: Sequence[float], work_s: float) -> float:
    """When `work_s` seconds of divisible work end if shared by agents ready at `ready_s`.

    Water filling: the work is shared so that every agent that takes part ends at the same
    moment F, and an agent ready after F takes none. `inf` without agents; with no work, the
    moment the first agent is ready.
    """
    if not ready_s:
        return math.inf
    ready = sorted(ready_s)
    if work_s <= 0:
        return ready[0]
    total = 0.0
    for count, start in enumerate(ready, start=1):
        total += start
        level = (work_s + total) / count
        if count == len(ready) or level <= ready[count]:
            return level
    raise AssertionError("unreachable: the loop returns on its last agent")


def qgjob(situation: Situation) -> list[Assignment]:
    """The qgjob policy (see the module docstring)."""
    _check(situation)
    return _Planner(situation).plan()


def fifo(situation: Situation) -> list[Assignment]:
    """The naive baseline: one job per batch, oldest first, install before every job."""
    _check(situation)
    jobs = sorted(situation.jobs, key=lambda job: (-job.waited_s, job.order, job.job_id))
    free = [agent for agent in situation.agents if agent.free]
    return [
        Assignment(agent.agent_id, job.org_id, job.app_version_id, (job.job_id,), True)
        for agent, job in zip(free, jobs, strict=False)
    ]


POLICIES: Mapping[str, Policy] = {"qgjob": qgjob, "fifo": fifo}
DEFAULT_POLICY = "qgjob"


def _check(situation: Situation) -> None:
    if situation.batch_max < 1:
        raise ValueError(f"batch_max must be at least 1, got {situation.batch_max}")


@dataclass
class _Candidate:
    key: tuple[float, ...]
    build: Build
    agent: AgentView
    cost_s: float  # the install this agent pays before the build's first test


class _Planner:
    """One pass of the qgjob policy over a situation (mutable working state)."""

    def __init__(self, situation: Situation) -> None:
        self._s = situation
        self._free = [agent for agent in situation.agents if agent.free]
        by_build: dict[Build, list[PendingJob]] = {}
        for job in situation.jobs:
            by_build.setdefault(job.build, []).append(job)
        # Per build: the estimated work of its jobs not yet taken.
        self._work = {b: sum(job.estimate_s for job in jobs) for b, jobs in by_build.items()}
        # Per build: the jobs this pass may take, in the order they should be taken (no pass
        # takes more than one full batch per free agent from one build: no need to sort the
        # rest).
        per_batch = BATCH_CEILING if situation.batch_fill_s > 0 else situation.batch_max
        most = max(per_batch, situation.batch_max) * len(self._free)
        self._queues = {
            b: heapq.nsmallest(most, jobs, key=self._job_key) for b, jobs in by_build.items()
        }
        # Per build: when each agent serving it is ready for more of its work.
        self._servers: dict[Build, list[float]] = {}
        self._serving: dict[Build, set[str]] = {}  # the agents behind `_servers`
        self._org_load: dict[str, int] = {}
        # Per agent: when it is ready for more work, and the build it will have installed.
        self._ready = {a.agent_id: 0.0 if a.free else a.busy_for_s for a in situation.agents}
        self._holds = {a.agent_id: a.installed for a in situation.agents}
        for agent in situation.agents:
            if agent.installed is None:
                continue
            if not agent.free:
                self._servers.setdefault(agent.installed, []).append(agent.busy_for_s)
                self._serving.setdefault(agent.installed, set()).add(agent.agent_id)
            # A free agent still holding an org's build has just served that org: counting it
            # makes the org that has waited take the next turn, so a big org's backlog does
            # not keep a warm agent to itself (one install per turn is the price of sharing).
            org = agent.installed[0]
            self._org_load[org] = self._org_load.get(org, 0) + 1

    def plan(self) -> list[Assignment]:
        assignments: list[Assignment] = []
        while self._free:
            best = min(self._candidates(), key=lambda c: c.key, default=None)
            if best is None:
                break
            assignments.append(self._take(best))
        return assignments

    def _job_key(self, job: PendingJob) -> tuple[float, float, float, str]:
        return (-self._effective_priority(job), -job.estimate_s, job.order, job.job_id)

    def _effective_priority(self, job: PendingJob) -> int:
        aging = self._s.aging_s
        bonus = math.floor(job.waited_s / aging) if aging > 0 and job.waited_s > 0 else 0
        return job.priority + bonus

    def _install_s(self, build: Build) -> float:
        return self._s.install_s.get(build, self._s.default_install_s)

    def _candidates(self) -> list[_Candidate]:
        found = []
        for build, queue in self._queues.items():
            if not queue:
                continue
            agent, cost = self._best_agent(build)
            servers = self._servers.get(build, [])
            work = self._work[build]
            before = finish_time(servers, work)
            after = finish_time([*servers, cost], work)
            warm = cost == 0 and agent.installed == build
            if servers and not warm and not self._split_pays(before, after, cost, queue[0]):
                continue
            tier = 0 if warm else (1 if not servers else 2)
            org = build[0]
            # A weight of 0 or less: served only when no other org has work to give.
            weight = max(self._s.org_weights.get(org, 1.0), _EPSILON)
            load = (self._org_load.get(org, 0) + 1) / weight
            top = queue[0]
            # Among splits, the build that would end last goes first (it bounds the makespan).
            behind = -before if tier == 2 else 0.0
            key = (load, -self._effective_priority(top), tier, behind, -top.waited_s, top.order)
            found.append(_Candidate(key, build, agent, cost))
        return found

    def _split_pays(self, before: float, after: float, cost: float, first: PendingJob) -> bool:
        """Does a cold agent joining a served build bring its end forward? The shared-out end
        must come forward by `split_gain` times the install, and, since jobs are not
        divisible, the agent's install plus its first (longest) job must end before the
        build would have ended without it (else that one job ends last)."""
        gain = before - after >= self._s.split_gain * cost + _EPSILON
        return gain and cost + first.estimate_s < before - _EPSILON

    def _potential_finish(
        self, build: Build, agent: AgentView, ready: list[float], work: float
    ) -> float:
        """When the build's work would end if every other agent joined that pays to.

        Candidates: every other agent, warm (no install) or cold, less as many cold ones as
        other builds nobody serves yet (those will take them). They join in the order they
        could start (ready, plus the install if cold), each only if it brings the end
        forward by the split rule's margin. Sizing a batch to end then leaves the rest of
        the build to them: batches shrink as the backlog drains, and stay whole while the
        other agents are needed elsewhere (each batch costs a round trip on the platform).
        """
        serving = self._serving.get(build, set())
        warm, cold = [], []
        for other in self._s.agents:
            if other.agent_id == agent.agent_id or other.agent_id in serving:
                continue  # this agent, or one already counted in `ready`
            if self._holds[other.agent_id] == build:
                warm.append((self._ready[other.agent_id], 0.0))
            else:
                cost = self._install_s(build)
                cold.append((self._ready[other.agent_id] + cost, cost))
        unserved = sum(
            1
            for b, queue in self._queues.items()
            if queue and b != build and not self._servers.get(b)
        )
        cold.sort()
        helpers = sorted(warm + cold[unserved:])
        end = finish_time(ready, work)
        for start, cost in helpers:
            sooner = finish_time([*ready, start], work)
            if end - sooner < self._s.split_gain * cost + _EPSILON:
                break
            ready, end = [*ready, start], sooner
        return end

    def _fills(self, count: int, work: float, job: PendingJob) -> bool:
        """May a batch of `count` jobs (`work` seconds) already at batch_max take `job`?"""
        if self._s.batch_fill_s <= 0:
            return False  # off (no-op tests, estimated 0 s, would fit in any fill)
        most = BATCH_CEILING if job.seen else min(BATCH_CEILING, UNSEEN_FILL * self._s.batch_max)
        return count < most and work + job.estimate_s <= self._s.batch_fill_s + _EPSILON

    def _best_agent(self, build: Build) -> tuple[AgentView, float]:
        """The free agent that serves `build` best, and the install it pays first.

        A warm agent (the build installed) pays nothing. Otherwise a cold agent, preferring
        one whose installed build has no pending work left (so no other build loses a warm
        agent), then the first listed.
        """
        for agent in self._free:
            if agent.installed == build:
                return agent, 0.0

        def spare(agent: AgentView) -> bool:
            return agent.installed is None or not self._queues.get(agent.installed)

        agent = next((a for a in self._free if spare(a)), self._free[0])
        return agent, self._install_s(build)

    def _take(self, candidate: _Candidate) -> Assignment:
        build, agent, cost = candidate.build, candidate.agent, candidate.cost_s
        queue = self._queues[build]
        servers = self._servers.get(build, [])
        limit = self._potential_finish(build, agent, [*servers, cost], self._work[build]) - cost
        taken: list[PendingJob] = []
        work = 0.0
        for job in queue:
            if len(taken) >= self._s.batch_max and not self._fills(len(taken), work, job):
                break
            # Nearest rounding: take the job if the batch ends closer to the limit with it.
            if taken and work + job.estimate_s / 2 > limit + _EPSILON:
                break
            taken.append(job)
            work += job.estimate_s
        del queue[: len(taken)]
        self._work[build] = max(self._work[build] - work, 0.0)
        self._free.remove(agent)
        self._servers.setdefault(build, []).append(cost + work)
        self._serving.setdefault(build, set()).add(agent.agent_id)
        self._ready[agent.agent_id] = cost + work
        self._holds[agent.agent_id] = build
        self._org_load[build[0]] = self._org_load.get(build[0], 0) + 1
        return Assignment(agent.agent_id, build[0], build[1], tuple(job.job_id for job in taken))
