"""Real RabbitMQ and Redis for integration tests, started once per session with testcontainers.

Each test gets a clean Redis database and a freshly declared, purged topology.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

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


class EventTap:
    """Every event published to the exchange, in the order the broker routed them.

    An exclusive queue of the test's own, bound to every routing key: it observes the real
    traffic without taking anything from the scheduler's queue (whose single active consumer
    forbids basic.get).
    """

    def __init__(self, channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
        self.channel = channel
        declared = channel.queue_declare("", exclusive=True, auto_delete=True)
        self.queue = declared.method.queue
        channel.queue_bind(self.queue, names.EXCHANGE, routing_key="#")

    def drain(self) -> list[tuple[str, bytes, pika.BasicProperties]]:
        """(routing key, body, properties) of each event delivered since the last call."""
        events = []
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return events
            events.append((method.routing_key, body, properties))


@pytest.fixture
def event_tap(
    amqp_channel: pika.adapters.blocking_connection.BlockingChannel,
) -> EventTap:
    return EventTap(amqp_channel)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """Forwards 127.0.0.1:`port` to an upstream; `drop()` cuts every open connection, and
    between `refuse()` and `accept()` every new one is closed at once (the upstream looks
    unreachable).

    `accepted` counts the connections it has accepted: it grows when a client reconnects.
    """

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self._upstream = upstream
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._server.settimeout(0.2)
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._refusing = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            with self._lock:  # refuse() drops under the same lock: no connection slips by
                if self._refusing.is_set():
                    client.close()
                    server.close()
                    continue
                self._sockets += [client, server]
                self.accepted += 1
            threading.Thread(target=_pump, args=(client, server), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    def drop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def refuse(self) -> None:
        """Cut every connection, and close new ones at once until `accept()`."""
        with self._lock:
            self._refusing.set()
        self.drop()

    def accept(self) -> None:
        self._refusing.clear()

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        self.drop()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class ProxiedBroker:
    url: str  # RABBITMQ_URL that reaches the broker through `proxy`, same options
    proxy: TcpProxy


@pytest.fixture
def rabbitmq_proxy(rabbitmq_url: str) -> Iterator[ProxiedBroker]:
    """The session's RabbitMQ behind a TcpProxy the test controls (closed at the end)."""
    parts = urlsplit(rabbitmq_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = TcpProxy(free_port(), (parts.hostname, parts.port))
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    try:
        yield ProxiedBroker(parts._replace(netloc=netloc).geturl(), proxy)
    finally:
        proxy.close()
