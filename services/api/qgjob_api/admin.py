"""Operator routes: the dead-letter queue, listed and replayed.

The scheduler moves every dead-lettered event into the dead-letter store in Redis
(`qgjob_contract.deadletters`); these routes read it and replay chosen entries: each is
decoded, published again to the events exchange under its own event id with publisher
confirms, and only then removed from the store (a replay of it afterwards finds it
`missing`); if the publish fails, it stays and the answer is 503. The consumers are
idempotent, so a replayed event that had been applied meanwhile changes nothing. A message
that is not a valid envelope cannot be replayed: it stays listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask import Blueprint, request

from qgjob_api import answers
from qgjob_api.bodies import request_json
from qgjob_api.errors import Unavailable, ValidationFailed
from qgjob_api.submit import Publisher
from qgjob_api.validation import (
    MAX_DEAD_LETTERS,
    DeadLetterQuery,
    ReplayAll,
    ReplayIds,
    parse_body,
    parse_query,
)
from qgjob_contract import deadletters
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import EventDecodeError, decode

_LIMIT_RULE = {"limit": f"must be an integer 1-{MAX_DEAD_LETTERS}"}


def admin_blueprint(client: redis.Redis, publisher: Callable[[], Publisher]) -> Blueprint:
    admin = Blueprint("admin", __name__, url_prefix="/v1/admin")

    @admin.get("/dead-letters")
    def list_dead_letters() -> dict[str, Any]:
        query = parse_query(DeadLetterQuery, request.args, rules=_LIMIT_RULE)
        total, letters = deadletters.listing(client, query.limit)
        body = {"total": total, "dead_letters": [letter.to_api() for letter in letters]}
        return answers.shown(answers.DeadLetters, body)

    @admin.post("/dead-letters/replay")
    def replay_dead_letters() -> dict[str, Any]:
        event_ids = _replay_ids(request_json(), client)
        replayed: list[str] = []
        missing: list[str] = []
        unreplayable: list[str] = []
        for event_id in event_ids:
            letter = deadletters.peek(client, event_id)
            if letter is None:
                missing.append(event_id)
                continue
            try:
                envelope = decode(letter.body())
            except EventDecodeError:
                unreplayable.append(event_id)
                continue
            try:
                publisher().publish(envelope)
            except PublishError as exc:
                raise Unavailable(f"the event broker is unavailable: {exc}") from exc
            # published (confirmed): only now does it leave the store; a concurrent replay
            # that took it first makes this one a harmless duplicate
            deadletters.take(client, event_id)
            replayed.append(event_id)
        body = {"replayed": replayed, "missing": missing, "unreplayable": unreplayable}
        return answers.shown(answers.Replayed, body)

    return admin


def _replay_ids(body: Any, client: redis.Redis) -> list[str]:
    """The event ids to replay: `{"event_ids": [...]}` or `{"all": true}`: the two
    forms of validation.ReplayBody, each validated with its model."""
    if not isinstance(body, dict) or len(body) != 1 or set(body) - {"event_ids", "all"}:
        raise ValidationFailed("event_ids", 'the body is {"event_ids": [...]} or {"all": true}')
    if "all" in body:
        parse_body(ReplayAll, body)
        return deadletters.all_ids(client)[:MAX_DEAD_LETTERS]
    return list(dict.fromkeys(parse_body(ReplayIds, body).event_ids))
