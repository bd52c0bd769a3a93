"""Edges of validation that `make mutation` found unchecked: the smallest accepted values,
drive-letter paths whatever they end with, the cursor's own message, and parsed input being
immutable."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest

from qgjob_api.errors import ValidationFailed
from qgjob_api.validation import (
    MAX_PAGE,
    DeadLetterQuery,
    TokenIn,
    parse_body,
    parse_job,
    parse_job_query,
    parse_jobs,
    parse_query,
)

JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}


def test_a_one_character_test_path_is_accepted() -> None:
    assert parse_job({**JOB, "test_path": "a"}).test_path == "a"


@pytest.mark.parametrize("path", ["C:/tests/a.spec.js", "c:/tests/run2", "d:x1", "C:"])
def test_a_windows_drive_path_is_refused_whatever_it_ends_with(path: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_job({**JOB, "test_path": path})
    assert str(caught.value) == "test_path: must be a relative path"


@pytest.mark.parametrize("path", ["1:/tests/a.spec.js", "tests/c:d.js"])
def test_a_colon_after_a_non_letter_is_an_ordinary_path(path: str) -> None:
    assert parse_job({**JOB, "test_path": path}).test_path == path


@pytest.mark.parametrize("limit", ["1", "500"])
def test_the_page_size_bounds_are_accepted(limit: str) -> None:
    # 1 to 500, as the API's own error message for `limit` states it.
    assert parse_job_query({"limit": limit}).limit == int(limit)
    assert MAX_PAGE == 500


@pytest.mark.parametrize("limit", ["0", "501"])
def test_a_page_size_out_of_bounds_is_refused(limit: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_job_query({"limit": limit})
    assert str(caught.value) == "limit: must be an integer from 1 to 500"


def test_of_several_unknown_batch_fields_the_first_in_order_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_jobs({"jobs": [JOB], "zeta": 1, "alpha": 2}, max_jobs=5)
    assert caught.value.field == "alpha"


def test_of_several_wrong_fields_the_first_is_named() -> None:
    body = {"app_version_id": "v", "test_path": "../x", "priority": 99}  # org_id missing too
    with pytest.raises(ValidationFailed) as caught:
        parse_job(body)
    assert caught.value.field == "org_id"
    assert str(caught.value) == "org_id: is required"


def test_a_cursor_that_is_not_ours_names_what_it_must_be() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_job_query({"cursor": "not-a-cursor"})
    assert caught.value.field == "cursor"
    assert str(caught.value) == "cursor: must be a next_cursor value returned by this API"


def test_parsed_input_is_immutable() -> None:
    job = parse_job(JOB)
    with pytest.raises(pydantic.ValidationError):
        job.priority = 5  # type: ignore[misc]
    query = parse_job_query({"limit": "5"})
    with pytest.raises(pydantic.ValidationError):
        query.limit = 6  # type: ignore[misc]


# A token may be given a life of at most ten years (365-day years, as the API states it).
TEN_YEARS_S = int(timedelta(days=10 * 365).total_seconds())


def test_a_token_may_live_ten_years_and_not_a_second_more() -> None:
    body = {"org_id": "qualgent", "role": "viewer"}
    assert parse_body(TokenIn, {**body, "expires_in_s": TEN_YEARS_S}).expires_in_s == TEN_YEARS_S
    with pytest.raises(ValidationFailed) as caught:
        parse_body(TokenIn, {**body, "expires_in_s": TEN_YEARS_S + 1})
    assert caught.value.field == "expires_in_s"


def test_a_token_may_live_one_second() -> None:
    body = {"org_id": "qualgent", "role": "viewer", "expires_in_s": 1}
    assert parse_body(TokenIn, body).expires_in_s == 1
    with pytest.raises(ValidationFailed) as caught:
        parse_body(TokenIn, {**body, "expires_in_s": 0})
    assert caught.value.field == "expires_in_s"


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_a_dead_letter_page_of_1_to_1000_is_accepted(limit: str) -> None:
    # 1-1000, as the admin route's own error message for `limit` states it.
    assert parse_query(DeadLetterQuery, {"limit": limit}).limit == int(limit)


@pytest.mark.parametrize("limit", ["0", "1001"])
def test_a_dead_letter_page_out_of_bounds_is_refused(limit: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_query(DeadLetterQuery, {"limit": limit})
    assert caught.value.field == "limit"
