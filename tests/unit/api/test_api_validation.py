"""Request validation: every rule names the field that broke it."""

from __future__ import annotations

from typing import Any

import pytest

from qgjob_api.errors import InvalidJson, ValidationFailed
from qgjob_api.store import Cursor
from qgjob_api.validation import parse_job, parse_job_query, parse_jobs, parse_json
from qgjob_contract.statuses import JobStatus
from qgjob_contract.targets import Target

_DROP = object()  # a field left out of the body


def _job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org_id": "qualgent",
        "app_version_id": "xyz123",
        "test_path": "tests/onboarding.spec.js",
        "priority": 3,
        "target": "device",
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not _DROP}


def _failure(body: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        parse_job(body)
    return caught.value


def test_valid_job_is_parsed() -> None:
    job = parse_job(_job())
    assert (job.org_id, job.app_version_id, job.test_path) == (
        "qualgent",
        "xyz123",
        "tests/onboarding.spec.js",
    )
    assert job.priority == 3
    assert job.target is Target.DEVICE


def test_priority_and_target_default_to_1_and_emulator() -> None:
    job = parse_job(_job(priority=_DROP, target=_DROP))
    assert job.priority == 1
    assert job.target is Target.EMULATOR


@pytest.mark.parametrize("field", ["org_id", "app_version_id", "test_path"])
def test_missing_required_field_is_named(field: str) -> None:
    error = _failure(_job(**{field: _DROP}))
    assert error.field == field
    assert error.message == f"{field}: is required"
    assert error.body() == {
        "error": "validation_error",
        "message": f"{field}: is required",
        "field": field,
    }


@pytest.mark.parametrize("field", ["org_id", "app_version_id"])
@pytest.mark.parametrize(
    "value",
    ["", "a" * 129, "has space", "colon:inside", "slash/inside", "trailing\n", 7, None, ["a"]],
)
def test_bad_identifier_is_refused(field: str, value: Any) -> None:
    error = _failure(_job(**{field: value}))
    assert error.field == field
    assert error.message.startswith(f"{field}: must be a string of 1 to 128 characters")


@pytest.mark.parametrize("value", ["a", "A.b_c-9", "x" * 128])
def test_identifier_limits_accept(value: str) -> None:
    assert parse_job(_job(org_id=value)).org_id == value


@pytest.mark.parametrize("value", ["1.4.0+42", "2.0.0-rc.1+build.7", "a", "x" * 128])
def test_app_version_id_accepts_semver_build_metadata(value: str) -> None:
    assert parse_job(_job(app_version_id=value)).app_version_id == value
    assert parse_job_query({"app_version_id": value}).app_version_id == value


def test_plus_is_refused_in_org_id_and_named_in_the_app_version_rule() -> None:
    error = _failure(_job(org_id="acme+eu"))
    assert error.message == (
        "org_id: must be a string of 1 to 128 characters: letters, digits, '.', '_' or '-'"
    )
    with pytest.raises(ValidationFailed) as caught:
        parse_job_query({"app_version_id": "1.4.0 42"})  # '+' sent unencoded reads as ' '
    assert caught.value.message == (
        "app_version_id: must be a string of 1 to 128 characters: "
        "letters, digits, '.', '_', '+' or '-'"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("..", "must not contain a '..' segment"),
        ("../etc/passwd", "must not contain a '..' segment"),
        ("tests/../../secret", "must not contain a '..' segment"),
        ("tests/..", "must not contain a '..' segment"),
        ("/etc/passwd", "must be a relative path"),
        ("C:/tests/a.js", "must be a relative path"),
        ("..\\secret", "must use '/' as separator, not '\\'"),
        ("tests\\a.js", "must use '/' as separator, not '\\'"),
        ("tests/a\x00.js", "must not contain NUL, control, format or line-break characters"),
        ("tests/a\n.js", "must not contain NUL, control, format or line-break characters"),
        ("tests/\u202egnp.js", "must not contain NUL, control, format or line-break characters"),
        ("tests/\u2028x.js", "must not contain NUL, control, format or line-break characters"),
        ("--config=evil.js", "must not start with '-'"),
        ("   ", "must not be blank"),
        ("", "must be a string of 1 to 1024 characters"),
        ("t" * 1025, "must be a string of 1 to 1024 characters"),
        (42, "must be a string of 1 to 1024 characters"),
        (None, "must be a string of 1 to 1024 characters"),
    ],
)
def test_bad_test_path_is_refused(value: Any, problem: str) -> None:
    error = _failure(_job(test_path=value))
    assert error.field == "test_path"
    assert error.message == f"test_path: {problem}"


@pytest.mark.parametrize(
    "value", ["tests/a.spec.js", "a..b/c.js", "./tests/x.js", "tests/...js", "t" * 1024]
)
def test_test_path_that_stays_in_its_folder_is_accepted(value: str) -> None:
    assert parse_job(_job(test_path=value)).test_path == value


@pytest.mark.parametrize("value", [0, 11, -1, True, False, "1", 1.0, 2.5, None, [1]])
def test_priority_must_be_an_int_from_1_to_10(value: Any) -> None:
    error = _failure(_job(priority=value))
    assert error.field == "priority"
    assert error.message == "priority: must be an integer from 1 to 10 (higher runs first)"


@pytest.mark.parametrize("value", [1, 10])
def test_priority_bounds_accept(value: int) -> None:
    assert parse_job(_job(priority=value)).priority == value


@pytest.mark.parametrize("value", ["toaster", "EMULATOR", "", 1, None])
def test_unknown_target_is_refused(value: Any) -> None:
    error = _failure(_job(target=value))
    assert error.field == "target"
    assert error.message == "target: must be one of: emulator, device, browserstack"


def test_unknown_field_is_refused() -> None:
    error = _failure(_job(priorty=5))
    assert error.field == "priorty"
    assert error.message == "priorty: is not a known field"


@pytest.mark.parametrize("body", [[], "job", 3, None, True])
def test_submit_body_must_be_an_object(body: Any) -> None:
    error = _failure(body)
    assert error.field == "body"


@pytest.mark.parametrize(
    "data", [b"", b"org_id=qualgent", b"{", b'{"a": NaN', b"\xff\xfe", b"[" * 100_000]
)
def test_non_json_body_is_invalid_json(data: bytes) -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_json(data, is_json=True)
    assert caught.value.body()["error"] == "invalid_json"


def test_body_without_json_content_type_is_invalid_json() -> None:
    with pytest.raises(InvalidJson, match="Content-Type: application/json"):
        parse_json(b"{}", is_json=False)


def test_batch_forms_list_and_wrapper_give_the_same_jobs() -> None:
    jobs = [_job(test_path="a.js"), _job(test_path="b.js")]
    as_list, list_is_batch = parse_jobs(jobs, max_jobs=10)
    wrapped, wrapped_is_batch = parse_jobs({"jobs": jobs}, max_jobs=10)
    assert as_list == wrapped
    assert [job.test_path for job in as_list] == ["a.js", "b.js"]
    assert list_is_batch
    assert wrapped_is_batch


def test_single_object_is_not_a_batch() -> None:
    jobs, is_batch = parse_jobs(_job(), max_jobs=10)
    assert len(jobs) == 1
    assert not is_batch


@pytest.mark.parametrize("wrap", [False, True])
def test_one_invalid_job_fails_the_batch_naming_its_index(wrap: bool) -> None:
    jobs = [_job(), _job(), _job(), _job(priority=0)]
    with pytest.raises(ValidationFailed) as caught:
        parse_jobs({"jobs": jobs} if wrap else jobs, max_jobs=10)
    assert caught.value.field == "jobs[3].priority"
    assert caught.value.message.startswith("jobs[3].priority: must be an integer")


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ([], "jobs", "must contain at least one job"),
        ({"jobs": []}, "jobs", "must contain at least one job"),
        ({"jobs": {}}, "jobs", "must be a list of job objects"),
        ({"jobs": [], "org_id": "x"}, "org_id", "is not a known field"),
        ([_job(), "x"], "jobs[1]", "must be a JSON object"),
        ("x", "body", "must be a job object"),
    ],
)
def test_bad_batch_shapes(body: Any, field: str, problem: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_jobs(body, max_jobs=10)
    assert caught.value.field == field
    assert problem in caught.value.message


def test_batch_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="at most 3 jobs per request, got 4") as caught:
        parse_jobs([_job()] * 4, max_jobs=3)
    assert caught.value.field == "jobs"
    assert len(parse_jobs([_job()] * 3, max_jobs=3)[0]) == 3


def test_job_query_parses_filters_and_page() -> None:
    cursor = Cursor(1700000000000, "job-1")
    query = parse_job_query(
        {
            "org_id": "qualgent",
            "app_version_id": "v1",
            "status": "running",
            "target": "browserstack",
            "limit": "25",
            "cursor": cursor.encode(),
        }
    )
    assert (query.org_id, query.app_version_id) == ("qualgent", "v1")
    assert query.status is JobStatus.RUNNING
    assert query.target is Target.BROWSERSTACK
    assert query.limit == 25
    assert query.cursor == cursor


def test_job_query_defaults_and_empty_values_mean_absent() -> None:
    query = parse_job_query({"status": "", "limit": ""})
    assert query.status is None
    assert query.limit == 50
    assert query.cursor is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"status": "done"}, "status"),
        ({"target": "toaster"}, "target"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"org_id": "a b"}, "org_id"),
        ({"orgid": "x"}, "orgid"),
    ],
)
def test_bad_job_query_names_the_parameter(args: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_job_query(args)
    assert caught.value.field == field
