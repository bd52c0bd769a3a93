"""JUnit XML for a wait's jobs, the report format CI tools read (`--junit PATH`).

Valid against tests/schemas/junit.xsd, our schema of the common JUnit report format that
Jenkins, GitLab and the GitHub test-report actions read. Layout:

- `<testsuites>` with one `<testsuite>` per target, named `qgjob.<target>`;
- one `<testcase>` per job: `classname` is the test's folder in dotted form (`tests.auth`,
  `.` for none) and `name` its file name, `time` the test's duration;
- `<failure>` for a failed test, `<error>` for an infrastructure error (its reason and the
  log tail) and for a job still unfinished when the wait gave up (the report is written
  then too), `<skipped>` for a cancelled job;
- the suite's `<properties>`: the run id(s) and their URL, the app version, and one
  `rerun:<test>` property per job that needed more than one attempt (flaky infrastructure:
  a lost agent, a batch handed back), with the attempts and why the earlier ones ended.

Written with the standard library's ElementTree: no dependency for the client.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from qgjob_cli.client import JobRecord, RunRecord
from qgjob_cli.vocabulary import CANCELLED, FAILED, PASSED

SUITE_PREFIX = "qgjob."


def case_names(test_path: str) -> tuple[str, str]:
    """(classname, name) of a test path: `tests/auth/login.spec.js` -> `tests.auth`,
    `login.spec.js`."""
    path = PurePosixPath(test_path)
    folder = ".".join(path.parent.parts) if path.parent.parts else "."
    return folder, path.name or test_path


def _seconds(job: JobRecord) -> float:
    seconds = (job.get("result") or {}).get("duration_s")
    return float(seconds) if isinstance(seconds, int | float) else 0.0


def _detail(job: JobRecord) -> tuple[str, str]:
    """(message, text) of a job that did not pass: the reason, then the log tail."""
    result = job.get("result") or {}
    what = "test failed" if job["status"] == FAILED else (result.get("reason") or job["status"])
    agent = job.get("assigned_agent") or "no agent"
    message = f"{what} on {agent} (attempt {job.get('attempts') or 1})"
    return message, str(result.get("log_tail") or "")


def _testcase(job: JobRecord) -> ET.Element:
    classname, name = case_names(str(job.get("test_path") or job["job_id"]))
    case = ET.Element(
        "testcase", {"classname": classname, "name": name, "time": f"{_seconds(job):.3f}"}
    )
    status = job["status"]
    if not job["final"]:
        child = ET.SubElement(
            case,
            "error",
            {"type": "unfinished", "message": f"not final when the wait ended ({status})"},
        )
    elif status == PASSED:
        return case
    elif status == CANCELLED:
        child = ET.SubElement(case, "skipped", {"type": status, "message": "cancelled"})
    else:
        message, text = _detail(job)
        tag = "failure" if status == FAILED else "error"
        child = ET.SubElement(case, tag, {"type": status, "message": message})
        child.text = text
    return case


def _kind(job: JobRecord) -> str:
    if not job["final"]:
        return "errors"
    return {PASSED: "passed", FAILED: "failures", CANCELLED: "skipped"}.get(job["status"], "errors")


def _rerun(job: JobRecord) -> str | None:
    attempts = job.get("attempts") or 0
    # The attempts before the last: the history lists every attempt, the final one (not
    # `retried`) included; entries of older servers list only the earlier ones.
    history = [
        entry
        for entry in job.get("history") or []
        if isinstance(entry, dict) and entry.get("retried", True)
    ]
    if attempts <= 1 and not history:
        return None
    earlier = "; ".join(
        f"{entry.get('reason') or entry.get('outcome') or 'ended'} on {entry.get('agent_id', '?')}"
        for entry in history
    )
    return f"{attempts} attempts" + (f" (earlier: {earlier})" if earlier else "")


def build(
    jobs: list[JobRecord], runs: Iterable[RunRecord] = (), *, api_url: str | None = None
) -> ET.ElementTree[ET.Element]:
    """The report as an element tree (see the module docstring)."""
    runs = list(runs)
    targets = list(dict.fromkeys(str(job.get("target")) for job in jobs))
    root = ET.Element("testsuites", {"name": "qgjob"})
    created = runs[0].get("created_at") if runs else None
    stamp = {"timestamp": str(created)} if created else {}
    totals = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    for target in targets:
        members = [job for job in jobs if str(job.get("target")) == target]
        kinds = [_kind(job) for job in members]
        seconds = sum(_seconds(job) for job in members)
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": SUITE_PREFIX + target,
                "tests": str(len(members)),
                "failures": str(kinds.count("failures")),
                "errors": str(kinds.count("errors")),
                "skipped": str(kinds.count("skipped")),
                "time": f"{seconds:.3f}",
                **stamp,
            },
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in _suite_properties(runs, members, api_url):
            ET.SubElement(properties, "property", {"name": name, "value": value})
        for job in members:
            suite.append(_testcase(job))
        totals["tests"] += len(members)
        totals["failures"] += kinds.count("failures")
        totals["errors"] += kinds.count("errors")
        totals["time"] += seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{totals['time']:.3f}")
    ET.indent(root)
    return ET.ElementTree(root)


def _suite_properties(
    runs: list[RunRecord], members: list[JobRecord], api_url: str | None
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for run in runs:
        found.append(("run_id", run["run_id"]))
        if api_url:
            found.append(("run_url", f"{api_url.rstrip('/')}/v1/runs/{run['run_id']}"))
        if run.get("app_version_id"):
            found.append(("app_version_id", str(run["app_version_id"])))
    for job in members:
        note = _rerun(job)
        if note:
            found.append((f"rerun:{job.get('test_path')}", note))
    return found


def write(path: str | os.PathLike[str], tree: ET.ElementTree[Any]) -> None:
    """Write the report atomically: a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            tree.write(handle, encoding="utf-8", xml_declaration=True)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
