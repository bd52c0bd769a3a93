"""The user's story with the real `qgjob` command: submit, follow with status, list."""

from __future__ import annotations

import json
import uuid

from e2e.conftest import Stack, Transient, wait_until

ORDER = ["queued", "assigned", "running", "passed"]


def test_status_follows_a_job_from_submit_to_passed(stack: Stack) -> None:
    version = f"cli-{uuid.uuid4().hex[:8]}"
    submitted = stack.qgjob(
        "submit",
        "--org-id=qualgent",
        f"--app-version-id={version}",
        "--test=tests/onboarding.spec.js",
        "--target=emulator",
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert len(job_id.splitlines()) == 1

    seen: list[str] = []

    def passed() -> dict[str, object] | None:
        done = stack.qgjob("status", f"--job-id={job_id}", "--json")
        if done.returncode in (3, 4):  # unreachable, or 5xx: transient, poll again
            raise Transient(f"qgjob status exited {done.returncode}: {done.stderr.strip()}")
        assert done.returncode == 0, done.stderr
        record: dict[str, object] = json.loads(done.stdout)
        if not seen or seen[-1] != record["status"]:
            seen.append(str(record["status"]))
        return record if record["final"] else None

    record = wait_until(passed, timeout=60, interval=0.05, what="the job to be final")
    assert record["status"] == "passed"
    # Whatever samples the polling caught, they moved forward through the statuses only.
    assert seen == sorted(seen, key=ORDER.index), seen

    human = stack.qgjob("status", f"--job-id={job_id}")
    assert human.returncode == 0
    assert "passed" in human.stdout
    assert str(record["assigned_agent"]) in human.stdout

    listed = stack.qgjob("list", f"--app-version-id={version}", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [job["job_id"] for job in json.loads(listed.stdout)["jobs"]] == [job_id]


def test_cli_exit_codes_for_unknown_job_bad_input_and_unreachable_server(stack: Stack) -> None:
    unknown = stack.qgjob("status", f"--job-id={uuid.uuid4()}")
    assert unknown.returncode == 5
    assert len(unknown.stderr.strip().splitlines()) == 1

    rejected = stack.qgjob(
        "submit", "--org-id=qualgent", "--app-version-id=v1", "--test=../outside.spec.js"
    )
    assert rejected.returncode == 2
    assert "test_path" in rejected.stderr

    unreachable = stack.qgjob("--api-url=http://127.0.0.1:1", "list")
    assert unreachable.returncode == 3
    assert len(unreachable.stderr.strip().splitlines()) == 1
