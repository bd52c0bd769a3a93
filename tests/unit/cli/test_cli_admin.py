"""`qgjob admin dlq list|replay` against the fake transport: what is sent, what is shown."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import FakeApi, Run

LETTER = {
    "event_id": "e-1",
    "type": "job.finished",
    "routing_key": "job.finished",
    "reason": "delivery_limit",
    "queue": "qgjob.scheduler.events",
    "dead_at_ms": 1800000000000,
    "body": {"payload": {"job_id": "j-1", "batch_id": "b-1"}},
}


def test_list_shows_the_total_and_one_row_per_dead_letter(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"total": 3, "dead_letters": [LETTER]})
    result = qgjob("admin", "dlq", "list", "--limit", "1")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "3 dead letter(s)"
    assert lines[1].split() == ["EVENT", "ID", "TYPE", "REASON", "DEAD", "AT", "(ms)", "ABOUT"]
    assert lines[2].split() == [
        "e-1",
        "job.finished",
        "delivery_limit",
        "1800000000000",
        "job_id=j-1",
        "batch_id=b-1",
    ]
    (request,) = api.requests
    assert request.method == "GET"
    assert request.url is not None
    assert request.url.endswith("/v1/admin/dead-letters?limit=1")


def test_replay_sends_the_ids_and_says_what_happened_to_each(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"replayed": ["e-1"], "missing": ["e-2"], "unreplayable": []})
    result = qgjob("admin", "dlq", "replay", "e-1", "e-2")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "replayed 1, missing 1, unreplayable 0",
        "missing: e-2 (not in the dead-letter queue, or replayed already)",
    ]
    (request,) = api.requests
    assert request.method == "POST"
    assert json.loads(request.body or b"") == {"event_ids": ["e-1", "e-2"]}


def test_replay_all_asks_for_every_entry(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"replayed": [], "missing": [], "unreplayable": []})
    assert qgjob("admin", "dlq", "replay", "--all").exit_code == 0
    assert json.loads(api.requests[0].body or b"") == {"all": True}


def test_replay_needs_ids_or_all_but_not_both(api: FakeApi, qgjob: Run) -> None:
    for args in ((), ("e-1", "--all")):
        result = qgjob("admin", "dlq", "replay", *args)
        assert result.exit_code == 2
        assert "give EVENT_IDS or --all" in result.output
    assert api.requests == []


def test_a_broker_outage_during_replay_is_a_server_error(api: FakeApi, qgjob: Run) -> None:
    api.respond(503, {"error": "unavailable", "message": "the event broker is unavailable"})
    result = qgjob("admin", "dlq", "replay", "e-1")
    assert result.exit_code == 4
    assert "unavailable" in result.output
