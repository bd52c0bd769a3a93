"""A GitHub job summary from a qgjob JUnit report: `python -m qgjob_cli.gh_summary`.

Used by the composite action (.github/actions/qgjob): it reads the report `qgjob run
--junit` wrote (also after a timed-out wait) and appends Markdown to $GITHUB_STEP_SUMMARY:
a table of counts per target, the link to the run, and each test that did not pass with
its reason and log tail. With no report (the CLI stopped before writing one), it says so
and names the exit code.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from qgjob_cli.exit_codes import DESCRIPTIONS, ExitCode

_LOG_TAIL_LINES = 40
# The Suite field each JUnit outcome element counts in.
_COUNTERS = {"failure": "failures", "error": "errors", "skipped": "skipped"}


@dataclass
class Suite:
    target: str
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time_s: float = 0.0

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass
class Problem:
    kind: str  # failure, error, skipped
    target: str
    test: str
    message: str
    log_tail: str


@dataclass
class Report:
    suites: list[Suite] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    run_urls: list[str] = field(default_factory=list)


def read_report(path: Path) -> Report:
    """The counts, failures and run links of a qgjob JUnit file."""
    root = ET.parse(path).getroot()  # noqa: S314 (the CLI's own report, not foreign input)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    report = Report()
    for element in suites:
        target = element.get("name", "").removeprefix("qgjob.")
        suite = Suite(target=target, time_s=float(element.get("time") or 0))
        for case in element.findall("testcase"):
            suite.tests += 1
            test = "/".join(
                part for part in (case.get("classname", "."), case.get("name", "")) if part != "."
            )
            for kind, counter in _COUNTERS.items():
                found = case.find(kind)
                if found is None:
                    continue
                setattr(suite, counter, getattr(suite, counter) + 1)
                report.problems.append(
                    Problem(kind, target, test, found.get("message", ""), found.text or "")
                )
                break
        for prop in element.iter("property"):
            if prop.get("name") == "run_url" and prop.get("value") not in report.run_urls:
                report.run_urls.append(str(prop.get("value")))
        report.suites.append(suite)
    return report


def _cell(text: str) -> str:
    return html.escape(text).replace("|", "\\|")


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _exit_text(exit_code: int | None) -> str:
    if exit_code is None:
        return ""
    try:
        meaning = DESCRIPTIONS[ExitCode(exit_code)]
    except ValueError:
        meaning = "unknown exit code"
    return f"qgjob exited **{exit_code}**: {meaning}."


def render(report: Report | None, *, exit_code: int | None = None, title: str = "qgjob") -> str:
    """The Markdown summary (None: no report was written)."""
    lines = [f"### {title}", ""]
    if report is None:
        lines += ["No JUnit report was written.", ""]
        if exit_code is not None:
            lines += [_exit_text(exit_code), ""]
        return "\n".join(lines)
    total = Suite(target="**total**")
    rows = []
    for suite in report.suites:
        for name in ("tests", "failures", "errors", "skipped", "time_s"):
            setattr(total, name, getattr(total, name) + getattr(suite, name))
        rows.append(suite)
    if len(rows) > 1:
        rows.append(total)
    lines += [
        "| target | tests | passed | failed | errors | cancelled | time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {suite.target} | {suite.tests} | {suite.passed} | {suite.failures} | "
        f"{suite.errors} | {suite.skipped} | {suite.time_s:.1f} s |"
        for suite in rows
    ]
    lines.append("")
    if exit_code is not None:
        lines += [_exit_text(exit_code), ""]
    lines += [f"Run: <{url}>" for url in report.run_urls]
    if report.run_urls:
        lines.append("")
    if report.problems:
        lines += ["#### Not passed", ""]
    for problem in report.problems:
        mark = {"failure": "❌ failed", "error": "⚠️ error", "skipped": "⏭️ cancelled"}[problem.kind]
        summary = f"{mark}: {problem.test} ({problem.target})"
        if problem.message:
            summary += f" — {problem.message}"
        lines += ["<details>", f"<summary>{_cell(summary)}</summary>", ""]
        tail = "\n".join(problem.log_tail.strip().splitlines()[-_LOG_TAIL_LINES:])
        if tail:
            fence = _fence(tail)
            lines += [f"{fence}text", tail, fence, ""]
        lines += ["</details>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qgjob_cli.gh_summary",
        description="Append a Markdown summary of a qgjob JUnit report to $GITHUB_STEP_SUMMARY.",
    )
    parser.add_argument("--junit", type=Path, required=True, help="the JUnit report")
    parser.add_argument("--exit-code", type=int, help="qgjob's exit code, to name it")
    parser.add_argument("--title", default="qgjob", help="the summary's heading")
    parser.add_argument(
        "--output",
        type=Path,
        default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
        help="file to append to (default: $GITHUB_STEP_SUMMARY, else stdout)",
    )
    args = parser.parse_args(argv)
    try:
        report = read_report(args.junit) if args.junit.is_file() else None
    except ET.ParseError as exc:
        print(f"gh_summary: error: {args.junit} is not a JUnit report: {exc}", file=sys.stderr)
        return 2
    text = render(report, exit_code=args.exit_code, title=args.title)
    if args.output is None:
        sys.stdout.write(text)
    else:
        with args.output.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
