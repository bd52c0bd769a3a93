"""run_batch, the RQ job function: runs a batch from its JSON in the agent's context."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from qgjob_agent import runtime
from qgjob_agent.drivers.simulator import SimulatorDriver
from qgjob_agent.errors import AgentError
from qgjob_agent.heartbeat import Heartbeat
from qgjob_agent.runner import BatchRunner
from qgjob_agent.status import AgentStatus
from qgjob_contract.events import EventType
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.statuses import AgentState

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from conftest import RecordingPublisher


class NoLease:
    def renew(self) -> int:
        return 0


@pytest.fixture
def context(
    publisher: RecordingPublisher, heartbeats: RecordingPublisher, tmp_path: Path
) -> Iterator[runtime.AgentContext]:
    """The agent's context, with a heartbeat thread whose interval no test waits for."""
    driver = SimulatorDriver(
        install_s=0, test_s=0, fail_pattern="*fail*", error_pattern="", sleep=lambda _: None
    )
    status = AgentStatus("emulator-a1", "emulator")
    heartbeat = Heartbeat(
        heartbeats,  # type: ignore[arg-type]  # the outbox's put, recorded
        status,
        NoLease(),  # type: ignore[arg-type]
        interval_s=60,
        health_file=tmp_path / "alive",
    )
    context = runtime.AgentContext(BatchRunner(driver, publisher, status), heartbeat.beat_soon)
    runtime.set_context(context)
    heartbeat.start()
    _wait_for_heartbeats(heartbeats, 1)
    yield context
    heartbeat.stop()
    runtime.set_context(None)


def _wait_for_heartbeats(heartbeats: RecordingPublisher, count: int) -> dict[str, Any]:
    """The `count`-th heartbeat, polled for well under the 60 s interval."""
    deadline = time.monotonic() + 5
    while len(heartbeats.events) < count:
        assert time.monotonic() < deadline, f"only {len(heartbeats.events)} heartbeat(s) sent"
        time.sleep(0.01)
    return heartbeats.events[count - 1].payload


def _batch(batch_id: str = "b1") -> Batch:
    return Batch(
        batch_id, "emulator-a1", "emulator", "v1", "T0", [BatchJob("j1", "org", "a.js", 1)]
    )


def test_runs_the_batch_and_returns_batch_finished(
    context: runtime.AgentContext, publisher: RecordingPublisher
) -> None:
    returned = runtime.run_batch(_batch().to_json())

    assert returned == publisher.of(EventType.BATCH_FINISHED)[0].payload
    assert returned["jobs_run"] == 1


def test_a_batch_of_another_instance_returns_nothing_and_reports_nothing(
    context: runtime.AgentContext, publisher: RecordingPublisher
) -> None:
    batch = _batch()
    batch.instance_id = "a-former-instance"
    assert runtime.run_batch(batch.to_json()) == {}
    assert publisher.events == []


def test_a_malformed_batch_is_refused_and_named_in_a_heartbeat_sent_at_once(
    context: runtime.AgentContext, publisher: RecordingPublisher, heartbeats: RecordingPublisher
) -> None:
    with pytest.raises(KeyError):
        runtime.run_batch({"batch_id": "b1"})

    heartbeat = _wait_for_heartbeats(heartbeats, 2)
    assert heartbeat["state"] == AgentState.IDLE
    assert heartbeat["last_batch_id"] == "b1"
    assert publisher.events == []


def test_a_finished_batch_is_named_in_the_next_heartbeat(
    context: runtime.AgentContext, heartbeats: RecordingPublisher
) -> None:
    runtime.run_batch(_batch("b1").to_json())
    runtime.run_batch(_batch("b2").to_json())
    context.beat_soon()

    heartbeat = _wait_for_heartbeats(heartbeats, 2)
    assert heartbeat["state"] == AgentState.IDLE
    assert heartbeat["current_batch_id"] is None
    assert heartbeat["last_batch_id"] == "b2"
    assert heartbeat["jobs_run"] == 2


def test_the_function_is_the_one_the_contract_names() -> None:
    from qgjob_contract import names  # noqa: PLC0415 (kept next to the one use)

    module, _, function = names.RUN_BATCH_FUNCTION.rpartition(".")
    assert module == runtime.__name__
    assert getattr(runtime, function) is runtime.run_batch


def test_without_agent_context_it_refuses() -> None:
    with pytest.raises(AgentError, match="agent context"):
        runtime.run_batch({})
