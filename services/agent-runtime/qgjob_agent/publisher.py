"""The agent's event publisher: the outbox's, one connection on the outbox thread.

It is the contract's ConfirmingPublisher: an event counts as sent once the broker has
confirmed it. It makes exactly one connection attempt per publish, whatever RABBITMQ_URL asks
for: the outbox retries with its own backoff, for as long as the broker is away.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qgjob_contract.amqp import ConfirmingPublisher
from qgjob_contract.events import Envelope

# pika's URL options for its own connection retries (URLParameters).
_RETRY_OPTIONS = frozenset({"connection_attempts", "retry_delay"})


class EventPublisher(Protocol):
    def publish(self, envelope: Envelope) -> None:
        """Return once the broker confirmed the event; raise PublishError otherwise."""

    def close(self) -> None:
        """Drop the connection; the next publish opens a new one."""

    def idle(self) -> None:
        """Service the connection while nothing is published (AMQP heartbeats)."""


def outbox_publisher(rabbitmq_url: str) -> ConfirmingPublisher:
    return ConfirmingPublisher(single_attempt_url(rabbitmq_url), attempts=1)


def single_attempt_url(rabbitmq_url: str) -> str:
    """The URL with pika's connection retries replaced by a single attempt."""
    parts = urlsplit(rabbitmq_url)
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in _RETRY_OPTIONS
    ]
    query.append(("connection_attempts", "1"))
    return urlunsplit(parts._replace(query=urlencode(query)))
