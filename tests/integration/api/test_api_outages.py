"""The API while its broker or its Redis DIES under it, and after they come back.

These tests run their own RabbitMQ and Redis containers (the session's are shared with other
tests and must stay up), published on fixed host ports so that a container stopped and
started again is reached at the same address, as a restarted compose service would be. The
faults are real: `docker stop` / `docker start`, and a RabbitMQ policy that makes the
scheduler's queue refuse messages. Nothing in the API is patched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pika
import pika.exceptions
import pytest
import redis
from flask.testing import FlaskClient
from testcontainers.community.rabbitmq import RabbitMqContainer
from testcontainers.community.redis import RedisContainer

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_contract import names
from qgjob_contract.amqp import ConfirmingPublisher, declare_topology
from qgjob_contract.events import Envelope, EventType, decode
from qgjob_contract.names import Keys
from tests.integration.conftest import RABBITMQ_IMAGE, REDIS_IMAGE, free_port

JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}
T = TypeVar("T")
# A policy that makes the scheduler's queue refuse every message: the broker then nacks
# the publish. Only a publisher that waits for confirms can tell; the message is routable,
# so even `mandatory` does not report it.
REFUSE_POLICY = "qgjob-test-refuse"
TAP_QUEUE = "qgjob-test-tap"


def _poll(probe: Callable[[], T], *, timeout: float, what: str) -> T:
    """`probe()` until it returns without raising, or fail at the deadline with the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except Exception as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {exc!r}")
            time.sleep(0.25)


@dataclass
class Broker:
    container: RabbitMqContainer
    url: str

    def stop(self) -> None:
        self.container.get_wrapped_container().stop(timeout=5)

    def start(self) -> None:
        self.container.get_wrapped_container().start()
        _poll(lambda: pika.BlockingConnection(pika.URLParameters(self.url)).close(),
              timeout=90, what="RabbitMQ to accept connections again")  # fmt: skip

    def rabbitmqctl(self, *args: str) -> None:
        code, output = self.container.exec(["rabbitmqctl", *args])
        assert code == 0, output

    def _channel(self) -> tuple[pika.BlockingConnection, Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        declare_topology(channel)
        # A durable queue of the test's own, bound to every event: it sees what the broker
        # routed (the scheduler's queue has a single active consumer and refuses basic.get)
        # and, like the scheduler's, keeps its messages across a broker restart.
        channel.queue_declare(TAP_QUEUE, durable=True)
        channel.queue_bind(TAP_QUEUE, names.EXCHANGE, routing_key="#")
        return connection, channel

    def events(self) -> list[Envelope]:
        """Every event routed since the last call (taken from the tap), in order."""
        connection, channel = self._channel()
        try:
            events = []
            while True:
                method, _properties, body = channel.basic_get(TAP_QUEUE, auto_ack=True)
                if method is None:
                    return events
                events.append(decode(body))
        finally:
            connection.close()

    def scheduler_queue_depth(self) -> int:
        """Messages waiting on the scheduler's own queue."""
        connection, channel = self._channel()
        try:
            declared = channel.queue_declare(names.SCHEDULER_QUEUE, passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()


@dataclass
class Store:
    container: RedisContainer
    url: str

    def stop(self) -> None:
        self.container.get_wrapped_container().stop(timeout=5)

    def start(self) -> None:
        self.container.get_wrapped_container().start()
        _poll(lambda: redis.Redis.from_url(self.url).ping(), timeout=60, what="Redis to answer")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def job_ids(self) -> list[str]:
        ids: list[str] = self.client().zrange(Keys.JOBS_BY_TIME, 0, -1)
        keys = self.client().keys(Keys.job("*"))
        assert sorted(ids) == sorted(key.removeprefix(Keys.job("")) for key in keys)
        return ids


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    port = free_port()
    container = RabbitMqContainer(RABBITMQ_IMAGE).with_bind_ports(5672, port)
    with container:
        yield Broker(
            container,
            f"amqp://guest:guest@127.0.0.1:{port}/%2F?connection_attempts=1&socket_timeout=2"
            "&heartbeat=30",
        )


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    port = free_port()
    with RedisContainer(REDIS_IMAGE).with_bind_ports(6379, port) as container:
        yield Store(container, f"redis://127.0.0.1:{port}/0")


@pytest.fixture
def servers(broker: Broker, store: Store) -> Iterator[tuple[Broker, Store]]:
    """Both servers up and empty at the start of a test, and up again at its end."""
    for server in (broker, store):
        if server.container.get_wrapped_container().status != "running":
            server.start()
        server.container.get_wrapped_container().reload()
    store.client().flushdb()
    connection, channel = broker._channel()
    channel.queue_purge(names.SCHEDULER_QUEUE)
    channel.queue_purge(TAP_QUEUE)
    connection.close()
    yield broker, store
    for server in (broker, store):
        server.container.get_wrapped_container().reload()
        if server.container.get_wrapped_container().status != "running":
            server.start()
    _clear_refuse_policy(broker)


def _clear_refuse_policy(broker: Broker) -> None:
    # Exits non-zero when the policy is not set, which is fine.
    broker.container.exec(["rabbitmqctl", "clear_policy", REFUSE_POLICY])


@pytest.fixture
def api(servers: tuple[Broker, Store]) -> Iterator[FlaskClient]:
    """The API on the test's own servers, with the publisher it really uses."""
    broker, store = servers
    publishers: list[ConfirmingPublisher] = []

    def factory() -> ConfirmingPublisher:
        publishers.append(ConfirmingPublisher(broker.url, max_backoff_s=0.2))
        return publishers[-1]

    config = Config(redis_url=store.url, rabbitmq_url=broker.url)
    yield create_app(config, publisher_factory=factory).test_client()
    for publisher in publishers:
        publisher.close()


def _submit(api: FlaskClient, body: Any = JOB, path: str = "/v1/jobs") -> Any:
    return api.post(path, json=body)


def _submitted_ids(events: list[Envelope]) -> list[list[str]]:
    assert all(event.type is EventType.JOBS_SUBMITTED for event in events)
    return [[job["job_id"] for job in event.payload["jobs"]] for event in events]


def _assert_unavailable(response: Any, server: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "unavailable"
    assert server in body["message"]


@pytest.mark.parametrize(("path", "count"), [("/submit", 1), ("/v1/jobs", 3)])
def test_broker_dying_after_the_publisher_cached_its_connection_is_503_and_keeps_nothing(
    api: FlaskClient, servers: tuple[Broker, Store], path: str, count: int
) -> None:
    broker, store = servers
    first = _submit(api)  # opens and caches the thread's publisher connection
    assert first.status_code == 201, first.get_data(as_text=True)
    accepted = first.get_json()["job"]["job_id"]

    broker.stop()
    # Watch Redis while the API serves: the records are written (the store is up), then the
    # publish fails on the cached, now dead, connection, and they are removed again.
    monitor = store.client().monitor()
    with monitor:
        body = JOB if count == 1 else [JOB] * count
        _assert_unavailable(_submit(api, body, path), "RabbitMQ")
        commands = _commands_until(monitor, "ZREM")
    written = [c for c in commands if c.startswith("HSET qgjob:job:")]
    removed = [c for c in commands if c.startswith(("DEL qgjob:job:", "UNLINK qgjob:job:"))]
    assert len(written) == count, commands
    assert len(removed) == 1, commands
    assert store.job_ids() == [accepted]

    broker.start()
    assert _submitted_ids(broker.events()) == [[accepted]]  # durable: the accepted one only


def _commands_until(monitor: Any, last: str, timeout: float = 10) -> list[str]:
    """The commands MONITOR saw, up to and including the first `last` command."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command = monitor.next_command()["command"]
        seen.append(command)
        if command.startswith(last + " "):
            return seen
    pytest.fail(f"no {last} within {timeout} s; saw {seen}")


def test_api_accepts_again_once_the_broker_is_back(
    api: FlaskClient, servers: tuple[Broker, Store]
) -> None:
    broker, store = servers
    assert _submit(api).status_code == 201
    broker.stop()
    _assert_unavailable(_submit(api), "RabbitMQ")
    broker.start()

    response = _submit(api)
    assert response.status_code == 201, response.get_data(as_text=True)
    recovered = response.get_json()["job"]["job_id"]
    assert recovered in store.job_ids()
    assert [recovered] in _submitted_ids(broker.events())


def test_redis_dying_while_serving_is_503_publishes_nothing_and_recovers(
    api: FlaskClient, servers: tuple[Broker, Store]
) -> None:
    broker, store = servers
    first = _submit(api)
    assert first.status_code == 201
    first_id = first.get_json()["job"]["job_id"]
    assert _submitted_ids(broker.events()) == [[first_id]]

    store.stop()
    _assert_unavailable(_submit(api), "Redis")
    _assert_unavailable(api.get(f"/v1/jobs/{first_id}"), "Redis")
    assert broker.events() == []  # nothing announced for a job that was never stored
    store.start()

    response = _submit(api)
    assert response.status_code == 201, response.get_data(as_text=True)
    recovered = response.get_json()["job"]["job_id"]
    assert _submitted_ids(broker.events()) == [[recovered]]
    assert api.get(f"/v1/jobs/{recovered}").status_code == 200


def test_an_event_the_broker_refuses_is_503_which_only_publisher_confirms_can_tell(
    servers: tuple[Broker, Store],
) -> None:
    """Fails if the publisher stopped waiting for confirms: the refused event would be lost
    while the API answered 201 for a job no scheduler will ever see. The API is built as
    the service builds it (create_app's own publisher, no factory given), so a default
    publisher without confirms fails it too."""
    broker, store = servers
    api = create_app(Config(redis_url=store.url, rabbitmq_url=broker.url)).test_client()
    assert _submit(api).status_code == 201  # the connection is open and cached
    accepted = store.job_ids()
    broker.events()
    broker.rabbitmqctl(
        "set_policy",
        "--apply-to",
        "queues",
        REFUSE_POLICY,
        f"^{names.SCHEDULER_QUEUE.replace('.', '[.]')}$",
        '{"max-length": 0, "overflow": "reject-publish"}',
    )
    _poll(lambda: _refusing(broker), timeout=30, what="the refuse policy to apply")
    waiting = broker.scheduler_queue_depth()  # the accepted job's event

    response = _submit(api, [JOB, JOB])
    _assert_unavailable(response, "RabbitMQ")
    assert store.job_ids() == accepted  # the refused jobs were removed
    assert broker.scheduler_queue_depth() == waiting  # the scheduler got nothing new

    _clear_refuse_policy(broker)
    response = _submit(api)
    assert response.status_code == 201, response.get_data(as_text=True)


def _refusing(broker: Broker) -> None:
    """Raise until a confirmed publish to the scheduler's queue is nacked."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish("", names.SCHEDULER_QUEUE, b"probe", mandatory=True)
        except pika.exceptions.NackError:
            return
        channel.queue_purge(names.SCHEDULER_QUEUE)
        raise AssertionError("the scheduler's queue still accepts messages")
    finally:
        connection.close()
