"""Run and lookup bodies (POST /v1/runs, POST /v1/jobs/lookup, GET /v1/runs): the checks
`make mutation` found missing at the unit level."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from qgjob_api.errors import ValidationFailed
from qgjob_api.validation import parse_job_ids, parse_run, parse_run_query

RUN = {"org_id": "qualgent", "app_version_id": "xyz123", "tests": ["tests/a.js", "tests/b.js"]}


def _refused(call: Any, *args: Any, **kwargs: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_run_of_exactly_the_limit_is_accepted_and_one_more_job_is_refused() -> None:
    body = {**RUN, "targets": ["emulator", "device"]}  # 2 tests x 2 targets = 4 jobs
    run = parse_run(body, max_jobs=4)
    assert [(job.test_path, job.target.value) for job in run.jobs()] == [
        ("tests/a.js", "emulator"),
        ("tests/a.js", "device"),
        ("tests/b.js", "emulator"),
        ("tests/b.js", "device"),
    ]
    error = _refused(parse_run, body, max_jobs=3)
    assert error.field == "tests"
    assert str(error) == "tests: at most 3 jobs per run, got 2 tests x 2 targets = 4"


def test_a_single_target_run_counts_its_tests() -> None:
    assert len(parse_run(RUN, max_jobs=2).jobs()) == 2
    assert str(_refused(parse_run, RUN, max_jobs=1)).endswith("2 tests x 1 targets = 2")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**RUN, "tests": ["tests/a.js", "tests/b.js", "tests/a.js"]}, "tests[2]"),
        ({**RUN, "targets": ["device", "device"]}, "targets[1]"),
    ],
)
def test_a_repeated_test_or_target_is_refused(body: dict[str, Any], field: str) -> None:
    error = _refused(parse_run, body, max_jobs=50)
    assert error.field == field
    assert "repeats" in str(error)


@pytest.mark.parametrize(("key", "value"), [("tests", []), ("targets", [])])
def test_an_empty_list_is_refused(key: str, value: list[str]) -> None:
    assert _refused(parse_run, {**RUN, key: value}, max_jobs=50).field == key


def test_a_run_with_one_test_and_the_default_target_is_accepted() -> None:
    run = parse_run({**RUN, "tests": ["tests/a.js"]}, max_jobs=50)
    assert [job.target.value for job in run.jobs()] == ["emulator"]


@pytest.mark.parametrize("body", [[RUN], "run", None])
def test_a_run_body_must_be_an_object(body: Any) -> None:
    assert _refused(parse_run, body, max_jobs=50).field == "body"


def test_run_listing_page_bounds_and_default() -> None:
    assert parse_run_query({}).limit == 20
    assert parse_run_query({"limit": "1"}).limit == 1
    assert parse_run_query({"limit": "100"}).limit == 100
    for limit in ("0", "101"):
        assert _refused(parse_run_query, {"limit": limit}).field == "limit"
    assert _refused(parse_run_query, {"org_id": "a b"}).field == "org_id"


def test_a_lookup_of_exactly_the_limit_is_accepted_and_one_more_is_refused() -> None:
    assert parse_job_ids({"job_ids": ["a", "b", "a"]}, max_jobs=3) == ["a", "b"]
    error = _refused(parse_job_ids, {"job_ids": ["a", "b", "c"]}, max_jobs=2)
    assert str(error) == "job_ids: at most 2 ids per request, got 3"
    assert parse_job_ids({"job_ids": ["x"]}, max_jobs=1) == ["x"]


@pytest.mark.parametrize("body", [{"job_ids": []}, {"job_ids": [""]}, {"job_ids": "a"}, {}])
def test_a_lookup_needs_at_least_one_non_empty_id(body: Any) -> None:
    assert _refused(parse_job_ids, body, max_jobs=5).field.startswith("job_ids")


def test_parsed_runs_are_immutable() -> None:
    run = parse_run(RUN, max_jobs=50)
    with pytest.raises(pydantic.ValidationError):
        run.priority = 5  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        parse_run_query({}).limit = 5  # type: ignore[misc]


def test_a_matrix_counts_tests_times_targets_not_a_power_of_them() -> None:
    body = {**RUN, "tests": ["t/1.js", "t/2.js", "t/3.js"], "targets": ["emulator", "device"]}
    assert len(parse_run(body, max_jobs=6).jobs()) == 6
    assert str(_refused(parse_run, body, max_jobs=5)).endswith("3 tests x 2 targets = 6")


def test_one_explicit_target_is_enough() -> None:
    run = parse_run({**RUN, "targets": ["device"]}, max_jobs=10)
    assert {job.target.value for job in run.jobs()} == {"device"}


def test_a_lookup_below_the_limit_is_accepted() -> None:
    assert parse_job_ids({"job_ids": ["a", "b"]}, max_jobs=5) == ["a", "b"]
