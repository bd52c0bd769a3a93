"""The API wired to the session's real Redis and RabbitMQ (tests/integration/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
import redis
from flask.testing import FlaskClient

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_contract.amqp import ConfirmingPublisher
from qgjob_contract.events import Envelope, decode
from tests.integration.conftest import EventTap

MakeClient = Callable[..., FlaskClient]


@pytest.fixture
def make_client(
    redis_url: str, rabbitmq_url: str, redis_client: redis.Redis
) -> Iterator[MakeClient]:
    """`make_client(**config_overrides)`: a test client of create_app on the real servers.

    Depends on `redis_client`, so Redis is flushed first; publishers are closed afterwards.
    """
    publishers: list[ConfirmingPublisher] = []

    def make(**overrides: Any) -> FlaskClient:
        settings = {"redis_url": redis_url, "rabbitmq_url": rabbitmq_url}
        config = Config(**{**settings, "max_jobs_per_request": 50, **overrides})

        def factory() -> ConfirmingPublisher:
            publishers.append(ConfirmingPublisher(config.rabbitmq_url, max_backoff_s=0.2))
            return publishers[-1]

        return create_app(config, publisher_factory=factory).test_client()

    yield make
    for publisher in publishers:
        publisher.close()


@pytest.fixture
def client(
    make_client: MakeClient, amqp_channel: pika.adapters.blocking_connection.BlockingChannel
) -> FlaskClient:
    """The API with both servers up; the scheduler queue starts empty."""
    return make_client()


@pytest.fixture
def scheduler_events(event_tap: EventTap) -> Callable[[], list[Envelope]]:
    """Every event the broker routed since the last call, decoded, in order."""

    def drain() -> list[Envelope]:
        return [decode(body) for _, body, _ in event_tap.drain()]

    return drain
