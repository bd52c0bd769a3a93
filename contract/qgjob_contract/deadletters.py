"""The dead-letter store: events that could not be applied, kept in Redis for operators.

RabbitMQ dead-letters a message into `names.DEAD_LETTER_QUEUE` when it cannot be decoded,
is invalid, or went past the delivery limit. The scheduler moves each one here (`store`),
bounded to `names.DEAD_LETTER_MAX` entries (the oldest go first). The API lists them and
replays chosen ones (`take`, then a confirmed publish to the events exchange under the
original routing key), and only then remove them (`take`): a replay that dies half way
loses nothing. `take` removes an entry in one transaction and returns it to one caller only,
so a later replay of the same id finds it `missing`; two replays racing may both publish, and
the consumers' idempotence makes that duplicate harmless.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from qgjob_contract import names
from qgjob_contract.names import Keys


@dataclass(frozen=True)
class DeadLetter:
    event_id: str  # the envelope's event id (or the message id, or a digest of the body)
    type: str  # the event type, or "" when the body is not an envelope
    routing_key: str  # where it was first published (to replay it)
    reason: str  # rejected | delivery_limit | expired | maxlen (RabbitMQ's x-death reason)
    queue: str  # the queue it died in
    dead_at_ms: int
    body_b64: str  # the message body, exactly (base64)

    def body(self) -> bytes:
        return base64.b64decode(self.body_b64)

    def to_api(self) -> dict[str, Any]:
        """As the admin API lists it: the fields, with the body decoded as far as it goes."""
        body = self.body()
        shown: dict[str, Any] = {k: v for k, v in asdict(self).items() if k != "body_b64"}
        try:
            shown["body"] = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            shown["body"] = body.decode("utf-8", errors="replace")
        return shown


def from_message(body: bytes, properties: Any, now_ms: int) -> DeadLetter:
    """A dead letter from a message of the dead-letter queue (pika's BasicProperties)."""
    headers = getattr(properties, "headers", None) or {}
    deaths = headers.get("x-death") or [{}]
    death = deaths[0] if isinstance(deaths[0], dict) else {}
    routing_keys = death.get("routing-keys") or [""]
    event_id, event_type = _envelope_ids(body)
    if not event_id:
        event_id = getattr(properties, "message_id", None) or hashlib.sha256(body).hexdigest()
    return DeadLetter(
        event_id=str(event_id),
        type=event_type,
        routing_key=_text(routing_keys[0]),
        reason=_text(death.get("reason") or headers.get("x-first-death-reason") or ""),
        queue=_text(death.get("queue") or headers.get("x-first-death-queue") or ""),
        dead_at_ms=now_ms,
        body_b64=base64.b64encode(body).decode(),
    )


def store(client: Redis, letter: DeadLetter) -> None:
    """Keep `letter` (idempotent per event id); drop the oldest past DEAD_LETTER_MAX."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(Keys.DEAD_LETTERS, letter.event_id, json.dumps(asdict(letter)))
    pipe.zadd(Keys.DEAD_LETTERS_BY_TIME, {letter.event_id: letter.dead_at_ms}, nx=True)
    pipe.execute()
    excess = client.zcard(Keys.DEAD_LETTERS_BY_TIME) - names.DEAD_LETTER_MAX
    if excess > 0:
        oldest = [str(e) for e in client.zrange(Keys.DEAD_LETTERS_BY_TIME, 0, excess - 1)]
        pipe = client.pipeline(transaction=True)
        pipe.zrem(Keys.DEAD_LETTERS_BY_TIME, *oldest)
        pipe.hdel(Keys.DEAD_LETTERS, *oldest)
        pipe.execute()


def listing(client: Redis, limit: int) -> tuple[int, list[DeadLetter]]:
    """(how many are kept, the newest `limit` of them, newest first)."""
    total = int(client.zcard(Keys.DEAD_LETTERS_BY_TIME))
    ids = [str(e) for e in client.zrevrange(Keys.DEAD_LETTERS_BY_TIME, 0, limit - 1)]
    raws = client.hmget(Keys.DEAD_LETTERS, ids) if ids else []
    return total, [_letter(raw) for raw in raws if raw]


def all_ids(client: Redis) -> list[str]:
    return [str(e) for e in client.zrange(Keys.DEAD_LETTERS_BY_TIME, 0, -1)]


def peek(client: Redis, event_id: str) -> DeadLetter | None:
    """The entry, left in place; None when it is not there."""
    raw = client.hget(Keys.DEAD_LETTERS, event_id)
    return _letter(raw) if raw else None


def take(client: Redis, event_id: str) -> DeadLetter | None:
    """Remove the entry and return it; None when it is not there (or another caller took it)."""
    pipe = client.pipeline(transaction=True)
    pipe.hget(Keys.DEAD_LETTERS, event_id)
    pipe.hdel(Keys.DEAD_LETTERS, event_id)
    pipe.zrem(Keys.DEAD_LETTERS_BY_TIME, event_id)
    raw, deleted, _ = pipe.execute()
    if not deleted or not raw:
        return None
    return _letter(raw)


def _envelope_ids(body: bytes) -> tuple[str, str]:
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "", ""
    if not isinstance(raw, dict):
        return "", ""
    event_id, event_type = raw.get("event_id"), raw.get("type")
    return (
        event_id if isinstance(event_id, str) else "",
        event_type if isinstance(event_type, str) else "",
    )


def _letter(raw: str | bytes) -> DeadLetter:
    return DeadLetter(**json.loads(raw))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
