"""The GitHub summary the action writes, from a JUnit report the real CLI wrote."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qgjob_cli import gh_summary

if TYPE_CHECKING:
    from tests.unit.cli.conftest import Run


def test_the_summary_has_counts_per_target_the_run_link_and_each_problem_with_its_log(
    qgjob: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "junit.xml"
    qgjob(
        "run",
        "--org-id=o",
        "--app-version-id=v",
        "--target=emulator",
        "--target=device",
        "tests/a.js",
        "tests/x_fail.js",
        "tests/infra.js",
        "tests/cancel.js",
        f"--junit={report}",
    )
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    assert gh_summary.main(["--junit", str(report), "--exit-code", "1"]) == 0

    text = summary.read_text()
    assert text.startswith("earlier step\n### qgjob\n")  # appended, not overwritten
    lines = text.splitlines()
    assert "| emulator | 4 | 1 | 1 | 1 | 1 | 2.0 s |" in lines
    assert "| device | 4 | 1 | 1 | 1 | 1 | 2.0 s |" in lines
    assert "| **total** | 8 | 2 | 2 | 2 | 2 | 4.0 s |" in lines
    assert "qgjob exited **1**: at least one job ended failed (a test failed)." in lines
    assert "Run: <http://localhost:5000/v1/runs/run-1>" in lines
    problems = [line for line in lines if line.startswith("<summary>")]
    assert len(problems) == 6
    assert problems[0] == (
        "<summary>❌ failed: tests/x_fail.js (emulator) — test failed on emulator-1 (attempt 1)"
        "</summary>"
    )
    assert "```text" in lines
    assert "line two" in lines


def test_a_log_tail_with_backticks_gets_a_longer_fence() -> None:
    report = gh_summary.Report(
        suites=[gh_summary.Suite(target="emulator", tests=1, failures=1)],
        problems=[gh_summary.Problem("failure", "emulator", "t.js", "m", "a ``` b")],
    )
    assert "````text" in gh_summary.render(report)


def test_without_a_report_the_summary_names_the_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "summary.md"
    code = gh_summary.main(
        ["--junit", str(tmp_path / "missing.xml"), "--exit-code", "3", "--output", str(out)]
    )

    assert code == 0
    text = out.read_text()
    assert "No JUnit report was written." in text
    assert "qgjob exited **3**: the server could not be reached" in text
