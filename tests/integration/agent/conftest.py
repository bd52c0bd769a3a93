"""Fixtures for the agent's integration tests: a real agent process, and its events."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from pika.adapters.blocking_connection import BlockingChannel

from qgjob_contract.events import Envelope, EventType, decode
from tests.integration.conftest import EventTap

# Fast simulator timings so a batch takes well under a second.
FAST_AGENT_ENV = {
    "SIM_INSTALL_SECONDS": "0.3",
    "SIM_TEST_SECONDS": "0.05",
    "AGENT_HEARTBEAT_S": "0.5",
    "LOG_LEVEL": "DEBUG",
}


@dataclass
class AgentProcess:
    """The real `qgjob-agent-emulator` console script, run as a subprocess."""

    agent_id: str
    health_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM (a warm stop); SIGKILL if it does not exit in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@pytest.fixture
def start_agent(
    redis_url: str,
    rabbitmq_url: str,
    redis_client: redis.Redis,
    amqp_channel: BlockingChannel,
    tmp_path: Path,
) -> Iterator[Callable[..., AgentProcess]]:
    """Start agents on a flushed Redis and purged queues; every one is stopped at the end."""
    started: list[AgentProcess] = []
    script = Path(sys.executable).with_name("qgjob-agent-emulator")

    def start(**env: str) -> AgentProcess:
        agent_id = env.pop("AGENT_ID", f"emulator-test-{uuid.uuid4().hex[:8]}")
        health_file = tmp_path / f"{agent_id}.alive"
        log_file = tmp_path / f"{agent_id}.log"
        full_env = {
            **os.environ,
            **FAST_AGENT_ENV,
            "AGENT_ID": agent_id,
            "REDIS_URL": redis_url,
            "RABBITMQ_URL": rabbitmq_url,
            "AGENT_HEALTH_FILE": str(health_file),
            **env,
        }
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [str(script)], env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
        agent = AgentProcess(agent_id, health_file, log_file, process)
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            agent.stop()


@dataclass
class EventLog:
    """Every event the broker routed so far, in the broker's order (see EventTap)."""

    tap: EventTap
    events: list[Envelope] = field(default_factory=list)

    def drain(self) -> None:
        self.events += [decode(body) for _, body, _ in self.tap.drain()]

    def wait_for(self, predicate: Callable[[Envelope], bool], timeout_s: float = 20.0) -> Envelope:
        """The first event matching `predicate`, polling until the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.drain()
            for event in self.events:
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                seen = [(e.type.value, e.payload.get("state")) for e in self.events]
                raise AssertionError(f"no matching event within {timeout_s} s; seen: {seen}")
            time.sleep(0.05)

    def of(self, *types: EventType) -> list[Envelope]:
        return [event for event in self.events if event.type in types]


@pytest.fixture
def event_log(event_tap: EventTap) -> EventLog:
    return EventLog(event_tap)


# A test program that runs until its gate file exists (the command driver runs it per test).
_HELD_TEST = """\
import pathlib, sys, time
while not pathlib.Path(sys.argv[1]).exists():
    time.sleep(0.02)
"""


@dataclass(frozen=True)
class HeldTests:
    """AGENT_COMMAND for tests that run until `release()`: the test decides when they end."""

    command: str
    gate: Path

    def release(self) -> None:
        self.gate.touch()


@pytest.fixture
def held_tests(tmp_path: Path) -> HeldTests:
    program = tmp_path / "held_test.py"
    program.write_text(_HELD_TEST)
    gate = tmp_path / "gate"
    command = shlex.join([sys.executable, str(program), str(gate)])
    return HeldTests(command, gate)
