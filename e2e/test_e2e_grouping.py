"""Grouping as a user sees it, in cases only real grouping passes.

All cases run on the `device` target, which the stack runs with ONE agent: while that agent
runs a "blocker" batch, nothing else of the target can be dispatched, so jobs submitted then
wait in their group. Each case uses its own org (groups may be keyed by org too).

The stack's containers run on this one Docker host and read its clock, so a job's
`assigned_at` (written by the scheduler) and `started_at` (by the agent) compare.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from e2e.conftest import STACK_ENV, NotYet, Stack, wait_until

TARGET = "device"
INSTALL_S = float(STACK_ENV["SIM_INSTALL_SECONDS"])
TEST_S = float(STACK_ENV["SIM_TEST_SECONDS"])
BATCH_MAX = int(STACK_ENV["BATCH_MAX_JOBS"])


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def _org() -> str:
    return f"grp-{uuid.uuid4().hex[:8]}"


def _submit(stack: Stack, org: str, version: str, tests: list[tuple[str, int]]) -> list[str]:
    """One request: a job per (test_path, priority), in that order; returns their ids."""
    response = stack.post(
        "/v1/jobs",
        [
            {
                "org_id": org,
                "app_version_id": version,
                "test_path": path,
                "priority": priority,
                "target": TARGET,
            }
            for path, priority in tests
        ],
    )
    assert response.status_code == 201, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


def _the_one_agent(stack: Stack) -> str:
    (agent,) = stack.live_agents(TARGET, 1)
    return str(agent["agent_id"])


def _start_blocker(stack: Stack, org: str) -> list[str]:
    """Three full batches of a fresh version (an install and 3 x BATCH_MAX tests, about 7 s
    with the e2e timings; the agent stays on it, warm, batch after batch) that the target's
    one agent is running when this returns."""
    ids = _submit(
        stack,
        org,
        f"blocker-{uuid.uuid4().hex[:8]}",
        [(f"tests/b{i}.js", 1) for i in range(3 * BATCH_MAX)],
    )

    def running() -> bool:
        jobs = [stack.job_once(job_id) for job_id in ids]
        if not any(job["status"] in {"running", "passed"} for job in jobs):
            raise NotYet(f"blocker statuses: {sorted({job['status'] for job in jobs})}")
        return True

    wait_until(running, timeout=60, what="the blocker batch to start")
    return ids


def _assert_still_busy(stack: Stack, blocker: list[str]) -> None:
    """The blocker was not over when the jobs of the case were all accepted (read after)."""
    jobs = [stack.job(job_id) for job_id in blocker]
    assert not all(job["final"] for job in jobs), "the blocker ended before the case's submits"


def _quiet(stack: Stack) -> None:
    """Wait until no job of the target is waiting or running: work another test left (a
    blocker's last batches, which the planner may put after a case's own group) would take
    the one agent between two batches of a case and change what it has installed."""

    def nothing_unfinished() -> bool:
        for status in ("queued", "assigned", "running"):
            answer = stack.get("/v1/jobs", target=TARGET, status=status, limit=1)
            if answer.status_code >= 500:
                raise NotYet(f"GET /v1/jobs: {answer.status_code}")
            assert answer.status_code == 200, answer.text
            if answer.json()["jobs"]:
                return False
        return True

    wait_until(nothing_unfinished, timeout=120, what=f"no unfinished {TARGET} job")


def _in_run_order(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(jobs, key=lambda job: _epoch(job["started_at"]))


def test_jobs_of_one_version_sent_in_several_requests_while_the_agent_is_busy_share_one_batch(
    stack: Stack,
) -> None:
    agent = _the_one_agent(stack)
    org, version = _org(), f"several-{uuid.uuid4().hex[:8]}"
    blocker = _start_blocker(stack, org)
    requests = [
        _submit(stack, org, version, [(f"tests/r{r}-{i}.js", 1) for i in range(2)])
        for r in range(3)
    ]
    _assert_still_busy(stack, blocker)

    submitted = [job_id for ids in requests for job_id in ids]
    jobs = stack.wait_final(submitted, timeout=120)
    stack.wait_final(blocker, timeout=120)  # leave the agent free for the next case
    assert {job["status"] for job in jobs} == {"passed"}
    # One group, one batch, one install: the three requests were not bound one by one.
    assert len({job["batch_id"] for job in jobs}) == 1, [job["batch_id"] for job in jobs]
    assert {job["assigned_agent"] for job in jobs} == {agent}
    assert sum(job["result"]["install_paid"] for job in jobs) == 1
    # Same priority: they ran in the order they arrived, request after request.
    assert [job["job_id"] for job in _in_run_order(jobs)] == submitted


def test_within_a_group_higher_priority_runs_first_then_arrival_order(stack: Stack) -> None:
    _the_one_agent(stack)
    org, version = _org(), f"prio-{uuid.uuid4().hex[:8]}"
    blocker = _start_blocker(stack, org)
    first = _submit(stack, org, version, [("tests/a-p1.js", 1), ("tests/b-p5.js", 5)])
    second = _submit(
        stack, org, version, [("tests/c-p10.js", 10), ("tests/d-p1.js", 1), ("tests/e-p5.js", 5)]
    )
    _assert_still_busy(stack, blocker)

    jobs = stack.wait_final(first + second, timeout=120)
    stack.wait_final(blocker, timeout=120)  # leave the agent free for the next case
    assert {job["status"] for job in jobs} == {"passed"}
    assert len({job["batch_id"] for job in jobs}) == 1
    order = [job["test_path"] for job in _in_run_order(jobs)]
    assert order == [
        "tests/c-p10.js",
        "tests/b-p5.js",
        "tests/e-p5.js",
        "tests/a-p1.js",
        "tests/d-p1.js",
    ]


def test_a_warm_agent_skips_the_install_and_its_batch_starts_sooner(stack: Stack) -> None:
    agent = _the_one_agent(stack)
    _quiet(stack)  # between the cold batch and the warm one, nothing else may run there
    org, version = _org(), f"warm-{uuid.uuid4().hex[:8]}"
    before = {a["agent_id"]: a["installs"] for a in stack.agents()}[agent]

    cold = stack.wait_final(_submit(stack, org, version, [(f"tests/c{i}.js", 1) for i in range(3)]))
    wait_until(
        lambda: any(
            a["agent_id"] == agent and a["installed_app_version"] == version
            for a in stack.agents_once()
        ),
        timeout=30,
        what=f"{agent} to report {version} installed",
    )
    warm = stack.wait_final(_submit(stack, org, version, [(f"tests/w{i}.js", 1) for i in range(3)]))

    for jobs in (cold, warm):
        assert {job["status"] for job in jobs} == {"passed"}
        assert {job["assigned_agent"] for job in jobs} == {agent}
        assert len({job["batch_id"] for job in jobs}) == 1
    assert {cold[0]["batch_id"]} != {warm[0]["batch_id"]}

    # The cold batch paid the install once, on its first job, for about SIM_INSTALL_SECONDS.
    cold_first, *cold_rest = _in_run_order(cold)
    assert cold_first["result"]["install_paid"] is True
    assert cold_first["result"]["install_s"] >= INSTALL_S * 0.9
    assert all(not j["result"]["install_paid"] and j["result"]["install_s"] == 0 for j in cold_rest)
    # The warm one paid nothing ...
    assert all(not j["result"]["install_paid"] and j["result"]["install_s"] == 0 for j in warm)

    # ... and it shows in elapsed time: from being assigned to its first test starting, the
    # cold batch took at least the install; the warm one started well within it.
    def lead_time(jobs: list[dict[str, Any]]) -> float:
        first = _in_run_order(jobs)[0]
        return _epoch(first["started_at"]) - _epoch(first["assigned_at"])

    assert lead_time(cold) >= INSTALL_S * 0.9, lead_time(cold)
    assert lead_time(warm) < lead_time(cold) - INSTALL_S * 0.5, (lead_time(warm), lead_time(cold))
    # The agent's own counter agrees: one install for the two batches.
    after = stack.wait_installs({agent: before + 1})
    assert after[agent] == before + 1
