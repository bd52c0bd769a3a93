"""tests/schemas/junit.xsd, the schema the CLI's JUnit reports are checked against, is strict
enough to catch a bad report: what the writer makes validates, hand-made broken reports do
not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import xmlschema

from qgjob_cli import junit

SCHEMA = xmlschema.XMLSchema(Path(__file__).parents[2] / "schemas" / "junit.xsd")


def job(test_path: str, status: str, *, final: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": f"job-{test_path}",
        "test_path": test_path,
        "target": "emulator",
        "status": status,
        "final": final,
        "assigned_agent": "emulator-1",
        "attempts": 1,
        "history": [],
        "result": {"duration_s": 1.25, "reason": "driver_error", "log_tail": "a\nb"},
        **extra,
    }


def test_a_report_the_writer_makes_with_every_outcome_validates(tmp_path: Path) -> None:
    jobs = [
        job("tests/auth/login.js", "passed"),
        job("tests/fail.js", "failed"),
        job("tests/infra.js", "error"),
        job("tests/cancel.js", "cancelled"),
        job("tests/slow.js", "running", final=False, result=None),
        job(
            "tests/flaky.js",
            "passed",
            attempts=2,
            history=[{"agent_id": "emulator-2", "reason": "agent_lost"}],
        ),
        job("tests/on-device.js", "passed", target="device"),
    ]
    runs = [{"run_id": "run-1", "app_version_id": "v1", "created_at": "2030-01-01T00:00:00.000Z"}]
    report = tmp_path / "junit.xml"
    junit.write(report, junit.build(jobs, runs, api_url="http://localhost:5000"))

    SCHEMA.validate(str(report))
    doc = SCHEMA.to_dict(str(report))
    assert [suite["@name"] for suite in doc["testsuite"]] == ["qgjob.emulator", "qgjob.device"]
    assert doc["@tests"] == 7


CASE = '<testcase classname="tests" name="a.js" time="0.500"/>'


def report(case: str = CASE, *, suite_attributes: str = 'name="qgjob.emulator" tests="1"') -> str:
    """A small report in the writer's layout, with `case` as its only test case."""
    return (
        '<testsuites name="qgjob" tests="1" failures="0" errors="0" time="0.500">'
        f"<testsuite {suite_attributes} "
        'failures="0" errors="0" skipped="0" time="0.500" '
        'timestamp="2030-01-01T00:00:00.000+00:00">'
        '<properties><property name="run_id" value="run-1"/></properties>'
        f"{case}"
        "</testsuite>"
        "</testsuites>"
    )


@pytest.mark.parametrize(
    "document",
    [
        report(),
        report('<testcase name="a.js"/>'),
        report('<testcase name="a.js"><failure message="m" type="failed">log</failure></testcase>'),
        report('<testcase name="a.js"><error message="m" type="error">log</error></testcase>'),
        report('<testcase name="a.js"><skipped message="cancelled" type="cancelled"/></testcase>'),
        report(
            '<testcase name="a.js" file="tests/a.js" line="3" assertions="2">'
            "<failure>log</failure><system-out>out</system-out><system-err>err</system-err>"
            "</testcase>"
        ),
        '<testsuite name="alone" tests="0" hostname="h" id="0" package="p">'
        "<system-out>out</system-out><system-err>err</system-err></testsuite>",
        "<testsuites/>",
    ],
    ids=[
        "writer-layout",
        "name-only",
        "failure",
        "error",
        "skipped",
        "every-testcase-field",
        "testsuite-root",
        "empty-testsuites",
    ],
)
def test_well_formed_reports_validate(document: str) -> None:
    SCHEMA.validate(document)


def broken(document: str, reason: str, name: str) -> Any:
    """A broken report, and what the schema must say about it."""
    return pytest.param(document, reason, id=name)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        broken(
            report('<testcase classname="tests" time="0.500"/>'),
            "missing required attribute 'name'",
            "testcase-without-name",
        ),
        broken(
            report('<testcase name="a.js" time="fast"/>'),
            "invalid value 'fast' for xs:decimal",
            "non-numeric-time",
        ),
        broken(
            report('<testcase name="a.js" time="-1"/>'),
            "greater or equal",
            "negative-time",
        ),
        broken(
            report(
                '<testcase name="a.js"><failure message="m">log</failure>'
                '<error message="m">log</error></testcase>'
            ),
            "Unexpected child with tag 'error'",
            "failure-and-error",
        ),
        broken(
            report('<testcase name="a.js"><failure/><skipped/></testcase>'),
            "Unexpected child with tag 'skipped'",
            "failure-and-skipped",
        ),
        broken(
            report('<testcase name="a.js"><error/><error/></testcase>'),
            "Unexpected child with tag 'error'",
            "two-errors",
        ),
        broken(
            report('<testcase name="a.js"><stackTrace>at a.js:1</stackTrace></testcase>'),
            "Unexpected child with tag 'stackTrace'",
            "unknown-child-element",
        ),
        broken(
            report('<testcase name="a.js" flaky="true"/>'),
            "'flaky' attribute not allowed",
            "unknown-attribute",
        ),
        broken(
            report(CASE + "<testcase-extra/>"),
            "Unexpected child with tag 'testcase-extra'",
            "unknown-suite-child",
        ),
        broken(
            report(suite_attributes='tests="1"'),
            "missing required attribute 'name'",
            "testsuite-without-name",
        ),
        broken(
            report(suite_attributes='name="qgjob.emulator"'),
            "missing required attribute 'tests'",
            "testsuite-without-tests",
        ),
        broken(
            report(suite_attributes='name="qgjob.emulator" tests="one"'),
            "attribute tests='one'",
            "non-numeric-count",
        ),
        broken(
            report(suite_attributes='name="qgjob.emulator" tests="-1"'),
            "non negative",
            "negative-count",
        ),
        broken(
            report().replace('timestamp="2030-01-01T00:00:00.000+00:00"', 'timestamp="yesterday"'),
            "doesn't match any pattern",
            "timestamp-not-a-date",
        ),
        broken(
            report().replace('<property name="run_id" value="run-1"/>', '<property value="v"/>'),
            "missing required attribute 'name'",
            "property-without-name",
        ),
        broken('<testcase name="a.js"/>', "not an element of the schema", "testcase-as-root"),
    ],
)
def test_broken_reports_are_rejected_for_what_is_wrong(document: str, reason: str) -> None:
    with pytest.raises(xmlschema.XMLSchemaValidationError) as raised:
        SCHEMA.validate(document)
    assert reason in str(raised.value.reason)
