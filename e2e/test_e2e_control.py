"""Job control through the compose stack and the real `qgjob`: cancel (queued jobs, a run,
a final job, an unknown id), the idempotent submit, the job options, and the warning for a
target with no live agent.

That a cancelled job then ends `cancelled` (and that assigned and running jobs are taken
back or stopped) is the scheduler's and the agents' side, tested with them.
"""

from __future__ import annotations

import json
import uuid

import requests

from e2e.conftest import Stack, wait_until

# `no_live_agent` (e2e/conftest.py): a target whose agents are scaled to 0 for the test.


def _version() -> str:
    return f"ctl-{uuid.uuid4().hex[:8]}"


def _submit(stack: Stack, *args: str) -> tuple[list[str], str]:
    done = stack.qgjob("submit", "--org-id=e2e-control", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.split(), done.stderr


def test_a_queued_job_is_cancelled_through_qgjob_cancel(stack: Stack, no_live_agent: str) -> None:
    (job_id,), stderr = _submit(
        stack,
        f"--app-version-id={_version()}",
        "--test=tests/a.spec.js",
        f"--target={no_live_agent}",
    )
    # accepted, but the answer says no agent can take it now
    assert f"qgjob: warning: no live agent for target '{no_live_agent}'" in stderr

    cancelled = stack.qgjob("cancel", job_id)

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.splitlines() == [f"cancel requested: {job_id}"]
    record = stack.job(job_id)
    assert record["cancel_requested_by"] == "anonymous"
    assert record["cancel_requested_at"]
    # the scheduler takes it out of its group: it ends cancelled, never having run
    (final,) = stack.wait_final([job_id], timeout=60)
    assert final["status"] == "cancelled", final
    assert final["started_at"] is None


def test_every_unfinished_job_of_a_run_is_cancelled_with_one_request(
    stack: Stack, no_live_agent: str
) -> None:
    body = {
        "org_id": "e2e-control",
        "app_version_id": _version(),
        "targets": [no_live_agent],
        "tests": ["a.js", "b.js", "c.js"],
    }
    created = stack.post("/v1/runs", body)
    assert created.status_code == 201, created.text
    run = created.json()
    assert no_live_agent in run["warning"]

    done = stack.qgjob("cancel", "--run", run["run_id"], "--json")

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["run_id"] == run["run_id"]
    assert answer["requested"] == run["job_ids"]
    assert all(job["cancel_requested_at"] for job in stack.jobs(run["job_ids"]))
    finals = stack.wait_final(run["job_ids"], timeout=60)
    assert [job["status"] for job in finals] == ["cancelled"] * len(run["job_ids"])


def test_cancelling_a_final_job_is_409_exits_9_and_changes_nothing(stack: Stack) -> None:
    (job_id,), _ = _submit(stack, f"--app-version-id={_version()}", "--test=tests/ok.spec.js")
    (final,) = stack.wait_final([job_id], timeout=90)
    assert final["status"] == "passed"

    done = stack.qgjob("cancel", job_id)
    assert done.returncode == 9, done.stderr
    assert done.stdout.splitlines() == [f"already final (passed): {job_id}"]

    response = requests.post(f"{stack.api_url}/v1/jobs/{job_id}/cancel", timeout=30)
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "already_final"
    assert "already final (passed)" in body["message"]
    assert stack.job(job_id) == final


def test_cancelling_an_unknown_job_exits_5(stack: Stack) -> None:
    unknown = str(uuid.uuid4())
    done = stack.qgjob("cancel", unknown)
    assert done.returncode == 5
    assert f"not found: {unknown}" in done.stdout
    response = requests.post(f"{stack.api_url}/v1/jobs/{unknown}/cancel", timeout=30)
    assert response.status_code == 404


def test_a_retried_submit_with_the_same_key_creates_nothing(stack: Stack) -> None:
    version = _version()
    args = (f"--app-version-id={version}", "--test=a.spec.js", "--test=b.spec.js")
    first, _ = _submit(stack, *args, "--idempotency-key=ci-build-1")
    again, _ = _submit(stack, *args, "--idempotency-key=ci-build-1")
    assert again == first
    assert len(first) == 2

    listed = stack.qgjob("list", f"--app-version-id={version}", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(job["job_id"] for job in json.loads(listed.stdout)["jobs"]) == sorted(first)

    other = stack.qgjob(
        "submit", "--org-id=e2e-control", *args, "--priority=3", "--idempotency-key=ci-build-1"
    )
    assert other.returncode == 2
    assert "different request" in other.stderr


def test_a_retried_run_with_the_same_key_is_the_same_run(stack: Stack) -> None:
    version = _version()
    args = ("run", "--org-id=e2e-control", f"--app-version-id={version}", "a.spec.js", "--json")
    first = stack.qgjob(*args, "--idempotency-key=run-key")
    again = stack.qgjob(*args, "--idempotency-key=run-key")
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    run_ids = [json.loads(done.stdout)["runs"][0]["run_id"] for done in (first, again)]
    assert run_ids[0] == run_ids[1]

    def runs_of_version() -> list[str] | None:
        # Transient (a 503 while a dependency is away) is polled through, not a KeyError.
        runs = stack.get_json_once("/v1/runs", org_id="e2e-control", limit=100)["runs"]
        return [run["run_id"] for run in runs if run["app_version_id"] == version] or None

    assert wait_until(runs_of_version, timeout=30, what="the run listed") == [run_ids[0]]


def test_the_seed_submit_is_idempotent_with_the_header(stack: Stack) -> None:
    body = {"org_id": "e2e-control", "app_version_id": _version(), "test_path": "t.spec.js"}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = requests.post(f"{stack.api_url}/submit", json=body, headers=headers, timeout=30)
    again = requests.post(f"{stack.api_url}/submit", json=body, headers=headers, timeout=30)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert set(first.json()) == {"message", "job_id", "assigned_agent"}  # agents are live
    other = requests.post(
        f"{stack.api_url}/submit", json={**body, "priority": 2}, headers=headers, timeout=30
    )
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"


def test_job_options_reach_the_record(stack: Stack) -> None:
    (job_id,), stderr = _submit(
        stack,
        f"--app-version-id={_version()}",
        "--test=t.spec.js",
        "--retries=2",
        "--test-timeout=30",
        "--queue-ttl=600",
    )
    assert "warning" not in stderr  # an emulator agent is live
    record = stack.job(job_id)
    assert (record["retries"], record["timeout_s"], record["queue_ttl_s"]) == (2, 30.0, 600.0)

    refused = stack.qgjob(
        "submit", "--org-id=e2e-control", "--app-version-id=v", "--test=t.js", "--retries=9"
    )
    assert refused.returncode == 2
