"""`qgjob run` against the real stack: each exit code the stack can produce, a JUnit report
that validates and matches the run, and the GitHub action's steps run as a runner would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import xmlschema

from e2e.action_runner import run_action
from e2e.conftest import REPO_ROOT, Stack

SCHEMA = xmlschema.XMLSchema(REPO_ROOT / "tests" / "schemas" / "junit.xsd")
EXAMPLES = "examples/appwright/tests/*.spec.js"


def qgjob(stack: Stack, *args: str, api_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real `qgjob`, run from the repository root (where the example tests are)."""
    exe = shutil.which("qgjob", path=str(Path(sys.executable).parent)) or "qgjob"
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
        env={**os.environ, "QGJOB_API_URL": api_url or stack.api_url, "QGJOB_ORG_ID": "e2e"},
        check=False,
    )


def summary_run_id(stdout: str) -> str:
    """The run id of the summary line, `run <id>: N jobs: ...` (the last line of stdout)."""
    words = stdout.strip().splitlines()[-1].split()
    assert words[0] == "run", stdout
    return words[1].rstrip(":")


def version() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


def junit_counts(path: Path) -> dict[str, dict[str, int]]:
    """Per target: tests, failures, errors, skipped, from a report that must validate."""
    SCHEMA.validate(str(path))
    root = ET.parse(path).getroot()  # noqa: S314 (a report this test had written)
    return {
        suite.get("name", "").removeprefix("qgjob."): {
            key: int(suite.get(key) or 0) for key in ("tests", "failures", "errors", "skipped")
        }
        for suite in root.findall("testsuite")
    }


def run_counts(run: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The same counts, from the run as the API shows it."""
    found: dict[str, dict[str, int]] = {}
    for job in run["jobs"]:
        counts = found.setdefault(
            job["target"], {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        )
        counts["tests"] += 1
        if not job["final"] or job["status"] == "error":
            counts["errors"] += 1
        elif job["status"] == "failed":
            counts["failures"] += 1
        elif job["status"] == "cancelled":
            counts["skipped"] += 1
    return found


def test_a_passing_matrix_exits_0_and_its_junit_matches_the_run(
    stack: Stack, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    done = qgjob(
        stack,
        "run",
        f"--app-version-id={version()}",
        "--target=emulator",
        "--target=device",
        EXAMPLES,
        "--poll-interval=0.2",
        "--timeout=120",
        "--json",
        f"--junit={report}",
    )

    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["finished"] is True
    assert run["counts"]["passed"] == run["total"] == 6  # 3 examples x 2 targets
    served = stack.get(f"/v1/runs/{run['run_id']}").json()
    job_ids = [job["job_id"] for job in served["jobs"]]
    records = stack.post("/v1/jobs/lookup", {"job_ids": job_ids}).json()["jobs"]
    assert {job["run_id"] for job in records} == {run["run_id"]}  # the scheduler kept it
    assert junit_counts(report) == run_counts(served)
    assert junit_counts(report)["emulator"]["tests"] == 3


def test_a_failing_test_exits_1_and_rerun_failed_runs_only_it(stack: Stack, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    done = qgjob(
        stack,
        "run",
        f"--app-version-id={version()}",
        "tests/login.spec.js",
        "tests/checkout_fail.spec.js",
        "--poll-interval=0.2",
        "--timeout=120",
        f"--junit={report}",
    )

    assert done.returncode == 1, done.stderr
    assert "FAILED tests/checkout_fail.spec.js [emulator]" in done.stderr  # as it happened
    run_id = summary_run_id(done.stdout)
    assert junit_counts(report) == run_counts(stack.get(f"/v1/runs/{run_id}").json())
    assert junit_counts(report)["emulator"]["failures"] == 1
    failure = ET.parse(report).getroot().find("testsuite/testcase/failure")  # noqa: S314
    assert failure is not None
    assert "simulat" in (failure.text or "")  # the log tail says no real test ran

    again = qgjob(stack, "rerun", run_id, "--failed", "--poll-interval=0.2", "--json")
    assert again.returncode == 1, again.stderr
    (rerun,) = json.loads(again.stdout)["runs"]
    assert rerun["tests"] == ["tests/checkout_fail.spec.js"]
    assert rerun["run_id"] != run_id


def test_an_infrastructure_error_exits_6(stack: Stack, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    done = qgjob(
        stack,
        "run",
        f"--app-version-id={version()}",
        "tests/login.spec.js",
        "tests/payment_infra-error.spec.js",
        "--poll-interval=0.2",
        "--timeout=120",
        f"--junit={report}",
    )

    assert done.returncode == 6, done.stderr
    served = stack.get(f"/v1/runs/{summary_run_id(done.stdout)}").json()
    assert junit_counts(report) == run_counts(served)
    assert served["counts"]["error"] == 1


def test_a_wait_that_times_out_exits_7_and_still_writes_the_report(
    stack: Stack, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    # A fresh app version costs a 1 s install before the first test: 0.3 s is too short.
    done = qgjob(
        stack,
        "run",
        f"--app-version-id={version()}",
        "tests/a.spec.js",
        "tests/b.spec.js",
        "--poll-interval=0.1",
        "--timeout=0.3",
        "--json",
        f"--junit={report}",
    )

    assert done.returncode == 7, done.stderr
    assert done.stderr == "qgjob: error: gave up waiting after 0.3 s: 2 of 2 jobs not final\n"
    (seen,) = json.loads(done.stdout)["runs"]  # the run as last seen, which the report shows
    assert seen["finished"] is False
    assert junit_counts(report) == run_counts(seen)

    run_id = seen["run_id"]
    finished = qgjob(stack, "wait", run_id, "--poll-interval=0.2", "--timeout=60", "--quiet")
    assert finished.returncode == 0, finished.stderr


def test_an_unreachable_server_exits_3_with_one_line(stack: Stack) -> None:
    done = qgjob(
        stack, "run", "--app-version-id=v", "tests/a.spec.js", api_url="http://127.0.0.1:1"
    )

    assert done.returncode == 3
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("qgjob: error: cannot reach the qgjob API")


def test_the_action_runs_a_suite_writes_the_summary_and_fails_with_the_cli_code(
    stack: Stack, tmp_path: Path
) -> None:
    result = run_action(
        REPO_ROOT / ".github" / "actions" / "qgjob",
        {
            "api-url": stack.api_url,
            "org-id": "e2e-action",
            "app-version-id": version(),
            "targets": "emulator, device",
            "tests": f"{EXAMPLES}\ntests/checkout_fail.spec.js",
            "poll-interval": "0.2",
            "timeout": "120",
            "junit-path": str(tmp_path / "reports" / "junit.xml"),
        },
        workspace=REPO_ROOT,
        scratch=tmp_path,
    )

    install, run, summary, upload, finish = result.steps
    assert install.returncode == 0, install.stderr
    assert run.returncode == 0, run.stderr  # the run step records the code, never fails
    assert result.outputs["run"]["exit-code"] == "1"
    assert "FAILED tests/checkout_fail.spec.js [device]" in run.stderr
    assert summary.returncode == 0, summary.stderr
    assert upload.with_["path"] == str(tmp_path / "reports" / "junit.xml")
    assert upload.with_["name"] == "qgjob-junit"
    assert finish.returncode == 1  # the step (and the job) fail with the CLI's code
    assert junit_counts(tmp_path / "reports" / "junit.xml") == {
        "emulator": {"tests": 4, "failures": 1, "errors": 0, "skipped": 0},
        "device": {"tests": 4, "failures": 1, "errors": 0, "skipped": 0},
    }
    lines = result.summary.splitlines()
    assert any(line.startswith("| emulator | 4 | 3 | 1 | 0 | 0 |") for line in lines)
    assert any(line.startswith("| **total** | 8 | 6 | 2 | 0 | 0 |") for line in lines)
    assert "qgjob exited **1**: at least one job ended failed (a test failed)." in lines
    assert any(line.startswith(f"Run: <{stack.api_url}/v1/runs/") for line in lines)
    assert any("tests/checkout_fail.spec.js (device)" in line for line in lines)
