"""The agent's two event publishers, one per thread (a pika connection is not thread-safe).

Both are the contract's ConfirmingPublisher: an event counts as sent once the broker has
confirmed it. The worker thread's publisher is closed after every batch, so an idle agent
holds no connection for the broker to drop, and a connection dropped during a long test
(pika services AMQP heartbeats only while publishing) is re-opened by its retry. Its retries
span a broker restart. The heartbeat publisher makes exactly one connection attempt per beat,
whatever RABBITMQ_URL asks for: it publishes holding the lock that keeps heartbeats in order
with batch.finished, so a slow try would hold up the end of a batch; the next beat is its retry.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qgjob_contract.amqp import ConfirmingPublisher
from qgjob_contract.events import Envelope

EVENT_PUBLISH_ATTEMPTS = 8
EVENT_PUBLISH_MAX_BACKOFF_S = 5.0

# pika's URL options for its own connection retries (URLParameters).
_RETRY_OPTIONS = frozenset({"connection_attempts", "retry_delay"})


class EventPublisher(Protocol):
    def publish(self, envelope: Envelope) -> None:
        """Return once the broker confirmed the event; raise PublishError otherwise."""

    def close(self) -> None:
        """Drop the connection; the next publish opens a new one."""


def batch_event_publisher(rabbitmq_url: str) -> ConfirmingPublisher:
    return ConfirmingPublisher(
        rabbitmq_url,
        attempts=EVENT_PUBLISH_ATTEMPTS,
        max_backoff_s=EVENT_PUBLISH_MAX_BACKOFF_S,
    )


def heartbeat_publisher(rabbitmq_url: str) -> ConfirmingPublisher:
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
