"""AMQP plumbing every service shares: the topology and a confirming publisher.

pika's BlockingConnection is not thread-safe: give each thread its own publisher.
"""

from __future__ import annotations

import logging

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from qgjob_contract import names
from qgjob_contract.events import Envelope

log = logging.getLogger(__name__)

# Errors after which a fresh connection may succeed.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
    OSError,
)


class PublishError(Exception):
    """The broker did not confirm an event (unreachable, nacked, or unroutable)."""


# The scheduler queue: durable, quorum (replicated, survives restarts), one active consumer
# at a time, a delivery limit, dead letters to the dead-letter exchange.
SCHEDULER_QUEUE_ARGUMENTS: dict[str, object] = {
    "x-queue-type": "quorum",
    "x-single-active-consumer": True,
    "x-delivery-limit": names.DELIVERY_LIMIT,
    "x-dead-letter-exchange": names.DEAD_LETTER_EXCHANGE,
}
# The dead-letter queue: durable, quorum, bounded (the oldest messages go first).
# Every scheduler replica may move dead letters to Redis (storing one is idempotent).
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, object] = {
    "x-queue-type": "quorum",
    "x-max-length": names.DEAD_LETTER_MAX,
    "x-overflow": "drop-head",
}


def declare_topology(channel: BlockingChannel) -> None:
    """Declare exchanges, queues and bindings; idempotent, same arguments everywhere."""
    channel.exchange_declare(names.EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(names.DEAD_LETTER_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(
        names.DEAD_LETTER_QUEUE, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
    )
    channel.queue_bind(names.DEAD_LETTER_QUEUE, names.DEAD_LETTER_EXCHANGE)
    channel.queue_declare(names.SCHEDULER_QUEUE, durable=True, arguments=SCHEDULER_QUEUE_ARGUMENTS)
    for binding in names.SCHEDULER_BINDINGS:
        channel.queue_bind(names.SCHEDULER_QUEUE, names.EXCHANGE, routing_key=binding)


def migrate_legacy_queues(connection: pika.BlockingConnection) -> int:
    """Move what the classic queues of earlier releases hold into the current topology.

    Each legacy queue that exists is unbound (so it receives nothing more), its messages are
    republished to the events exchange under their routing keys with confirms (reaching the
    scheduler queue: dead letters among them fail again and are dead-lettered anew), then it
    is deleted. Returns how many messages were moved. Call after `declare_topology`.
    """
    moved = 0
    for name in names.LEGACY_QUEUES:
        channel = connection.channel()
        try:
            channel.queue_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            continue  # not there: nothing to migrate (the broker closed that channel)
        for binding in names.SCHEDULER_BINDINGS:
            channel.queue_unbind(name, names.EXCHANGE, routing_key=binding)
        channel.queue_unbind(name, names.DEAD_LETTER_EXCHANGE)
        channel.confirm_delivery()
        while True:
            method, properties, body = channel.basic_get(name)
            if method is None:
                break
            channel.basic_publish(names.EXCHANGE, method.routing_key, body, properties)
            channel.basic_ack(method.delivery_tag)
            moved += 1
        channel.queue_delete(name, if_empty=True)
        channel.close()
        log.warning("legacy queue %s migrated: %d message(s) moved, queue deleted", name, moved)
    return moved


def connection_parameters(url: str) -> pika.URLParameters:
    return pika.URLParameters(url)


class ConfirmingPublisher:
    """Publishes envelopes with publisher confirms; reconnects on a lost connection.

    `publish` returns only once the broker has confirmed the message (persisted it to a
    durable queue); otherwise it raises PublishError after `attempts` connection tries.
    """

    def __init__(self, url: str, *, attempts: int = 3, max_backoff_s: float = 2.0) -> None:
        self._params = connection_parameters(url)
        self._attempts = attempts
        self._max_backoff_s = max_backoff_s
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _channel_or_connect(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        self._connection = pika.BlockingConnection(self._params)
        channel = self._connection.channel()
        declare_topology(channel)
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def _publish_once(self, envelope: Envelope) -> None:
        """One publish; a connection kept from earlier that turns out dead is replaced at once.

        A publisher that stays idle (the API's, between requests) does not run pika's I/O
        loop, so the broker drops its connection after missed AMQP heartbeats, and only the
        next publish finds out. That is not an outage: the publish is sent again on a fresh
        connection right away, instead of after the retry backoff (measured: 200-300 ms
        added to 2 of 60 sequential `POST /submit` on an API left idle for a minute).
        """
        kept = self._channel is not None and self._channel.is_open
        try:
            self._send(envelope)
        except CONNECTION_ERRORS:
            if not kept:
                raise
            log.info("AMQP connection found dropped while idle; publishing on a new one")
            self._send(envelope)

    def _send(self, envelope: Envelope) -> None:
        channel = self._channel_or_connect()
        try:
            channel.basic_publish(
                exchange=names.EXCHANGE,
                routing_key=envelope.routing_key,
                body=envelope.encode(),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=envelope.event_id,
                    type=envelope.type.value,
                ),
                mandatory=True,
            )
        except CONNECTION_ERRORS:
            self.close()
            raise

    def publish(self, envelope: Envelope) -> None:
        """Publish and wait for the broker's confirm, reconnecting with backoff.

        A retry after a lost connection re-sends the envelope: the broker may have received
        the first copy, so consumers must tolerate a duplicate (events carry ids).
        """
        publish = retry(
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff_s),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )(self._publish_once)
        try:
            publish(envelope)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise PublishError(f"broker refused event: {exc}") from exc
        except CONNECTION_ERRORS as exc:
            raise PublishError(f"broker unreachable: {exc!r}") from exc

    def idle(self) -> None:
        """Service the open connection while nothing is published (AMQP heartbeats).

        pika answers the broker's heartbeats only inside its I/O loop; a publisher that
        stays idle longer than the heartbeat timeout would otherwise be dropped.
        """
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.process_data_events(0)
            except CONNECTION_ERRORS:
                self.close()

    def check(self) -> None:
        """Open (or reuse) a connection; raise PublishError when the broker is unreachable."""
        try:
            self._channel_or_connect()
        except CONNECTION_ERRORS as exc:
            self.close()
            raise PublishError(f"broker unreachable: {exc!r}") from exc

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                log.debug("closing a broken AMQP connection failed", exc_info=True)
