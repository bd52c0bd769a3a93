"""The pure parts of the planner's snapshot: priorities recovered from group scores, which
agents are live, the build a free agent shows."""

from __future__ import annotations

import dataclasses

import pytest

from qgjob_contract.records import Agent, Lease
from qgjob_contract.statuses import AgentState
from qgjob_scheduler.grouping import PRIORITY_WEIGHT, group_score
from qgjob_scheduler.planning import DEFAULT_AGING_S, DEFAULT_INSTALL_S, DEFAULT_TEST_S, qgjob
from qgjob_scheduler.snapshot import Planner, _installed, is_live, priority_of, waits


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


# --- edges that `make mutation` found -----------------------------------------------------


def test_priority_is_recovered_at_the_last_arrival_of_a_priority_step() -> None:
    """Arrival numbers run from 1 up to PRIORITY_WEIGHT: the largest still gives the
    job's own priority, not the next one down."""
    for priority in (1, 5, 10):
        assert priority_of(float(group_score(priority, PRIORITY_WEIGHT))) == priority


@pytest.mark.parametrize("other", ["device", "browserstack"])
def test_an_agent_of_another_target_is_never_live_for_this_one(other: str) -> None:
    assert not is_live(_agent(target=other), _lease(), "emulator", NOW_MS, TIMEOUT_S)


def test_a_target_read_from_redis_matches_by_value() -> None:
    """Names read from Redis are new strings, not the literals of the code."""
    target = "".join(["emu", "lator"])
    instance = "".join(["instance", "-a"])
    agent = _agent(target="".join(["emu", "lator"]), instance_id=instance)
    assert is_live(
        agent, _lease(instance_id="".join(["instance", "-a"])), target, NOW_MS, TIMEOUT_S
    )


def test_a_lease_of_another_instance_never_makes_the_record_live() -> None:
    """Whichever instance id sorts first, a record of instance b with the lease of
    instance a (or the reverse) is a restarted agent: not live."""
    agent_b = _agent(instance_id="instance-b")
    assert not is_live(agent_b, _lease(instance_id="instance-a"), "emulator", NOW_MS, TIMEOUT_S)


def test_the_planner_settings_default_to_the_planning_defaults() -> None:
    planner = Planner(qgjob)
    assert (planner.default_test_s, planner.default_install_s, planner.aging_s) == (
        DEFAULT_TEST_S,
        DEFAULT_INSTALL_S,
        DEFAULT_AGING_S,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        planner.aging_s = 1.0  # type: ignore[misc]


# --- a retried job's wait: its backoff, and the agent it avoids ---------------------------


@pytest.mark.parametrize(
    ("not_before_ms", "waiting"),
    [(NOW_MS + 1, "backoff"), (NOW_MS, None), (NOW_MS - 1, None), (None, None), ("", None)],
)
def test_a_retried_job_waits_out_its_backoff_until_its_not_before_time(
    not_before_ms: int | str | None, waiting: str | None
) -> None:
    # Redis gives strings; a job never retried has no such field.
    raw = None if not_before_ms is None else str(not_before_ms)
    assert waits([raw, None, None], NOW_MS) == waiting
    # Its avoided agent (none here) is another question: asked with `avoid`.
    assert waits([raw, None, None], NOW_MS, avoid=True) is None


@pytest.mark.parametrize(
    ("agent", "until_ms", "avoided"),
    [
        ("emulator-1", NOW_MS + 1, "emulator-1"),
        ("emulator-1", NOW_MS, None),
        ("emulator-1", NOW_MS - 1, None),
        ("emulator-1", None, None),
        (None, NOW_MS + 1, None),
        ("", NOW_MS + 1, None),
    ],
)
def test_a_retried_job_avoids_the_agent_it_failed_on_until_the_avoid_window_ends(
    agent: str | None, until_ms: int | None, avoided: str | None
) -> None:
    until = None if until_ms is None else str(until_ms)
    # The backoff is over (not_before in the past): only the avoid window is asked.
    fields = [str(NOW_MS - 10), agent, until]
    assert waits(fields, NOW_MS, avoid=True) == avoided
    assert waits(fields, NOW_MS) is None
