"""Pure figures of a run: lower bounds, makespans, installs, percentiles (no I/O).

Every figure is computed from job records as the API returns them (`created_at`,
`started_at`, `finished_at`: ISO-8601 UTC written by the API and the agents, which share
the host's clock; `result.install_paid`, `result.install_s`, `result.duration_s`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

Record = Mapping[str, Any]


def standard_lower_bound(
    jobs: int, versions: int, agents: int, install_s: float, test_s: float
) -> float:
    """The issue's bound: max((N*T + V*I)/K, I + ceil(N/K)*T, ceil(V/K)*(I + T)).

    Every build must be installed at least once, tests cannot be shared below one per agent,
    and an agent installs at least ceil(V/K) builds.
    """
    return max(
        (jobs * test_s + versions * install_s) / agents,
        install_s + math.ceil(jobs / agents) * test_s,
        math.ceil(versions / agents) * (install_s + test_s),
    )


def durations_lower_bound(
    durations_by_build: Mapping[str, Sequence[float]], agents: int, install_s: float
) -> float:
    """The bound from actual test durations: all the work (one install per build) over the
    agents; the longest test after one install; each build's install plus its longest test.
    """
    every = [d for durations in durations_by_build.values() for d in durations]
    if not every:
        return 0.0
    builds = len(durations_by_build)
    return max(
        (sum(every) + builds * install_s) / agents,
        install_s + max(every),
        math.ceil(builds / agents) * install_s + min(every),
    )


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def makespan_s(records: Iterable[Record]) -> float:
    """From the first job's creation to the last job's end."""
    items = list(records)
    start = min(when(r["created_at"]) for r in items)
    end = max(when(r["finished_at"]) for r in items)
    return (end - start).total_seconds()


def installs(records: Iterable[Record]) -> int:
    """Installs paid: each is carried by the first job of its batch (`result.install_paid`)."""
    return sum(1 for r in records if (r.get("result") or {}).get("install_paid"))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` in (0, 1])."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def dispatch_latencies_ms(records: Iterable[Record]) -> list[float]:
    """Per job, from created (ready) to started (running on its agent), in ms.

    `started_at` is written after the install: measured on warm agents, it is the time the
    platform took to hand the job over.
    """
    return [
        (when(r["started_at"]) - when(r["created_at"])).total_seconds() * 1000
        for r in records
        if r.get("started_at")
    ]


@dataclass(frozen=True)
class Segment:
    agent: str
    kind: str  # "install" or "test"
    start_s: float  # seconds since the run's first creation
    length_s: float


def timeline(records: Sequence[Record]) -> list[Segment]:
    """What each agent did over time: installs (before the first test of a batch that paid
    one) and tests (started_at to finished_at), relative to the run's first creation."""
    origin = min(when(r["created_at"]) for r in records)
    segments = []
    for r in records:
        if not (r.get("started_at") and r.get("finished_at") and r.get("assigned_agent")):
            continue
        started = (when(r["started_at"]) - origin).total_seconds()
        ended = (when(r["finished_at"]) - origin).total_seconds()
        result = r.get("result") or {}
        if result.get("install_paid"):
            install = float(result.get("install_s") or 0.0)
            segments.append(Segment(r["assigned_agent"], "install", started - install, install))
        segments.append(Segment(r["assigned_agent"], "test", started, max(ended - started, 0.0)))
    return segments


def ratio(value: float, bound: float) -> float:
    return value / bound if bound > 0 else math.inf


@dataclass(frozen=True)
class RoundTrips:
    """Where the platform's time goes, from the job records' own timestamps (ms, lists).

    - `ready_to_assigned`: a job's creation (API) to its batch being formed (scheduler),
      for jobs created while an agent was idle (the first batch of a run).
    - `assigned_to_running`: a batch formed (scheduler) to its first test starting (agent),
      minus the install the batch paid: RQ enqueue, the worker's dequeue, the batch's setup.
    - `finished_to_assigned`: an agent's batch ending (its last job's `finished_at`) to the
      next batch of that agent being formed, when that batch's jobs were already waiting:
      the agent's reports reaching the scheduler, being applied, and the dispatch pass.
    - `between_tests`: inside a batch, one test's end to the next one's start.
    """

    ready_to_assigned: list[float]
    assigned_to_running: list[float]
    finished_to_assigned: list[float]
    between_tests: list[float]


def round_trips(records: Iterable[Record]) -> RoundTrips:
    """The figures of `RoundTrips` over records that ran (`assigned_at`, `started_at`)."""
    batches: dict[str, list[Record]] = {}
    for r in records:
        if r.get("batch_id") and r.get("assigned_at") and r.get("started_at"):
            batches.setdefault(r["batch_id"], []).append(r)
    by_agent: dict[str, list[list[Record]]] = {}
    ready, handover, between = [], [], []
    for jobs in batches.values():
        jobs.sort(key=lambda r: when(r["started_at"]))
        by_agent.setdefault(jobs[0]["assigned_agent"], []).append(jobs)
        first = jobs[0]
        install = float((first.get("result") or {}).get("install_s") or 0.0)
        handover.append(_ms(first["assigned_at"], first["started_at"]) - install * 1000)
        for before, after in pairwise(jobs):
            if before.get("finished_at"):
                between.append(_ms(before["finished_at"], after["started_at"]))
    turnaround = []
    for runs in by_agent.values():
        runs.sort(key=lambda jobs: when(jobs[0]["assigned_at"]))
        for index, jobs in enumerate(runs):
            assigned = when(jobs[0]["assigned_at"])
            created = max(when(r["created_at"]) for r in jobs)
            if index == 0:
                ready.append((assigned - created).total_seconds() * 1000)
                continue
            ended = [when(r["finished_at"]) for r in runs[index - 1] if r.get("finished_at")]
            if ended and created < max(ended):
                turnaround.append((assigned - max(ended)).total_seconds() * 1000)
    return RoundTrips(ready, handover, turnaround, between)


def _ms(start: str, end: str) -> float:
    return (when(end) - when(start)).total_seconds() * 1000


@dataclass(frozen=True)
class AgentAccount:
    """Where one agent's share of a run's makespan went (seconds, from the records).

    `lead_in`: the run's first creation to the agent's first install or test; `install`
    and `test`: what the agent spent installing and testing (as measured by the agent);
    `between_batches`: from one batch's last end to the next batch's install or first test
    (the platform's round trip, and any wait for the scheduler); `between_tests`: inside
    batches; `tail`: the agent's last end to the run's last end (idle while others finish);
    `planned`: the agent's busy time on the simulator's own durations (`install_s` and
    `duration_s` as reported), with no platform time at all.
    """

    agent: str
    batches: int
    installs: int
    lead_in: float
    install: float
    test: float
    between_batches: float
    between_tests: float
    tail: float
    planned: float


def accounts(records: Sequence[Record]) -> list[AgentAccount]:
    """Each agent's `AgentAccount` over a run's records (agents that ran something)."""
    ran = [r for r in records if r.get("started_at") and r.get("finished_at")]
    if not ran:
        return []
    origin = min(when(r["created_at"]) for r in records)
    end = max(when(r["finished_at"]) for r in ran)
    by_agent: dict[str, dict[str, list[Record]]] = {}
    for r in ran:
        by_agent.setdefault(r["assigned_agent"], {}).setdefault(r["batch_id"], []).append(r)
    out = []
    for agent, batches in sorted(by_agent.items()):
        ordered = sorted(
            (sorted(jobs, key=lambda r: when(r["started_at"])) for jobs in batches.values()),
            key=lambda jobs: when(jobs[0]["started_at"]),
        )
        installs = install = test = between_batches = between_tests = planned = 0.0
        previous_end = None
        lead_in = 0.0
        for jobs in ordered:
            first = jobs[0]
            result = first.get("result") or {}
            paid = float(result.get("install_s") or 0.0) if result.get("install_paid") else 0.0
            installs += 1 if result.get("install_paid") else 0
            install += paid
            begins = when(first["started_at"]).timestamp() - paid
            if previous_end is None:
                lead_in = begins - origin.timestamp()
            else:
                between_batches += max(begins - previous_end, 0.0)
            planned += paid
            for before, after in pairwise(jobs):
                between_tests += max(
                    (when(after["started_at"]) - when(before["finished_at"])).total_seconds(), 0.0
                )
            for r in jobs:
                test += (when(r["finished_at"]) - when(r["started_at"])).total_seconds()
                planned += float((r.get("result") or {}).get("duration_s") or 0.0)
            previous_end = max(when(r["finished_at"]) for r in jobs).timestamp()
        assert previous_end is not None
        out.append(
            AgentAccount(
                agent,
                len(ordered),
                int(installs),
                round(lead_in, 3),
                round(install, 3),
                round(test, 3),
                round(between_batches, 3),
                round(between_tests, 3),
                round(end.timestamp() - previous_end, 3),
                round(planned, 3),
            )
        )
    return out
