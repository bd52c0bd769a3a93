"""The confirming publisher against a real RabbitMQ."""

from __future__ import annotations

import pika
import pytest

from qgjob_contract import names
from qgjob_contract.amqp import ConfirmingPublisher, PublishError
from qgjob_contract.events import EventType, decode, make_event
from tests.integration.conftest import EventTap, ProxiedBroker


def test_published_event_lands_on_scheduler_queue_with_routing_key(
    rabbitmq_url: str,
    amqp_channel: pika.adapters.blocking_connection.BlockingChannel,
    event_tap: EventTap,
) -> None:
    publisher = ConfirmingPublisher(rabbitmq_url)
    event = make_event(EventType.AGENT_HEARTBEAT, {"agent_id": "a1"})
    publisher.publish(event)
    publisher.close()

    assert amqp_channel.queue_declare(names.SCHEDULER_QUEUE, passive=True).method.message_count == 1
    ((routing_key, body, properties),) = event_tap.drain()
    assert routing_key == "agent.heartbeat"
    assert properties.delivery_mode == 2
    received = decode(body)
    assert received.event_id == event.event_id
    assert received.payload == {"agent_id": "a1"}


def test_publish_to_unreachable_broker_raises_publish_error() -> None:
    publisher = ConfirmingPublisher(
        "amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1&socket_timeout=1",
        attempts=2,
        max_backoff_s=0.1,
    )
    with pytest.raises(PublishError, match="unreachable"):
        publisher.publish(make_event(EventType.AGENT_HEARTBEAT, {}))


def test_connection_dropped_while_idle_is_replaced_within_the_same_attempt(
    rabbitmq_proxy: ProxiedBroker, event_tap: EventTap
) -> None:
    # One attempt, as the agent's outbox publisher has: a connection the broker dropped
    # while the publisher was idle must not cost a failed publish (and its backoff).
    publisher = ConfirmingPublisher(rabbitmq_proxy.url, attempts=1)
    first = make_event(EventType.AGENT_HEARTBEAT, {"agent_id": "a1"})
    second = make_event(EventType.AGENT_HEARTBEAT, {"agent_id": "a2"})
    try:
        publisher.publish(first)
        rabbitmq_proxy.proxy.drop()
        publisher.publish(second)
    finally:
        publisher.close()

    assert rabbitmq_proxy.proxy.accepted == 2
    received = [decode(body).event_id for _, body, _ in event_tap.drain()]
    assert received == [first.event_id, second.event_id]
