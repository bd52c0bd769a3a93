"""Heartbeats (lease renewed, report put; at start, periodic, offline when stopping and at
exit; a failed renewal retried), the outbox publisher's single connection attempt, and the
healthcheck."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from qgjob_agent.heartbeat import Heartbeat
from qgjob_agent.publisher import outbox_publisher
from qgjob_agent.status import AgentStatus
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import EventType, make_event
from qgjob_contract.statuses import AgentState

if TYPE_CHECKING:
    from conftest import RecordingPublisher


class FakeLease:
    """Counts renewals; raises a Redis error while `failing`."""

    def __init__(self) -> None:
        self.renewals = 0
        self.failing = False

    def renew(self) -> int:
        if self.failing:
            raise redis.ConnectionError("Redis restarting")
        self.renewals += 1
        return self.renewals


def _heartbeat(
    publisher: RecordingPublisher,
    health_file: Path,
    interval_s: float,
    lease: FakeLease | None = None,
) -> Heartbeat:
    status = AgentStatus("emulator-a1", "emulator", instance_id="i1")
    status.record_install(("org", "v1"))
    return Heartbeat(
        publisher,  # type: ignore[arg-type]  # the outbox's put, recorded
        status,
        lease or FakeLease(),  # type: ignore[arg-type]
        interval_s=interval_s,
        health_file=health_file,
        now=lambda: "T",
    )


def test_beats_at_start_and_says_offline_at_stop(
    publisher: RecordingPublisher, tmp_path: Path
) -> None:
    health_file = tmp_path / "alive"
    heartbeat = _heartbeat(publisher, health_file, interval_s=60)
    heartbeat.start()
    deadline = time.monotonic() + 5
    while not health_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert health_file.exists()

    heartbeat.stop()

    assert publisher.types() == [EventType.AGENT_HEARTBEAT, EventType.AGENT_HEARTBEAT]
    first, last = (event.payload for event in publisher.events)
    assert first == {
        "agent_id": "emulator-a1",
        "instance_id": "i1",
        "seq": 1,
        "target": "emulator",
        "state": "idle",
        "installed_app_version": "v1",
        "installed_org_id": "org",
        "installs": 1,
        "jobs_run": 0,
        "current_batch_id": None,
        "last_batch_id": None,
        "sent_at": "T",
    }
    assert last["state"] == AgentState.OFFLINE
    assert last["seq"] == 2
    assert not health_file.exists()


def test_beats_periodically(publisher: RecordingPublisher, tmp_path: Path) -> None:
    heartbeat = _heartbeat(publisher, tmp_path / "alive", interval_s=0.05)
    heartbeat.start()
    deadline = time.monotonic() + 5
    while len(publisher.events) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    heartbeat.stop()
    assert len(publisher.events) >= 5  # 4 periodic, then offline


def test_beat_soon_sends_the_next_heartbeat_without_waiting_for_the_interval(
    publisher: RecordingPublisher, tmp_path: Path
) -> None:
    heartbeat = _heartbeat(publisher, tmp_path / "alive", interval_s=60)
    heartbeat.start()
    try:
        _wait_until(lambda: len(publisher.events) == 1)
        heartbeat.beat_soon()
        _wait_until(lambda: len(publisher.events) == 2)
    finally:
        heartbeat.stop()
    assert [event.payload["state"] for event in publisher.events] == ["idle", "idle", "offline"]


def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_failed_lease_renewal_leaves_the_agent_unhealthy_until_the_next_one_succeeds(
    publisher: RecordingPublisher, tmp_path: Path
) -> None:
    health_file = tmp_path / "alive"
    lease = FakeLease()
    heartbeat = _heartbeat(publisher, health_file, interval_s=60, lease=lease)
    lease.failing = True
    heartbeat.beat()
    assert not health_file.exists()
    assert len(publisher.events) == 1  # the report still goes to the outbox

    lease.failing = False
    heartbeat.beat()
    assert health_file.exists()
    assert lease.renewals == 1


def test_healthcheck_command_exit_code(tmp_path: Path) -> None:
    health_file = tmp_path / "alive"

    def healthcheck() -> int:
        env = {**os.environ, "AGENT_HEALTH_FILE": str(health_file)}
        command = [sys.executable, "-m", "qgjob_agent.healthcheck"]
        return subprocess.run(command, env=env, check=False, timeout=30).returncode

    assert healthcheck() == 1
    health_file.touch()
    assert healthcheck() == 0
    old = time.time() - 31
    os.utime(health_file, (old, old))
    assert healthcheck() == 1


def test_once_stopping_every_heartbeat_says_offline_and_the_agent_stays_healthy(
    publisher: RecordingPublisher, tmp_path: Path
) -> None:
    health_file = tmp_path / "alive"
    heartbeat = _heartbeat(publisher, health_file, interval_s=60)
    status = heartbeat._status
    status.begin_batch("b1")
    heartbeat.beat()
    health_file.unlink()

    status.stop()  # a warm stop while the batch runs
    heartbeat.beat()

    busy, stopping = (event.payload for event in publisher.events)
    assert busy["state"] == AgentState.BUSY
    assert stopping["state"] == AgentState.OFFLINE
    assert stopping["current_batch_id"] == "b1"  # the batch still runs; the scheduler keeps it
    assert health_file.exists()  # the process still works; only the final beat removes it


def test_the_outbox_publisher_tries_to_connect_once_whatever_the_url_says() -> None:
    # Nothing listens on `port`: each connection attempt is refused at once, so the time a
    # publish takes is the URL's retry_delay times its connection_attempts, minus one.
    port = _closed_port()
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F?connection_attempts=10&retry_delay=2"
    publisher = outbox_publisher(url)
    status = AgentStatus("emulator-a1", "emulator")
    started = time.monotonic()

    with pytest.raises(PublishError):
        publisher.publish(make_event(EventType.AGENT_HEARTBEAT, status.heartbeat("T")))

    assert time.monotonic() - started < 1.5


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
