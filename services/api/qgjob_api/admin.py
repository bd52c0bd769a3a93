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

import re
from collections.abc import Callable
from typing import Any

import redis
from flask import Blueprint, request

from qgjob_api.errors import Unavailable, ValidationFailed
from qgjob_api.submit import Publisher
from qgjob_contract import deadletters
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import EventDecodeError, decode

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_REPLAY = 1000
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def admin_blueprint(
    client: redis.Redis, publisher: Callable[[], Publisher], request_json: Callable[[], Any]
) -> Blueprint:
    admin = Blueprint("admin", __name__, url_prefix="/v1/admin")

    @admin.get("/dead-letters")
    def list_dead_letters() -> dict[str, Any]:
        limit = _limit(request.args.get("limit"))
        total, letters = deadletters.listing(client, limit)
        return {"total": total, "dead_letters": [letter.to_api() for letter in letters]}

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
        return {"replayed": replayed, "missing": missing, "unreplayable": unreplayable}

    return admin


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed("limit", f"must be an integer 1-{MAX_LIMIT}")
    return int(raw)


def _replay_ids(body: Any, client: redis.Redis) -> list[str]:
    """The event ids to replay: `{"event_ids": [...]}` or `{"all": true}`."""
    if not isinstance(body, dict) or set(body) - {"event_ids", "all"} or len(body) != 1:
        raise ValidationFailed("event_ids", 'the body is {"event_ids": [...]} or {"all": true}')
    if "all" in body:
        if body["all"] is not True:
            raise ValidationFailed("all", "must be true")
        return deadletters.all_ids(client)[:MAX_REPLAY]
    ids = body["event_ids"]
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_REPLAY
        or not all(isinstance(i, str) and _EVENT_ID.fullmatch(i) for i in ids)
    ):
        raise ValidationFailed("event_ids", f"must be a list of 1-{MAX_REPLAY} event ids")
    return list(dict.fromkeys(ids))
