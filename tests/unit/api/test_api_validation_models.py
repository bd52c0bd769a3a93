"""Every input model of the API is immutable once parsed (a handler cannot change what the
client sent on its way to the store), and the remaining bounds and defaults of the admin
and token bodies (`qgjob_api.validation`)."""

from __future__ import annotations

import inspect
from typing import Any

import pydantic
import pytest

from qgjob_api import validation
from qgjob_api.errors import ValidationFailed
from qgjob_api.validation import (
    DeadLetterQuery,
    ReplayAll,
    ReplayBody,
    TokenIn,
    parse_body,
    parse_query,
)

JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}
TOKEN = {"org_id": "qualgent", "role": "viewer"}

# One valid body per input model, and a field to try to change.
VALID: dict[str, tuple[dict[str, Any], str, object]] = {
    "JobOptions": ({}, "retries", 2),
    "JobIn": (JOB, "priority", 5),
    "JobQuery": ({"limit": 5}, "limit", 6),
    "RunIn": ({"org_id": "qualgent", "app_version_id": "v1", "tests": ["a.js"]}, "priority", 5),
    "RunQuery": ({"limit": 5}, "limit", 6),
    "JobIds": ({"job_ids": ["a"]}, "job_ids", ["b"]),
    "JobBatch": ({"jobs": [JOB]}, "jobs", []),
    "CancelIn": ({"job_ids": ["a"]}, "job_ids", ["b"]),
    "DeadLetterQuery": ({"limit": 5}, "limit", 6),
    "ReplayIds": ({"event_ids": ["e1"]}, "event_ids", ["e2"]),
    "ReplayAll": ({"all": True}, "all", False),
    "TokenIn": (TOKEN, "name", "changed"),
    "TokenQuery": ({"org_id": "qualgent"}, "org_id", "other"),
}


def _models() -> list[str]:
    return sorted(
        name
        for name, value in vars(validation).items()
        if inspect.isclass(value)
        and issubclass(value, pydantic.BaseModel)
        and not issubclass(value, pydantic.RootModel)
        and value.__module__ == validation.__name__
    )


def test_every_input_model_is_checked_here() -> None:
    assert _models() == sorted(VALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_parsed_body_cannot_be_changed(name: str) -> None:
    body, field, value = VALID[name]
    parsed = getattr(validation, name).model_validate(body)
    with pytest.raises(pydantic.ValidationError):
        setattr(parsed, field, value)


def test_a_dead_letter_listing_shows_100_by_default() -> None:
    assert parse_query(DeadLetterQuery, {}).limit == 100


def test_a_replay_of_everything_must_say_all_true() -> None:
    assert isinstance(parse_body(ReplayBody, {"all": True}).root, ReplayAll)
    with pytest.raises(ValidationFailed):
        parse_body(ReplayBody, {"all": False})


def test_a_token_name_may_have_128_characters_and_not_129() -> None:
    assert parse_body(TokenIn, {**TOKEN, "name": "n" * 128}).name == "n" * 128
    with pytest.raises(ValidationFailed) as caught:
        parse_body(TokenIn, {**TOKEN, "name": "n" * 129})
    assert caught.value.field == "name"


def test_a_queue_ttl_is_any_number_of_seconds_above_0() -> None:
    job = {"org_id": "qualgent", "app_version_id": "v1", "test_path": "a.js"}
    assert validation.parse_job({**job, "queue_ttl_s": 0.001}).queue_ttl_s == 0.001
    with pytest.raises(ValidationFailed) as caught:
        validation.parse_job({**job, "queue_ttl_s": 0})
    assert caught.value.field == "queue_ttl_s"


def test_a_replay_names_at_least_one_event() -> None:
    assert parse_body(ReplayBody, {"event_ids": ["e1"]}).root.model_dump() == {"event_ids": ["e1"]}
    with pytest.raises(ValidationFailed):
        parse_body(ReplayBody, {"event_ids": []})
