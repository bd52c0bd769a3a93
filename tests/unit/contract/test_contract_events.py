"""The event envelope round-trips, and anything else is refused as undecodable."""

from __future__ import annotations

import json

import pytest

from qgjob_contract.events import EventDecodeError, EventType, decode, make_event


def test_envelope_round_trips_with_all_fields() -> None:
    event = make_event(EventType.JOBS_SUBMITTED, {"jobs": [{"job_id": "j1", "priority": 3}]})
    raw = json.loads(event.encode())
    assert set(raw) == {"event_id", "type", "version", "occurred_at", "payload"}
    assert raw["type"] == "jobs.submitted"
    assert event.routing_key == "jobs.submitted"
    assert decode(event.encode()) == event


def test_each_event_gets_its_own_id() -> None:
    a = make_event(EventType.AGENT_HEARTBEAT, {})
    b = make_event(EventType.AGENT_HEARTBEAT, {})
    assert a.event_id != b.event_id


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"type": "job.exploded", "event_id": "e", "version": 1, "occurred_at": "t", '
        b'"payload": {}}',
        b'{"type": "job.started", "version": 1, "occurred_at": "t", "payload": {}}',
        b'{"type": "job.started", "event_id": "e", "version": 99, "occurred_at": "t", '
        b'"payload": {}}',
        b'{"type": "job.started", "event_id": "e", "version": 1, "occurred_at": "t", '
        b'"payload": []}',
    ],
)
def test_malformed_envelopes_raise_decode_error(body: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode(body)
