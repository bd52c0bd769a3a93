"""Which agents may take a batch now: judged on the lease, on Redis time."""

from __future__ import annotations

from qgjob_contract.records import Agent, Lease
from qgjob_contract.statuses import AgentState
from qgjob_scheduler.dispatch import is_free

NOW_MS = 1_800_000_000_000
TIMEOUT_S = 10


def agent(**overrides: object) -> Agent:
    fields: dict[str, object] = {
        "agent_id": "emu-1",
        "target": "emulator",
        "state": AgentState.IDLE.value,
        "instance_id": "i1",
    }
    fields.update(overrides)
    return Agent(**fields)  # type: ignore[arg-type]


def lease(age_ms: int = 2000, instance_id: str = "i1") -> Lease:
    return Lease("emu-1", instance_id, NOW_MS - age_ms, NOW_MS - 60_000)


def test_idle_agent_with_a_fresh_lease_is_free() -> None:
    assert is_free(agent(), lease(), "emulator", NOW_MS, TIMEOUT_S)


def test_agent_of_another_target_is_not_free_for_this_one() -> None:
    assert not is_free(agent(), lease(), "device", NOW_MS, TIMEOUT_S)


def test_agent_whose_lease_is_older_than_the_timeout_is_not_free() -> None:
    assert is_free(agent(), lease(age_ms=10_000), "emulator", NOW_MS, TIMEOUT_S)
    assert not is_free(agent(), lease(age_ms=10_001), "emulator", NOW_MS, TIMEOUT_S)


def test_agent_without_a_lease_is_not_free() -> None:
    assert not is_free(agent(), None, "emulator", NOW_MS, TIMEOUT_S)


def test_a_restarted_agent_is_free_only_once_its_new_instance_has_reported() -> None:
    new_lease = lease(instance_id="i2")
    assert not is_free(agent(instance_id="i1"), new_lease, "emulator", NOW_MS, TIMEOUT_S)
    assert is_free(agent(instance_id="i2"), new_lease, "emulator", NOW_MS, TIMEOUT_S)


def test_offline_agent_is_not_free() -> None:
    assert not is_free(agent(state=AgentState.OFFLINE.value), lease(), "emulator", NOW_MS, 10)


def test_agent_with_an_outstanding_batch_is_not_free_whatever_it_reports() -> None:
    assert not is_free(agent(current_batch_id="b1"), lease(), "emulator", NOW_MS, TIMEOUT_S)


def test_busy_state_alone_does_not_block_an_agent_the_scheduler_gave_nothing() -> None:
    assert is_free(agent(state=AgentState.BUSY.value), lease(), "emulator", NOW_MS, TIMEOUT_S)
