"""Edges of validation that `make mutation` found unchecked: the smallest accepted values,
drive-letter paths whatever they end with, the cursor's own message, and parsed input being
immutable."""

from __future__ import annotations

import pydantic
import pytest

from qgjob_api.errors import ValidationFailed
from qgjob_api.validation import MAX_PAGE, parse_job, parse_job_query

JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}


def test_a_one_character_test_path_is_accepted() -> None:
    assert parse_job({**JOB, "test_path": "a"}).test_path == "a"


@pytest.mark.parametrize("path", ["C:/tests/a.spec.js", "c:/tests/run2", "d:x1"])
def test_a_windows_drive_path_is_refused_whatever_it_ends_with(path: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_job({**JOB, "test_path": path})
    assert str(caught.value) == "test_path: must be a relative path"


@pytest.mark.parametrize("path", ["1:/tests/a.spec.js", "tests/c:d.js"])
def test_a_colon_after_a_non_letter_is_an_ordinary_path(path: str) -> None:
    assert parse_job({**JOB, "test_path": path}).test_path == path


@pytest.mark.parametrize("limit", ["1", str(MAX_PAGE)])
def test_the_page_size_bounds_are_accepted(limit: str) -> None:
    assert parse_job_query({"limit": limit}).limit == int(limit)


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
