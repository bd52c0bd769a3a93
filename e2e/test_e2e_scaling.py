"""(d) `docker compose up --scale agent-emulator=N` adds or removes agents; work follows.

The stack's containers all run on this one Docker host and read its clock, so the agents'
timestamps (started_at) and the docker daemon's (the time an agent got SIGTERM) compare.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from e2e.conftest import STACK_ENV, Stack, stop_signals, wait_until

TARGET = "emulator"
SERVICE = f"agent-{TARGET}"
INSTALL_S = float(STACK_ENV["SIM_INSTALL_SECONDS"])


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def _submit(stack: Stack, version: str, count: int, prefix: str) -> list[str]:
    org = f"scale-{uuid.uuid4().hex[:8]}"
    response = stack.post(
        "/v1/jobs",
        [
            {"org_id": org, "app_version_id": version, "test_path": f"tests/{prefix}{i}.spec.js"}
            for i in range(count)
        ],
    )
    assert response.status_code == 201, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


@pytest.fixture
def three_emulators(stack: Stack) -> Iterator[list[dict[str, Any]]]:
    """Three live emulator agents while the test runs, then one again: the shared stack's
    other tests (e.g. the pipeline's one-batch-per-group check) assume one per target."""
    stack.scale(SERVICE, 3)
    try:
        yield stack.live_agents(TARGET, 3)
    finally:
        stack.scale(SERVICE, 1)
        stack.live_agents(TARGET, 1)


def test_30_single_version_jobs_spread_over_scaled_emulator_agents(
    stack: Stack, three_emulators: list[dict[str, Any]]
) -> None:
    emulators = three_emulators
    assert len({a["agent_id"] for a in emulators}) == 3
    before = {a["agent_id"]: a["installs"] for a in emulators}

    job_ids = _submit(stack, f"scale-{uuid.uuid4().hex[:8]}", 30, "t")
    jobs = stack.wait_final(job_ids, timeout=180)
    assert Counter(job["status"] for job in jobs) == {"passed": 30}
    per_agent = Counter(job["assigned_agent"] for job in jobs)
    assert len(per_agent) >= 2, per_agent
    # The group was split into large batches, one per agent it went to, each paying one
    # install: not trickled out job by job. Counted from the job records themselves.
    batches_of: dict[str, set[str]] = defaultdict(set)
    for job in jobs:
        batches_of[job["assigned_agent"]].add(job["batch_id"])
    assert all(len(batches) == 1 for batches in batches_of.values()), batches_of
    paid = Counter(job["assigned_agent"] for job in jobs if job["result"]["install_paid"])
    assert paid == Counter(dict.fromkeys(per_agent, 1)), paid
    # Each agent's own counter agrees; each is read when it has reported, not all at once.
    expected = {agent: before.get(agent, 0) + 1 for agent in per_agent}
    after = stack.wait_installs(expected)
    assert {agent: after[agent] for agent in expected} == expected


class Sampler:
    """Reads the run's job records every 0.2 s in a background thread, keeping every
    (agent, batch) each job was seen bound to: what a user polling the API could see."""

    def __init__(self, stack: Stack, version: str) -> None:
        self._stack, self._version = stack, version
        self.bound: dict[str, set[tuple[str, str]]] = defaultdict(set)  # job -> (agent, batch)
        self.samples = 0
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def seen(self) -> set[tuple[str, str]]:
        """Every (agent, batch) seen so far."""
        with self._lock:
            return {pair for pairs in self.bound.values() for pair in pairs}

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                page = self._stack.get("/v1/jobs", app_version_id=self._version, limit=500)
                jobs = page.json()["jobs"] if page.status_code == 200 else []
            except requests.RequestException:
                jobs = []  # a sample missed; the next one follows
            with self._lock:
                for job in jobs:
                    if job["assigned_agent"] and job["batch_id"]:
                        self.bound[job["job_id"]].add((job["assigned_agent"], job["batch_id"]))
            self.samples += bool(jobs)
            self._done.wait(0.2)


def test_scaling_down_mid_run_loses_nothing_and_stopped_agents_start_no_batch(
    stack: Stack,
) -> None:
    """Three emulator agents share a run long enough to outlast `--scale agent-emulator=1`:
    the two removed agents are told to stop (SIGTERM) mid-run."""
    stack.scale(SERVICE, 3)
    wait_until(
        lambda: all(a["current_batch_id"] is None for a in stack.live_agents(TARGET, 3)),
        timeout=60,
        what="3 live, idle emulator agents",
    )
    containers = stack.containers(f"agent-{TARGET}")
    assert [c.number for c in containers] == [1, 2, 3]
    kept, *removed = containers  # compose keeps the lowest numbers when scaling down
    stopped = {c.agent_id(TARGET): c for c in removed}

    version = f"down-{uuid.uuid4().hex[:8]}"
    # 400 tests of 0.2 s: over a minute on the one agent left, however long compose takes.
    job_ids = _submit(stack, version, 400, "d")
    with Sampler(stack, version) as sampler:
        wait_until(
            lambda: {agent for agent, _ in sampler.seen()} >= set(stopped),
            timeout=30,
            what="the agents to be removed to have work",
        )
        with stop_signals() as signals:
            stack.scale(SERVICE, 1)
        jobs = stack.wait_final(job_ids, timeout=240)

    assert [c.container_id for c in stack.containers(f"agent-{TARGET}")] == [kept.container_id]
    # Nothing lost: every job passed, each in one attempt (a batch taken back has its
    # attempts restored before it is assigned again).
    assert Counter(job["status"] for job in jobs) == {"passed": 400}
    assert Counter(job["attempts"] for job in jobs) == {1: 400}
    by_id = {job["job_id"]: job for job in jobs}

    # The work outlasted the scale-down: batches began after the agents were told to stop
    # (later than a batch already under way could: its install and a margin), holding many
    # jobs, and all of them ran on the agent that stayed.
    assert set(signals) >= {c.container_id for c in removed}, signals
    told = max(signals[c.container_id] for c in removed)
    first_start: dict[str, float] = {}
    for job in jobs:
        start = _epoch(job["started_at"])
        first_start[job["batch_id"]] = min(start, first_start.get(job["batch_id"], start))
    after = [job for job in jobs if first_start[job["batch_id"]] > told + INSTALL_S + 1.0]
    assert len(after) >= 20, f"only {len(after)} jobs ran in batches begun after the scale-down"
    assert {job["assigned_agent"] for job in after} == {kept.agent_id(TARGET)}

    # The stopped agents took no new batch after they were told to stop (their SIGTERM, as
    # the docker daemon logged it): every batch one of them ran was bound to it before the
    # signal, and began by then (a batch's first test starts after its install, if any).
    assert set(signals) >= {c.container_id for c in removed}, signals
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        batches[job["batch_id"]].append(job)
    for agent, container in stopped.items():
        stop = signals[container.container_id]
        ran = {b: js for b, js in batches.items() if js[0]["assigned_agent"] == agent}
        assert ran, f"{agent} ran nothing of the run: it was not stopped mid-run"
        bound_late = sorted(b for b, js in ran.items() if _epoch(js[0]["assigned_at"]) > stop)
        started_late = sorted(
            b
            for b, js in ran.items()
            if min(_epoch(j["started_at"]) for j in js) > stop + INSTALL_S + 1.0
        )
        assert bound_late == [], f"{agent} ran batches {bound_late} bound after its SIGTERM"
        assert started_late == [], f"{agent} started batches {started_late} after its SIGTERM"

    # A batch seen bound to a stopped agent that it never ran came back to the group: its
    # jobs ran on the agent that stayed, in another batch, each still in one attempt.
    came_back = {
        job_id: (agent, batch)
        for job_id, seen in sampler.bound.items()
        for agent, batch in seen
        if agent in stopped and by_id[job_id]["batch_id"] != batch
    }
    for job_id, (agent, batch) in came_back.items():
        final = by_id[job_id]
        assert final["assigned_agent"] == kept.agent_id(TARGET), (agent, batch, final)
        assert final["attempts"] == 1, final
    print(f"\nsampled {sampler.samples} times; {len(came_back)} jobs came back from stopped agents")
