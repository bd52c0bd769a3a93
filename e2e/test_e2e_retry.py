"""Job control on the scheduler's and the agents' side, through a compose stack of its own:
retries of an infrastructure error on a second agent, flaky tests, both timeouts, and the
cancel of an assigned and of a running job.

These need settings the shared stack does not have: tests long enough to be caught running
(SIM_TEST_SECONDS=3), a short AGENT_TEST_TIMEOUT_S, the simulator's first-attempt faults
(SIM_FLAKY_PATTERN, SIM_INSTALL_ERROR_PATTERN) and two device agents. So this module runs
ONE extra stack (project `{QGJOB_E2E_PROJECT}-jobctl`), shared by its tests and removed
with its volumes at the end. The cancel of a queued job is e2e/test_e2e_control.py's.

Jobs that must pass within those 3 s tests carry their own `timeout_s` (which replaces the
agent's AGENT_TEST_TIMEOUT_S), which is itself under test.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from testcontainers.compose import DockerCompose

from e2e.conftest import PROJECT, REPO_ROOT, NotYet, Stack, _free_port, wait_until

JOBCTL_PROJECT = f"{PROJECT}-jobctl"
TEST_S = 3.0  # SIM_TEST_SECONDS
AGENT_TIMEOUT_S = 1.5  # AGENT_TEST_TIMEOUT_S: shorter than a test
LONG = 20.0  # the `timeout_s` of a job that must run to its end
JOBCTL_ENV = {
    "COMPOSE_PROJECT_NAME": JOBCTL_PROJECT,
    "SIM_INSTALL_SECONDS": "0.5",
    "SIM_TEST_SECONDS": str(TEST_S),
    "SIM_FAIL_PATTERN": "*fail*",
    "SIM_ERROR_PATTERN": "",
    "SIM_FLAKY_PATTERN": "*flaky*",
    "SIM_INSTALL_ERROR_PATTERN": "*install-error*",
    "AGENT_TEST_TIMEOUT_S": str(AGENT_TIMEOUT_S),
    "JOB_RETRY_BACKOFF_S": "0.5",
    "BATCH_MAX_JOBS": "10",
}
ORG = "e2e-jobctl"


@pytest.fixture(scope="module")
def jobctl() -> Iterator[Stack]:
    port = _free_port()
    env = {**os.environ, **JOBCTL_ENV, "QGJOB_API_PORT": str(port)}
    stack = Stack(
        compose=DockerCompose(REPO_ROOT, compose_file_name="docker-compose.yml"),
        api_url=f"http://127.0.0.1:{port}",
        env=env,
    )
    try:
        stack.compose_up("--build", "--scale", "agent-device=2", timeout=600)
        stack.live_agents("device", 2)
        stack.live_agents("emulator", 1)
        stack.live_agents("browserstack", 1)
        yield stack
    finally:
        logs = subprocess.run(
            ["docker", "compose", "logs", "--no-color"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        (REPO_ROOT / ".e2e").mkdir(exist_ok=True)
        (REPO_ROOT / ".e2e" / "compose-jobctl.log").write_text(logs.stdout)
        subprocess.run(
            ["docker", "compose", "down", "--volumes", "--remove-orphans"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            check=False,
            timeout=300,
        )


def _version(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def _submit(stack: Stack, jobs: list[dict[str, Any]]) -> list[str]:
    response = stack.post("/v1/jobs", {"jobs": [{"org_id": ORG, **job} for job in jobs]})
    assert response.status_code == 201, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


def _wait_status(stack: Stack, job_id: str, statuses: set[str], timeout: float = 60) -> Any:
    def probe() -> dict[str, Any]:
        job = stack.job_once(job_id)
        if job["status"] not in statuses:
            raise NotYet(f"{job_id} is {job['status']}")
        return job

    return wait_until(probe, timeout=timeout, interval=0.1, what=f"{job_id} in {statuses}")


def _cancel(stack: Stack, job_id: str) -> None:
    response = requests.post(f"{stack.api_url}/v1/jobs/{job_id}/cancel", timeout=30)
    assert response.status_code == 202, response.text


def test_an_install_error_is_retried_and_passes_on_a_second_agent(jobctl: Stack) -> None:
    devices = {agent["agent_id"] for agent in jobctl.live_agents("device", 2)}
    (job_id,) = _submit(
        jobctl,
        [
            {
                "app_version_id": _version("install-error"),  # its first install fails
                "test_path": "tests/checkout.spec.js",
                "target": "device",
                "timeout_s": LONG,
            }
        ],
    )

    (job,) = jobctl.wait_final([job_id], timeout=90)

    assert job["status"] == "passed", job
    assert job["attempts"] == 2
    first, second = job["history"]
    assert (first["outcome"], first["reason"], first["retried"]) == (
        "error",
        "install_failed",
        True,
    )
    assert (second["outcome"], second["retried"]) == ("passed", False)
    # the retry ran on the OTHER device agent
    assert {first["agent_id"], second["agent_id"]} == devices
    assert job["assigned_agent"] == second["agent_id"]
    assert first["batch_id"] != second["batch_id"]
    assert all(entry["assigned_at"] and entry["finished_at"] for entry in job["history"])
    assert second["started_at"]
    assert not job["flaky"]


def test_a_flaky_test_passes_with_a_rerun_and_fails_without(jobctl: Stack) -> None:
    version = _version("flaky")
    with_rerun, without = _submit(
        jobctl,
        [
            {
                "app_version_id": version,
                "test_path": f"tests/flaky-login-{n}.spec.js",
                "target": "emulator",
                "timeout_s": LONG,
                "retries": retries,
            }
            for n, retries in ((1, 1), (2, 0))
        ],
    )

    rerun, single = jobctl.wait_final([with_rerun, without], timeout=120)

    assert (rerun["status"], rerun["flaky"]) == ("passed", True), rerun
    assert [(e["outcome"], e["retried"]) for e in rerun["history"]] == [
        ("failed", True),
        ("passed", False),
    ]
    # rerun on the same build: one install on the one emulator agent covered both runs
    assert all(e["agent_id"] == rerun["assigned_agent"] for e in rerun["history"])
    assert (single["status"], single["flaky"]) == ("failed", False), single
    assert [e["outcome"] for e in single["history"]] == ["failed"]


def test_a_test_past_its_run_timeout_is_stopped_and_ends_error_timeout(jobctl: Stack) -> None:
    version = _version("timeouts")
    agent_default, own = _submit(
        jobctl,
        [
            # no timeout_s: the agent's AGENT_TEST_TIMEOUT_S (1.5 s) stops its 3 s test
            {"app_version_id": version, "test_path": "tests/slow.spec.js", "target": "emulator"},
            # its own timeout_s, shorter still
            {
                "app_version_id": version,
                "test_path": "tests/slower.spec.js",
                "target": "emulator",
                "timeout_s": 0.5,
            },
        ],
    )

    by_agent, by_job = jobctl.wait_final([agent_default, own], timeout=90)

    for job, limit in ((by_agent, AGENT_TIMEOUT_S), (by_job, 0.5)):
        assert job["status"] == "error", job
        assert job["result"]["reason"] == "timeout"
        assert f"{limit:g} s run timeout" in job["result"]["log_tail"]
        assert limit <= job["result"]["duration_s"] < TEST_S
        # a timeout is not retried: the test itself is too slow
        assert job["attempts"] == 1
        assert [e["reason"] for e in job["history"]] == ["timeout"]


def test_a_job_no_agent_takes_in_time_expires(jobctl: Stack) -> None:
    # the one browserstack agent is busy with three 3 s tests of another build (one batch)
    busy_version = _version("busy")
    busy = _submit(
        jobctl,
        [
            {
                "app_version_id": busy_version,
                "test_path": f"tests/long-{n}.spec.js",
                "target": "browserstack",
                "timeout_s": LONG,
            }
            for n in range(3)
        ],
    )
    _wait_status(jobctl, busy[0], {"running"})

    (job_id,) = _submit(
        jobctl,
        [
            {
                "app_version_id": _version("waits"),
                "test_path": "tests/a.spec.js",
                "target": "browserstack",
                "queue_ttl_s": 1.0,
            }
        ],
    )

    (job,) = jobctl.wait_final([job_id], timeout=30)
    assert job["status"] == "error", job
    assert job["result"]["reason"] == "expired"
    assert job["assigned_agent"] is None
    assert job["attempts"] == 0
    # it ended while the agent was still busy, not once it got free
    assert any(not other["final"] for other in jobctl.jobs(busy))
    assert all(j["status"] == "passed" for j in jobctl.wait_final(busy, timeout=90))


def _one_running_one_assigned(stack: Stack, label: str) -> tuple[str, str, list[str]]:
    """Two jobs of one build, so one batch on the one emulator agent: wait until the first
    runs while the second is assigned (its test not started)."""
    version = _version(label)
    job_ids = _submit(
        stack,
        [
            {
                "app_version_id": version,
                "test_path": f"tests/{label}-{n}.spec.js",
                "target": "emulator",
                "timeout_s": LONG,
            }
            for n in range(2)
        ],
    )

    def probe() -> tuple[str, str]:
        jobs = {job["status"]: job["job_id"] for job in stack.jobs(job_ids)}
        if set(jobs) != {"running", "assigned"}:
            raise NotYet(f"statuses {sorted(jobs)}")
        return jobs["running"], jobs["assigned"]

    running, assigned = wait_until(probe, timeout=60, interval=0.1, what="one job running")
    return running, assigned, job_ids


def test_an_assigned_job_is_taken_back_before_it_starts(jobctl: Stack) -> None:
    running, assigned, _ = _one_running_one_assigned(jobctl, "cancel-assigned")

    _cancel(jobctl, assigned)

    job = _wait_status(jobctl, assigned, {"cancelled"}, timeout=10)
    assert job["cancel_requested_by"] == "anonymous"
    assert job["cancel_requested_at"]
    first = jobctl.wait_final([running], timeout=60)[0]
    assert first["status"] == "passed"
    job = jobctl.job(assigned)  # the agent skipped it: it never started
    assert job["status"] == "cancelled"
    assert job["started_at"] is None
    assert job["result"]["reason"] == "cancelled"


def test_a_running_job_is_stopped_by_its_agent_and_the_batch_goes_on(jobctl: Stack) -> None:
    running, assigned, _ = _one_running_one_assigned(jobctl, "cancel-running")

    asked = time.monotonic()
    _cancel(jobctl, running)

    job = _wait_status(jobctl, running, {"cancelled"}, timeout=10)
    seen_after = time.monotonic() - asked
    result = job["result"]
    assert result["reason"] == "cancelled"
    assert "stopped: its job was cancelled" in result["log_tail"]
    # stopped by its agent, not run to its end (the simulated test takes 3 s)
    assert result["duration_s"] < TEST_S
    assert job["started_at"]
    print(f"cancel of a running job: final after {seen_after:.2f} s")
    # the bound: stopped within 2 s (here measured up to the record's final status)
    assert seen_after < 2.0
    # the batch went on with its next job
    (after,) = jobctl.wait_final([assigned], timeout=60)
    assert after["status"] == "passed"
    assert after["started_at"]
