"""(d) `docker compose up --scale agent-emulator=3` adds agents and work spreads over them."""

from __future__ import annotations

import uuid
from collections import Counter

from e2e.conftest import Stack, wait_until


def test_30_single_version_jobs_spread_over_scaled_emulator_agents(stack: Stack) -> None:
    stack.compose_up("--no-build", "--scale", "agent-emulator=3")
    emulators = wait_until(
        lambda: (
            [a for a in stack.agents() if a["alive"] and a["target"] == "emulator"]
            if sum(a["alive"] and a["target"] == "emulator" for a in stack.agents()) == 3
            else None
        ),
        timeout=60,
        what="3 live emulator agents",
    )
    assert len({a["agent_id"] for a in emulators}) == 3

    before = {a["agent_id"]: a["installs"] for a in stack.wait_agents_idle()}
    version = f"scale-{uuid.uuid4().hex[:8]}"
    response = stack.post(
        "/v1/jobs",
        [
            {"org_id": "qualgent", "app_version_id": version, "test_path": f"tests/t{i}.spec.js"}
            for i in range(30)
        ],
    )
    assert response.status_code == 201, response.text
    job_ids = [job["job_id"] for job in response.json()["jobs"]]

    jobs = stack.wait_final(job_ids, timeout=180)
    assert Counter(job["status"] for job in jobs) == {"passed": 30}
    per_agent = Counter(job["assigned_agent"] for job in jobs)
    assert len(per_agent) >= 2, per_agent
    # The group was split into large batches, one per agent it went to, each paying one
    # install: not trickled out job by job.
    batches = {job["batch_id"] for job in jobs}
    assert len(batches) == len(per_agent), per_agent
    after = {a["agent_id"]: a["installs"] for a in stack.wait_agents_idle()}
    assert sum(after[agent] - before.get(agent, 0) for agent in after) == len(per_agent)


def test_scaling_down_while_work_is_pending_loses_nothing(stack: Stack) -> None:
    stack.compose_up("--no-build", "--scale", "agent-emulator=3")
    wait_until(
        lambda: sum(a["alive"] and a["target"] == "emulator" for a in stack.agents()) == 3,
        timeout=60,
        what="3 live emulator agents",
    )
    version = f"down-{uuid.uuid4().hex[:8]}"
    response = stack.post(
        "/v1/jobs",
        [
            {"org_id": "qualgent", "app_version_id": version, "test_path": f"tests/d{i}.spec.js"}
            for i in range(60)
        ],
    )
    assert response.status_code == 201, response.text
    job_ids = [job["job_id"] for job in response.json()["jobs"]]
    wait_until(
        lambda: any(job["status"] == "passed" for job in map(stack.job, job_ids)),
        timeout=60,
        what="the first job to pass",
    )

    # Two agents stop mid-run: each finishes the batch it is running, and a batch bound to
    # one that it had not started goes back to the group.
    stack.compose_up("--no-build", "--scale", "agent-emulator=1")

    jobs = stack.wait_final(job_ids, timeout=180)
    assert Counter(job["status"] for job in jobs) == {"passed": 60}
    assert len({job["assigned_agent"] for job in jobs}) >= 2
