"""The planning policies on the benchmark's workloads, in simulated time (no platform).

A small discrete-event loop stands in for the dispatcher and the agents: whenever an agent
is free and jobs are pending it asks the policy, an agent pays the install when its build
changes (or when told to), then runs its tests. No platform overhead, so the makespans are
what the policy alone achieves, against the issue's lower bounds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from qgjob_scheduler.planning import (
    DEFAULT_BATCH_FILL_S,
    POLICIES,
    AgentView,
    PendingJob,
    Policy,
    Situation,
)

INSTALL_S, TEST_S = 2.0, 0.2


@dataclass(frozen=True)
class Job:
    job_id: str
    org_id: str
    version: str
    duration_s: float
    arrives_s: float = 0.0


@dataclass
class Run:
    finished: dict[str, float] = field(default_factory=dict)
    installs: int = 0

    def makespan(self, jobs: list[Job] | None = None) -> float:
        ids = [job.job_id for job in jobs] if jobs else list(self.finished)
        return max(self.finished[job_id] for job_id in ids)


def simulate(
    policy: Policy,
    jobs: list[Job],
    agents: int,
    *,
    estimates: dict[str, float] | None = None,
    warm: list[tuple[str, str] | None] | None = None,
    batch_max: int = 10,
) -> Run:
    run = Run()
    installed: list[tuple[str, str] | None] = list(warm or [None] * agents)
    free_at = [0.0] * agents
    pending: dict[str, tuple[Job, int]] = {}
    arrivals = sorted(jobs, key=lambda job: job.arrives_s)
    now, next_arrival, order = 0.0, 0, 0
    while True:
        while next_arrival < len(arrivals) and arrivals[next_arrival].arrives_s <= now:
            job = arrivals[next_arrival]
            pending[job.job_id] = (job, order)
            order, next_arrival = order + 1, next_arrival + 1
        if pending and any(t <= now for t in free_at):
            situation = Situation(
                "emulator",
                [
                    PendingJob(
                        job.job_id,
                        job.org_id,
                        job.version,
                        5,
                        now - job.arrives_s,
                        (estimates or {}).get(job.job_id, job.duration_s),
                        float(seq),
                    )
                    for job, seq in pending.values()
                ],
                [
                    AgentView(f"a{i}", installed[i], free_at[i] <= now, max(free_at[i] - now, 0))
                    for i in range(agents)
                ],
                {(job.org_id, job.version): INSTALL_S for job, _ in pending.values()},
                batch_max,
                batch_fill_s=DEFAULT_BATCH_FILL_S,  # as the scheduler runs it
            )
            for assignment in policy(situation):
                i = int(assignment.agent_id[1:])
                build = (assignment.org_id, assignment.app_version_id)
                clock = now
                if installed[i] != build or assignment.force_install:
                    clock += INSTALL_S
                    run.installs += 1
                    installed[i] = build
                for job_id in assignment.job_ids:
                    job, _ = pending.pop(job_id)
                    clock += job.duration_s
                    run.finished[job_id] = clock
                free_at[i] = clock
        upcoming = [t for t in free_at if t > now]
        if next_arrival < len(arrivals):
            upcoming.append(arrivals[next_arrival].arrives_s)
        if not upcoming:
            assert not pending, "jobs left pending with every agent free"
            return run
        now = min(upcoming)


def _suite(org: str, versions: int, count: int, *, arrives_s: float = 0.0) -> list[Job]:
    return [Job(f"{org}-{i}", org, f"v{i % versions}", TEST_S, arrives_s) for i in range(count)]


def _bound(jobs: int, versions: int, agents: int) -> float:
    return max(
        (jobs * TEST_S + versions * INSTALL_S) / agents,
        INSTALL_S + math.ceil(jobs / agents) * TEST_S,
        math.ceil(versions / agents) * (INSTALL_S + TEST_S),
    )


def test_standard_workload_near_the_best_possible() -> None:
    # 4 agents, 200 jobs over 5 versions: the bound is 12.5 s, but 5 builds on 4 agents
    # cannot do better than 14 s (an agent with one install runs at most one 40-job build,
    # 10 s; with two installs, (M - 4) / 0.2 jobs: 200 jobs need M >= 14).
    run = simulate(POLICIES["qgjob"], _suite("org", 5, 200), 4)
    assert run.makespan() <= 14.0 + 1e-6
    assert run.makespan() / _bound(200, 5, 4) <= 1.121
    assert run.installs <= 8
    fifo = simulate(POLICIES["fifo"], _suite("org", 5, 200), 4)
    assert fifo.installs == 200
    assert fifo.makespan() / run.makespan() >= 7.8


def test_standard_workload_submitted_one_job_at_a_time() -> None:
    jobs = [
        Job(job.job_id, job.org_id, job.version, job.duration_s, i * 0.005)
        for i, job in enumerate(_suite("org", 5, 200))
    ]
    run = simulate(POLICIES["qgjob"], jobs, 4)
    assert run.makespan() / _bound(200, 5, 4) <= 1.2
    assert run.installs <= 9


def test_affinity_one_install_per_build_and_none_on_the_rerun() -> None:
    jobs = _suite("org", 4, 160)
    run = simulate(POLICIES["qgjob"], jobs, 4)
    assert run.installs == 4
    assert run.makespan() / _bound(160, 4, 4) <= 1.01
    warm: list[tuple[str, str] | None] = [("org", f"v{i}") for i in range(4)]
    rerun = simulate(POLICIES["qgjob"], jobs, 4, warm=warm)
    assert rerun.installs == 0


def _durations(count: int) -> list[Job]:
    """Log-uniform in [0.05, 3] s from a hash of the path, as the simulator driver does."""
    jobs = []
    for i in range(count):
        fraction = int.from_bytes(hashlib.sha256(f"t{i}".encode()).digest()[:8]) / 2**64
        jobs.append(Job(f"t{i}", "org", f"v{i % 2}", 0.05 * 60**fraction))
    return jobs


def test_durations_with_history_close_to_the_bound() -> None:
    jobs = _durations(160)
    bound = max(
        (sum(job.duration_s for job in jobs) + 2 * INSTALL_S) / 4,
        INSTALL_S + max(job.duration_s for job in jobs),
    )
    cold = simulate(
        POLICIES["qgjob"], jobs, 4, estimates=dict.fromkeys((j.job_id for j in jobs), 1)
    )
    warm = simulate(POLICIES["qgjob"], jobs, 4)
    assert warm.makespan() / bound <= 1.10
    assert warm.makespan() <= cold.makespan()


def test_fairness_the_small_org_is_done_long_before_the_big_one() -> None:
    big = _suite("big", 2, 400)
    small = _suite("small", 1, 10, arrives_s=1.0)
    run = simulate(POLICIES["qgjob"], big + small, 4)
    small_done = run.makespan(small) - 1.0  # since it submitted
    assert small_done <= 0.25 * run.makespan(big)
    # fifo serves it after the big org's backlog
    fifo = simulate(POLICIES["fifo"], big + small, 4)
    assert fifo.makespan(small) - 1.0 >= 0.9 * fifo.makespan(big)


def test_scale_four_agents_are_nearly_four_times_faster() -> None:
    jobs = _suite("org", 4, 160)
    one = simulate(POLICIES["qgjob"], jobs, 1)
    four = simulate(POLICIES["qgjob"], jobs, 4)
    assert one.makespan() / four.makespan() >= 3.9
