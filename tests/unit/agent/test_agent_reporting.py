"""A heartbeat being published holds up only the batch.finished that must come after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from qgjob_agent.drivers.base import JobRun, RunOutcome
from qgjob_agent.heartbeat import Heartbeat
from qgjob_agent.runner import BatchRunner
from qgjob_agent.status import AgentStatus
from qgjob_contract.events import Envelope, EventType
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.statuses import AgentState, JobStatus

TIMEOUT_S = 5.0


class Broker:
    """What the broker confirmed, from every publisher, in the order it confirmed it."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self._lock = threading.Lock()

    def confirm(self, envelope: Envelope) -> None:
        with self._lock:
            self.events.append(envelope)

    def types(self) -> list[EventType]:
        with self._lock:
            return [event.type for event in self.events]


class GatedPublisher:
    """Confirms once `gate` is open; `waiting` is set while a publish waits for it."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def publish(self, envelope: Envelope) -> None:
        self.waiting.set()
        assert self.gate.wait(TIMEOUT_S), "the test never opened the gate"
        self.broker.confirm(envelope)

    def close(self) -> None:
        pass


class InstantPublisher:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def publish(self, envelope: Envelope) -> None:
        self.broker.confirm(envelope)

    def close(self) -> None:
        pass


class HeldDriver:
    """A test that runs until the test lets it end."""

    name = "held"
    simulated = False

    def __init__(self) -> None:
        self.running = threading.Event()
        self.may_end = threading.Event()

    def install(self, app_version_id: str, target: str) -> None:
        pass

    def run_test(self, job: JobRun) -> RunOutcome:
        self.running.set()
        assert self.may_end.wait(TIMEOUT_S), "the test never let the job end"
        return RunOutcome(JobStatus.PASSED, 0.1, "ok")


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _holds_for(condition: Callable[[], bool], seconds: float) -> bool:
    """True when `condition` stays true for `seconds` (checks that something does NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.01)
    return True


def test_a_slow_heartbeat_delays_only_the_batch_finished_which_then_follows_it(
    tmp_path: Path,
) -> None:
    broker = Broker()
    status = AgentStatus("emulator-a1", "emulator")
    driver = HeldDriver()
    runner = BatchRunner(driver, InstantPublisher(broker), status, now=lambda: "T")
    heartbeats = GatedPublisher(broker)  # a broker that takes its time to answer
    heartbeat = Heartbeat(heartbeats, status, interval_s=60, health_file=tmp_path / "alive")
    batch = Batch("b1", "emulator-a1", "emulator", "v1", "T0", [BatchJob("j1", "org", "a.js", 1)])

    worker = threading.Thread(target=runner.run, args=(batch,))
    worker.start()
    assert driver.running.wait(TIMEOUT_S)
    beating = threading.Thread(target=heartbeat.beat)  # its snapshot says busy with b1
    beating.start()
    assert heartbeats.waiting.wait(TIMEOUT_S)

    driver.may_end.set()
    # The worker thread records and reports the job while the heartbeat is still in flight...
    _wait_until(lambda: EventType.JOB_FINISHED in broker.types(), "job.finished")
    # ...but batch.finished, which makes the agent idle, waits for the busy heartbeat.
    assert _holds_for(lambda: EventType.BATCH_FINISHED not in broker.types(), 0.3)

    heartbeats.gate.set()
    worker.join(TIMEOUT_S)
    beating.join(TIMEOUT_S)

    assert broker.types() == [
        EventType.JOB_STARTED,
        EventType.JOB_FINISHED,
        EventType.AGENT_HEARTBEAT,
        EventType.BATCH_FINISHED,
    ]
    busy, finished = broker.events[2].payload, broker.events[3].payload
    assert (busy["state"], busy["current_batch_id"]) == (AgentState.BUSY, "b1")
    assert finished["state"] == AgentState.IDLE
