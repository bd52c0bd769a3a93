"""The scheduler as a process: survives an unreachable or dropped broker, stops on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TcpProxy, free_port

from .conftest import (
    World,
    running_scheduler,
    scheduler_config,
    via_proxy,
    wait_until,
)


def test_consumer_waits_for_the_broker_and_reconnects_when_it_drops(
    world: World,
    redis_url: str,
    rabbitmq_url: str,
    health_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="qgjob_scheduler.consumer")
    port = free_port()
    proxy_url, broker = via_proxy(rabbitmq_url, port)
    config = scheduler_config(redis_url, proxy_url, health_file)

    with running_scheduler(world, config):
        wait_until(
            lambda: any("RabbitMQ unreachable" in r.getMessage() for r in caplog.records),
            "a failed connection attempt",
        )
        assert not health_file.exists()

        proxy = TcpProxy(port, broker)
        try:
            first = world.submit("v1")
            wait_until(lambda: world.group("v1") == [first], "first job grouped")
            wait_until(health_file.exists, "health file touched")
            connections = proxy.accepted

            proxy.drop()
            second = world.submit("v1")
            wait_until(lambda: world.group("v1") == [first, second], "second job grouped")
            assert proxy.accepted > connections
        finally:
            proxy.close()


def test_process_touches_health_file_and_stops_on_sigterm(
    world: World, redis_url: str, rabbitmq_url: str, health_file: Path
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RABBITMQ_URL": rabbitmq_url,
        "SCHEDULER_TICK_S": "0.2",
        "SCHEDULER_HEALTH_FILE": str(health_file),
    }
    process = subprocess.Popen([sys.executable, "-m", "qgjob_scheduler"], env=env)
    try:
        wait_until(health_file.exists, "health file touched", timeout=30)
        job_id = world.submit("v1")
        wait_until(lambda: world.group("v1") == [job_id], "job grouped by the process")
        healthcheck = subprocess.run(
            [sys.executable, "-m", "qgjob_scheduler.healthcheck"], env=env, check=False
        )
        assert healthcheck.returncode == 0

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
