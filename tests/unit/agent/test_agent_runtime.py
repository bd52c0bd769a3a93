"""run_batch, the RQ job function: runs a batch from its JSON in the agent's context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from qgjob_agent import runtime
from qgjob_agent.drivers.simulator import SimulatorDriver
from qgjob_agent.errors import AgentError
from qgjob_agent.runner import BatchRunner
from qgjob_agent.status import AgentStatus
from qgjob_contract.events import EventType
from qgjob_contract.records import Batch, BatchJob

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import RecordingPublisher


@pytest.fixture
def context(publisher: RecordingPublisher) -> Iterator[runtime.AgentContext]:
    driver = SimulatorDriver(
        install_s=0, test_s=0, fail_pattern="*fail*", error_pattern="", sleep=lambda _: None
    )
    runner = BatchRunner(driver, publisher, AgentStatus("emulator-a1", "emulator"))
    context = runtime.AgentContext(runner, publisher)
    runtime.set_context(context)
    yield context
    runtime.set_context(None)


def test_runs_the_batch_returns_batch_finished_and_closes_the_connection(
    context: runtime.AgentContext, publisher: RecordingPublisher
) -> None:
    batch = Batch("b1", "emulator-a1", "emulator", "v1", "T0", [BatchJob("j1", "org", "a.js", 1)])

    returned = runtime.run_batch(batch.to_json())

    assert returned == publisher.of(EventType.BATCH_FINISHED)[0].payload
    assert returned["jobs_run"] == 1
    assert publisher.closed == 1


def test_the_function_is_the_one_the_contract_names() -> None:
    from qgjob_contract import names  # noqa: PLC0415 (kept next to the one use)

    module, _, function = names.RUN_BATCH_FUNCTION.rpartition(".")
    assert module == runtime.__name__
    assert getattr(runtime, function) is runtime.run_batch


def test_without_agent_context_it_refuses() -> None:
    with pytest.raises(AgentError, match="agent context"):
        runtime.run_batch({})


def test_a_malformed_batch_is_refused(context: runtime.AgentContext) -> None:
    with pytest.raises(KeyError):
        runtime.run_batch({"batch_id": "b1"})
