"""Which free agent takes which pending group: a pure function, no I/O.

The dispatcher gathers the free agents and the pending groups of ONE target, calls a policy,
and carries out the assignments it returns. Any function with the `Policy` signature can
replace `assign`.

Rules of `assign`:
- warm first: a free agent whose installed build has pending jobs takes that group;
- otherwise a free agent takes the group that has waited longest (lowest `waiting_since_ms`;
  ties by build). A group waits since it arrived, or since a batch last took part
  of it (see `qgjob_scheduler.dispatch`), so builds take turns;
- a batch holds at most `batch_max` jobs, so several free agents split a large group, one
  batch each; a group that fits in one batch goes to one agent, and once a group is fully
  assigned the next free agents move on to other groups;
- the jobs of a split group are spread evenly over the agents that took it.
An agent gets at most one assignment; agents that find no pending work get none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FreeAgent:
    agent_id: str
    installed_build: str | None  # names.build(org_id, app_version_id) installed, or None


@dataclass(frozen=True)
class PendingGroup:
    build: str  # names.build(org_id, app_version_id): a group is one build of one target
    size: int  # pending jobs in the group
    # When the group arrived, or re-arrived (a batch took part of it): its score in groups.
    waiting_since_ms: float


@dataclass(frozen=True)
class Assignment:
    agent_id: str
    build: str
    count: int  # jobs to take from the group into one batch (1..batch_max)


Policy = Callable[[Sequence[FreeAgent], Sequence[PendingGroup], int], list[Assignment]]


def assign(
    agents: Sequence[FreeAgent], groups: Sequence[PendingGroup], batch_max: int
) -> list[Assignment]:
    """Assign pending groups of one target to its free agents (see the module's rules)."""
    if batch_max < 1:
        raise ValueError(f"batch_max must be at least 1, got {batch_max}")
    remaining = {g.build: g.size for g in groups if g.size > 0}
    oldest_first = [
        g.build for g in sorted(groups, key=lambda g: (g.waiting_since_ms, g.build)) if g.size > 0
    ]
    # build -> agents that took it, in the order they did; and how many jobs in total.
    takers: dict[str, list[str]] = {}
    taken: dict[str, int] = {}

    def take(agent_id: str, build: str) -> None:
        count = min(remaining[build], batch_max)
        remaining[build] -= count
        takers.setdefault(build, []).append(agent_id)
        taken[build] = taken.get(build, 0) + count

    cold: list[FreeAgent] = []
    for agent in agents:
        warm = agent.installed_build
        if warm is not None and remaining.get(warm, 0) > 0:
            take(agent.agent_id, warm)
        else:
            cold.append(agent)
    for agent in cold:
        build = next((v for v in oldest_first if remaining[v] > 0), None)
        if build is None:
            break
        take(agent.agent_id, build)

    assignments: list[Assignment] = []
    for build, agent_ids in takers.items():
        share, extra = divmod(taken[build], len(agent_ids))
        assignments.extend(
            Assignment(agent_id, build, share + (1 if i < extra else 0))
            for i, agent_id in enumerate(agent_ids)
        )
    return assignments
