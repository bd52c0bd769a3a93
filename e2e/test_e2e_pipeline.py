"""(a) grouping saves installs across targets; (b) a failing test fails `qgjob submit --wait`."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict

from e2e.conftest import Stack

TARGETS = ("emulator", "device", "browserstack")
TESTS_PER_GROUP = 4


def test_24_jobs_over_2_versions_and_3_targets_install_once_per_needed_batch(
    stack: Stack,
) -> None:
    run = uuid.uuid4().hex[:8]
    versions = (f"v1-{run}", f"v2-{run}")
    before = {a["agent_id"]: a["installs"] for a in stack.agents()}

    job_ids: list[str] = []
    for target in TARGETS:
        for version in versions:
            tests = [f"--test=tests/{target}/flow{i}.spec.js" for i in range(TESTS_PER_GROUP)]
            done = stack.qgjob(
                "submit",
                "--org-id=qualgent",
                f"--app-version-id={version}",
                f"--target={target}",
                *tests,
                "--json",
            )
            assert done.returncode == 0, done.stderr
            submitted = json.loads(done.stdout)
            job_ids += [job["job_id"] for job in submitted["jobs"]]
    assert len(job_ids) == 24

    jobs = stack.wait_final(job_ids, timeout=180)
    assert Counter(job["status"] for job in jobs) == {"passed": 24}

    batches: dict[str, list[dict[str, object]]] = defaultdict(list)
    for job in jobs:
        batches[job["batch_id"]].append(job)
    for batch in batches.values():
        # A batch holds ONE app version of ONE target and runs on ONE agent of that target.
        assert len({(j["app_version_id"], j["target"], j["assigned_agent"]) for j in batch}) == 1
        assert str(batch[0]["assigned_agent"]).startswith(f"{batch[0]['target']}-")

    paid = {job["batch_id"] for job in jobs if job["result"]["install_paid"]}
    paid_by_agent = Counter(job["assigned_agent"] for job in jobs if job["result"]["install_paid"])
    # Each agent's own counter, read once that agent has reported (not all idle at once).
    expected = {agent: before.get(agent, 0) + n for agent, n in paid_by_agent.items()}
    after = stack.wait_installs(expected)
    installs_reported = sum(after[agent] - before.get(agent, 0) for agent in expected)
    assert {agent: after[agent] for agent in expected} == expected

    assert installs_reported == len(paid)
    assert installs_reported < len(jobs)
    # Each request's 4 jobs fit one batch, so each (target, version) group ran whole on one
    # agent, and each of those batches paid its one install (every version here is new).
    assert len(batches) == len(TARGETS) * len(versions)
    assert installs_reported == len(batches)


def test_failing_test_ends_failed_and_submit_wait_exits_nonzero(stack: Stack) -> None:
    version = f"fail-{uuid.uuid4().hex[:8]}"
    done = stack.qgjob(
        "submit",
        "--org-id=qualgent",
        f"--app-version-id={version}",
        "--test=tests/login.spec.js",
        "--test=tests/checkout_fail.spec.js",
        "--wait",
        "--json",
    )
    assert done.returncode == 1, (done.stdout, done.stderr)  # 1 = a test failed (cli/README.md)

    jobs = stack.get_json("/v1/jobs", app_version_id=version)["jobs"]  # a 200, after any 5xx
    statuses = {job["test_path"]: job["status"] for job in jobs}
    assert statuses == {"tests/login.spec.js": "passed", "tests/checkout_fail.spec.js": "failed"}


def test_submit_wait_exits_zero_when_all_pass(stack: Stack) -> None:
    done = stack.qgjob(
        "submit",
        "--org-id=qualgent",
        f"--app-version-id=ok-{uuid.uuid4().hex[:8]}",
        "--test=tests/onboarding.spec.js",
        "--wait",
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "passed" in done.stdout


def test_infrastructure_error_is_reported_as_error_not_failed(stack: Stack) -> None:
    response = stack.post(
        "/v1/jobs",
        [
            {
                "org_id": "qualgent",
                "app_version_id": f"err-{uuid.uuid4().hex[:8]}",
                "test_path": "tests/infra-error.spec.js",
                "target": "device",
            }
        ],
    )
    assert response.status_code == 201, response.text
    (job,) = stack.wait_final([response.json()["jobs"][0]["job_id"]], timeout=60)
    assert job["status"] == "error"
