"""Builds belong to an org: two orgs that submit the same `app_version_id` never share a
batch or an install, and a small org is not starved by a big one (issue 6, through the
compose stack).

Both cases run on the `browserstack` target, which the stack runs with ONE agent: whatever
the two orgs submit runs there, one batch after another, so a shared batch or a shared
install would show.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from e2e.conftest import Stack

TARGET = "browserstack"
VERSION = "1.0.0"  # the same version string for both orgs


def _org(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def _submit(stack: Stack, org: str, count: int, prefix: str) -> list[str]:
    body = [
        {
            "org_id": org,
            "app_version_id": VERSION,
            "test_path": f"tests/{prefix}/t{i:03d}.spec.js",
            "target": TARGET,
        }
        for i in range(count)
    ]
    response = stack.post("/v1/jobs", body)
    assert response.status_code == 201, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def test_two_orgs_with_the_same_version_string_share_no_batch_and_no_install(
    stack: Stack,
) -> None:
    org_a, org_b = _org("org-a"), _org("org-b")
    jobs_a = _submit(stack, org_a, 6, "a")
    jobs_b = _submit(stack, org_b, 6, "b")

    final = stack.wait_final(jobs_a + jobs_b, timeout=180)

    assert {job["status"] for job in final} == {"passed"}
    orgs_by_batch: dict[str, set[str]] = defaultdict(set)
    for job in final:
        orgs_by_batch[job["batch_id"]].add(job["org_id"])
    assert all(len(orgs) == 1 for orgs in orgs_by_batch.values()), orgs_by_batch
    # each org's build was installed for its own jobs: one paid install per org at least,
    # and the first job of each org that ran on the agent paid it (no warm reuse across orgs)
    paid: dict[str, int] = defaultdict(int)
    for job in final:
        paid[job["org_id"]] += int(job["result"]["install_paid"])
    assert paid[org_a] >= 1
    assert paid[org_b] >= 1
    by_start = sorted(final, key=lambda job: _epoch(job["started_at"]))
    for earlier, later in itertools.pairwise(by_start):
        if later["org_id"] != earlier["org_id"] and later["batch_id"] != earlier["batch_id"]:
            assert later["result"]["install_paid"], (
                f"{later['org_id']}'s batch ran on {earlier['org_id']}'s install of {VERSION}"
            )


def test_a_small_org_is_done_long_before_a_big_org_submitted_first(stack: Stack) -> None:
    big, small = _org("big"), _org("small")
    big_jobs = _submit(stack, big, 60, "big")
    small_jobs = _submit(stack, small, 3, "small")

    final: dict[str, dict[str, Any]] = {
        job["job_id"]: job for job in stack.wait_final(big_jobs + small_jobs, timeout=240)
    }

    small_done = max(_epoch(final[job_id]["finished_at"]) for job_id in small_jobs)
    big_done = max(_epoch(final[job_id]["finished_at"]) for job_id in big_jobs)
    big_unstarted_when_small_done = sum(
        1 for job_id in big_jobs if _epoch(final[job_id]["started_at"]) > small_done
    )
    assert small_done < big_done
    # fair share: the small org did not wait behind the big org's whole backlog
    assert big_unstarted_when_small_done >= len(big_jobs) // 2
