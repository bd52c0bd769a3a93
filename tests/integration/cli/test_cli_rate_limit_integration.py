"""The CLI against the real API over HTTP (werkzeug's server, real Redis and RabbitMQ) with a
tight rate limit: a 429 is waited out as its Retry-After says and the request sent again;
past the bounded wait (QGJOB_RATE_LIMIT_WAIT_S) the command prints one line and exits 10."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import redis
import requests
from werkzeug.serving import make_server

from qgjob_api.app import create_app
from qgjob_api.config import Config
from qgjob_cli.client import Client
from qgjob_cli.exit_codes import ExitCode
from qgjob_contract.amqp import ConfirmingPublisher


def _serve(config: Config) -> Iterator[str]:
    app = create_app(config, publisher_factory=lambda: ConfirmingPublisher(config.rabbitmq_url))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def api_url(
    request: pytest.FixtureRequest,
    redis_url: str,
    rabbitmq_url: str,
    redis_client: redis.Redis,
    amqp_channel: pika.adapters.blocking_connection.BlockingChannel,
) -> Iterator[str]:
    """The API with the read limit the test names (`@pytest.mark.parametrize` indirect)."""
    config = Config(redis_url=redis_url, rabbitmq_url=rabbitmq_url, rate_limit_read=request.param)
    yield from _serve(config)


def _exhaust(api_url: str) -> int:
    """Spend the read budget; the Retry-After of the 429 that says it is spent."""
    for _ in range(10):
        response = requests.get(api_url + "/v1/jobs", timeout=10)
        if response.status_code == 429:
            assert response.json()["error"] == "too_many_requests"
            return int(response.headers["Retry-After"])
        assert response.status_code == 200, response.text
    raise AssertionError("the read limit was never reached")


@pytest.mark.parametrize("api_url", ["1/3second"], indirect=True)
def test_a_429_is_waited_out_as_retry_after_says(api_url: str) -> None:
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)  # the real wait: the server's window must move on

    client = Client(api_url, sleep=sleep, rate_limit_wait_s=30)
    retry_after = _exhaust(api_url)
    page = client.list_jobs()  # 429 first, then the answer once the window has moved on
    assert page.jobs == []
    assert pauses, "the client never met the 429"
    assert 1 <= pauses[0] <= retry_after  # what the server's Retry-After said
    assert sum(pauses) <= 30


@pytest.mark.parametrize("api_url", ["1/hour"], indirect=True)
def test_past_the_bounded_wait_the_cli_prints_one_line_and_exits_10(api_url: str) -> None:
    retry_after = _exhaust(api_url)
    assert retry_after > 5
    qgjob = Path(sys.executable).with_name("qgjob")
    env = {**os.environ, "QGJOB_API_URL": api_url, "QGJOB_RATE_LIMIT_WAIT_S": "5"}
    done = subprocess.run(
        [str(qgjob), "list"], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == ExitCode.RATE_LIMITED == 10, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("qgjob: error: rate limited")
    assert "429" in lines[0]
    assert done.stdout == ""
