"""Validation of the event payloads the scheduler consumes.

The shapes and their field rules (non-empty ids, enums, counters >= 0, final outcomes,
timestamps with a time zone) are the TypedDicts of `qgjob_contract.events`; `parse` checks a
payload against one with pydantic before anything is written to Redis. A payload that fails
is an `InvalidEvent` (dead-lettered). Unknown extra fields are dropped, so producers may add
fields. Timestamps are stored in `qgjob_contract.events.format_timestamp`'s format
(`timestamp`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from qgjob_contract.events import format_timestamp, parse_timestamp
from qgjob_scheduler.errors import InvalidEvent

_T = TypeVar("_T")

_adapters: dict[type[Any], TypeAdapter[Any]] = {}  # built once per shape: building is slow


def timestamp(text: str) -> str:
    """A payload's timestamp (valid after `parse`) in the format every qgjob record uses."""
    return format_timestamp(parse_timestamp(text))


def parse(shape: type[_T], payload: dict[str, Any]) -> _T:
    """Validate a payload against a contract TypedDict; raise InvalidEvent naming what is wrong."""
    adapter = _adapters.get(shape)
    if adapter is None:
        adapter = _adapters[shape] = TypeAdapter(shape)
    try:
        validated: _T = adapter.validate_python(payload)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {shape.__name__}: {exc}") from exc
    return validated
