"""The pure parts of the planner's snapshot: priorities recovered from group scores, which
agents are live, the build a free agent shows."""

from __future__ import annotations

import pytest

from qgjob_contract.records import Agent, Lease
from qgjob_contract.statuses import AgentState
from qgjob_scheduler.grouping import PRIORITY_WEIGHT, group_score
from qgjob_scheduler.snapshot import _installed, is_live, priority_of


@pytest.mark.parametrize("priority", [1, 2, 5, 9, 10])
@pytest.mark.parametrize("arrival", [1, 2, 1000, 10**9, PRIORITY_WEIGHT - 1])
def test_priority_is_recovered_from_the_group_score(priority: int, arrival: int) -> None:
    assert priority_of(float(group_score(priority, arrival))) == priority


# --- which agents the planner sees ------------------------------------------------------

NOW_MS = 1_000_000
TIMEOUT_S = 15.0


def _agent(**changes: object) -> Agent:
    fields: dict[str, object] = {
        "agent_id": "emulator-1",
        "target": "emulator",
        "state": AgentState.IDLE.value,
        "instance_id": "instance-a",
    }
    return Agent(**{**fields, **changes})  # type: ignore[arg-type]


def _lease(*, renewed_ms: int = NOW_MS, instance_id: str = "instance-a") -> Lease:
    return Lease("emulator-1", instance_id, renewed_ms, started_ms=0)


def test_an_agent_with_a_fresh_lease_of_its_own_instance_is_live() -> None:
    assert is_live(_agent(), _lease(), "emulator", NOW_MS, TIMEOUT_S)
    # busy agents are live too: the planner counts when they will be free
    assert is_live(_agent(state=AgentState.BUSY.value), _lease(), "emulator", NOW_MS, TIMEOUT_S)


def test_a_lease_renewed_exactly_the_timeout_ago_still_counts() -> None:
    edge = NOW_MS - int(TIMEOUT_S * 1000)
    assert is_live(_agent(), _lease(renewed_ms=edge), "emulator", NOW_MS, TIMEOUT_S)
    assert not is_live(_agent(), _lease(renewed_ms=edge - 1), "emulator", NOW_MS, TIMEOUT_S)


@pytest.mark.parametrize(
    ("agent", "lease", "target"),
    [
        pytest.param(_agent(), _lease(), "device", id="another-target"),
        pytest.param(_agent(state=AgentState.OFFLINE.value), _lease(), "emulator", id="offline"),
        pytest.param(_agent(), None, "emulator", id="never-renewed"),
        pytest.param(_agent(), _lease(renewed_ms=NOW_MS - 60_000), "emulator", id="lease-expired"),
        pytest.param(
            _agent(), _lease(instance_id="instance-b"), "emulator", id="restarted-new-instance"
        ),
    ],
)
def test_no_batch_is_planned_for_an_agent_that_is_not_live(
    agent: Agent, lease: Lease | None, target: str
) -> None:
    """Another target's agent, a stopped one, one whose lease lapsed, or a record left by an
    earlier instance (the agent restarted): none may be given a batch."""
    assert not is_live(agent, lease, target, NOW_MS, TIMEOUT_S)


def test_a_free_agent_shows_its_installed_build_only_when_org_and_version_are_known() -> None:
    """The planner treats an agent as warm for a build only if it knows both halves: an
    agent with a version but no org (a record from before builds had orgs) pays an install."""
    assert _installed(_agent(installed_org_id="org", installed_app_version="v1")) == ("org", "v1")
    assert _installed(_agent(installed_org_id="org")) is None
    assert _installed(_agent(installed_app_version="v1")) is None
    assert _installed(_agent()) is None
