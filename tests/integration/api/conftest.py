"""The API wired to the session's real Redis and RabbitMQ (tests/integration/conftest.py)."""

from __future__ import annotations

import uuid
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
from qgjob_contract.leases import LeaseRenewer
from qgjob_contract.names import Keys
from qgjob_contract.records import Agent
from qgjob_contract.statuses import AgentState
from qgjob_contract.targets import Target
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


def add_live_agent(
    redis_client: redis.Redis, target: str, state: AgentState = AgentState.IDLE
) -> str:
    """An agent as a running one leaves it in Redis: its record and a lease renewed now."""
    agent_id = f"{target}-{uuid.uuid4().hex[:6]}"
    instance = str(uuid.uuid4())
    record = Agent(agent_id=agent_id, target=target, state=state.value, instance_id=instance)
    redis_client.hset(Keys.agent(agent_id), mapping=dict(record.to_redis()))
    redis_client.sadd(Keys.AGENTS, agent_id)
    LeaseRenewer(redis_client, agent_id, instance).renew()
    return agent_id


@pytest.fixture
def live_agents(redis_client: redis.Redis) -> list[str]:
    """One live agent of each target (a submit then carries no warning)."""
    return [add_live_agent(redis_client, target.value) for target in Target]
