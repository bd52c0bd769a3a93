"""The JUnit document `--junit` writes, element by element: names, times, counts, the
failure/error/skipped children and the suite properties, for the cases `make mutation`
found untested (missing fields, unknown statuses, several suites, no runs)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from qgjob_cli import junit


def job(test_path: str | None, status: str, *, final: bool = True, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "job_id": f"job-{test_path}",
        "target": "emulator",
        "status": status,
        "final": final,
        "assigned_agent": "emulator-1",
        "attempts": 1,
        "history": [],
        "result": {"duration_s": 1.25, "reason": "driver_error", "log_tail": "a\nb"},
        **extra,
    }
    if test_path is not None:
        record["test_path"] = test_path
    return record


def root(
    jobs: list[dict[str, Any]], runs: list[dict[str, Any]] | None = None, **kw: Any
) -> ET.Element:
    return junit.build(jobs, runs or [], **kw).getroot()


def case(element: ET.Element) -> ET.Element:
    (found,) = element.iter("testcase")
    return found


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("tests/auth/login.spec.js", ("tests.auth", "login.spec.js")),
        ("login.spec.js", (".", "login.spec.js")),
        ("a/b/c/d.js", ("a.b.c", "d.js")),
    ],
)
def test_a_case_is_named_by_its_folder_and_file(path: str, names: tuple[str, str]) -> None:
    assert junit.case_names(path) == names


def test_a_job_without_a_test_path_is_named_by_its_id() -> None:
    assert case(root([job(None, "passed")])).get("name") == "job-None"


def test_a_duration_that_is_not_a_number_counts_as_zero() -> None:
    tree = root(
        [
            job("a.js", "passed", result={"duration_s": "fast"}),
            job("b.js", "passed", result={"duration_s": 2}),
        ]
    )
    assert [c.get("time") for c in tree.iter("testcase")] == ["0.000", "2.000"]
    assert tree.get("time") == "2.000"


def test_a_passed_case_has_no_child_and_a_failed_one_its_log() -> None:
    passed = case(root([job("a.js", "passed")]))
    assert list(passed) == []
    failed = case(root([job("a.js", "failed")]))
    (failure,) = list(failed)
    assert (failure.tag, failure.get("type"), failure.text) == ("failure", "failed", "a\nb")
    assert failure.get("message") == "test failed on emulator-1 (attempt 1)"


def test_an_error_names_its_reason_or_its_status_and_the_agent_or_none() -> None:
    with_reason = case(root([job("a.js", "error", attempts=3)])).find("error")
    assert with_reason is not None
    assert with_reason.get("message") == "driver_error on emulator-1 (attempt 3)"
    bare = case(root([job("a.js", "error", attempts=0, assigned_agent=None, result=None)]))
    error = bare.find("error")
    assert error is not None
    assert error.get("message") == "error on no agent (attempt 1)"
    assert error.text == ""


def test_an_unknown_final_status_is_an_error_and_an_unfinished_job_too() -> None:
    tree = root(
        [
            job("new.js", "expired"),
            job("slow.js", "running", final=False),
            job("gone.js", "cancelled"),
        ]
    )
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    expired = cases["new.js"].find("error")
    assert expired is not None
    assert expired.get("type") == "expired"
    unfinished = cases["slow.js"].find("error")
    assert unfinished is not None
    assert unfinished.attrib == {
        "type": "unfinished",
        "message": "not final when the wait ended (running)",
    }
    skipped = cases["gone.js"].find("skipped")
    assert skipped is not None
    assert skipped.attrib == {"type": "cancelled", "message": "cancelled"}
    (suite,) = tree.iter("testsuite")
    assert (suite.get("errors"), suite.get("skipped"), suite.get("failures")) == ("2", "1", "0")
    assert (tree.get("tests"), tree.get("errors"), tree.get("failures")) == ("3", "2", "0")


def test_one_suite_per_target_in_the_order_first_seen_and_totals_over_all() -> None:
    jobs = [
        job("a.js", "failed", target="device"),
        job("b.js", "passed"),
        job("c.js", "error", target="device"),
        job("d.js", "failed"),
    ]
    tree = root(jobs)
    suites = list(tree.iter("testsuite"))
    assert [s.get("name") for s in suites] == ["qgjob.device", "qgjob.emulator"]
    assert [(s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        ("2", "1", "1"),
        ("2", "1", "0"),
    ]
    assert [s.get("time") for s in suites] == ["2.500", "2.500"]
    assert (tree.get("tests"), tree.get("failures"), tree.get("errors")) == ("4", "2", "1")
    assert tree.get("time") == "5.000"
    assert tree.get("name") == "qgjob"


def test_the_suite_is_stamped_with_the_run_creation_time_only_when_known() -> None:
    stamped = root(
        [job("a.js", "passed")], [{"run_id": "r1", "created_at": "2030-01-01T00:00:00Z"}]
    )
    (suite,) = stamped.iter("testsuite")
    assert suite.get("timestamp") == "2030-01-01T00:00:00Z"
    (plain,) = root([job("a.js", "passed")]).iter("testsuite")
    assert "timestamp" not in plain.attrib


def properties(element: ET.Element) -> list[tuple[str | None, str | None]]:
    return [(p.get("name"), p.get("value")) for p in element.iter("property")]


def test_run_properties_name_the_run_its_url_and_its_build() -> None:
    runs = [{"run_id": "r1", "app_version_id": "v9"}, {"run_id": "r2"}]
    tree = root([job("a.js", "passed")], runs, api_url="http://api:5000/")
    assert properties(tree) == [
        ("run_id", "r1"),
        ("run_url", "http://api:5000/v1/runs/r1"),
        ("app_version_id", "v9"),
        ("run_id", "r2"),
        ("run_url", "http://api:5000/v1/runs/r2"),
    ]
    assert properties(root([job("a.js", "passed")], runs[1:])) == [("run_id", "r2")]


def test_a_rerun_property_only_for_jobs_that_needed_another_attempt() -> None:
    jobs = [
        job("once.js", "passed", attempts=1),
        job("twice.js", "passed", attempts=2),
        job(
            "moved.js",
            "passed",
            attempts=3,
            history=[{"agent_id": "e-2", "reason": "agent_lost"}, {}, "not a record"],
        ),
        job("handed-back.js", "passed", attempts=None, history=[{"reason": "requeued"}]),
    ]
    assert properties(root(jobs)) == [
        ("rerun:twice.js", "2 attempts"),
        ("rerun:moved.js", "3 attempts (earlier: agent_lost on e-2; ended on ?)"),
        ("rerun:handed-back.js", "0 attempts (earlier: requeued on ?)"),
    ]


@pytest.mark.parametrize("status", ["aborted", "timed_out"])
def test_an_unknown_final_status_is_an_error_wherever_its_name_sorts(status: str) -> None:
    """A newer server's final status may sort before 'cancelled' or after 'passed': it is an
    error naming its reason, never a pass, a skip or a test failure."""
    element = case(root([job("x.js", status)]))
    error = element.find("error")
    assert error is not None
    assert list(element) == [error]
    assert error.get("type") == status
    assert error.get("message") == "driver_error on emulator-1 (attempt 1)"


def test_a_job_that_never_got_an_attempt_has_no_rerun_property() -> None:
    """Cancelled while queued: 0 attempts, no history."""
    assert properties(root([job("never.js", "cancelled", attempts=0)])) == []


def test_the_suite_is_stamped_with_the_first_runs_creation_time() -> None:
    runs = [
        {"run_id": "r1", "created_at": "2030-01-01T00:00:00Z"},
        {"run_id": "r2", "created_at": "2030-01-02T00:00:00Z"},
    ]
    (suite,) = root([job("a.js", "passed")], runs).iter("testsuite")
    assert suite.get("timestamp") == "2030-01-01T00:00:00Z"
