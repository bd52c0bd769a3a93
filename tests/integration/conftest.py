"""Real RabbitMQ and Redis for integration tests, started once per session with testcontainers.

Each test gets a clean Redis database and a freshly declared, purged topology.
"""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest
import redis
from testcontainers.community.rabbitmq import RabbitMqContainer
from testcontainers.community.redis import RedisContainer

from qgjob_contract import names
from qgjob_contract.amqp import declare_topology

REDIS_IMAGE = "redis:8"
RABBITMQ_IMAGE = "rabbitmq:4-management"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with RedisContainer(REDIS_IMAGE) as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(6379)
        yield f"redis://{host}:{port}/0"


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    with RabbitMqContainer(RABBITMQ_IMAGE) as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(container.port)
        yield f"amqp://guest:guest@{host}:{port}/%2F?heartbeat=30&connection_attempts=5&retry_delay=1"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def amqp_channel(rabbitmq_url: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel on a topology with empty queues."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    declare_topology(channel)
    channel.queue_purge(names.SCHEDULER_QUEUE)
    channel.queue_purge(names.DEAD_LETTER_QUEUE)
    yield channel
    connection.close()
