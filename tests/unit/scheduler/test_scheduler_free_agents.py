"""Which agents may take a batch now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qgjob_contract.records import Agent
from qgjob_contract.statuses import AgentState
from qgjob_scheduler.dispatch import is_free

NOW = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


def agent(**overrides: object) -> Agent:
    fields: dict[str, object] = {
        "agent_id": "emu-1",
        "target": "emulator",
        "state": AgentState.IDLE.value,
        "last_heartbeat": (NOW - timedelta(seconds=2)).isoformat(),
    }
    fields.update(overrides)
    return Agent(**fields)  # type: ignore[arg-type]


def test_idle_agent_with_a_fresh_heartbeat_is_free() -> None:
    assert is_free(agent(), "emulator", NOW, 10)


def test_agent_of_another_target_is_not_free_for_this_one() -> None:
    assert not is_free(agent(), "device", NOW, 10)


def test_agent_silent_for_longer_than_the_timeout_is_not_free() -> None:
    assert is_free(
        agent(last_heartbeat=(NOW - timedelta(seconds=10)).isoformat()), "emulator", NOW, 10
    )
    assert not is_free(
        agent(last_heartbeat=(NOW - timedelta(seconds=10.5)).isoformat()), "emulator", NOW, 10
    )


def test_agent_never_heard_from_or_with_garbage_heartbeat_is_not_free() -> None:
    assert not is_free(agent(last_heartbeat=None), "emulator", NOW, 10)
    assert not is_free(agent(last_heartbeat="yesterday"), "emulator", NOW, 10)


def test_offline_agent_is_not_free() -> None:
    assert not is_free(agent(state=AgentState.OFFLINE.value), "emulator", NOW, 10)


def test_agent_with_an_outstanding_batch_is_not_free_whatever_it_reports() -> None:
    assert not is_free(agent(current_batch_id="b1"), "emulator", NOW, 10)


def test_busy_state_alone_does_not_block_an_agent_the_scheduler_gave_nothing() -> None:
    assert is_free(agent(state=AgentState.BUSY.value), "emulator", NOW, 10)


def test_naive_heartbeat_time_is_read_as_utc() -> None:
    naive = (NOW - timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    assert is_free(agent(last_heartbeat=naive), "emulator", NOW, 10)
