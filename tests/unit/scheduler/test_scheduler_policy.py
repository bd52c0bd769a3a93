"""The assignment policy on hand-made situations: warm affinity, oldest first, splitting."""

from __future__ import annotations

import random

import pytest

from qgjob_scheduler.policy import Assignment, FreeAgent, PendingGroup, assign


def agent(agent_id: str, installed: str | None = None) -> FreeAgent:
    return FreeAgent(agent_id, installed)


def group(version: str, size: int, arrival: float) -> PendingGroup:
    return PendingGroup(version, size, arrival)


def test_nothing_to_assign_without_agents_or_groups() -> None:
    assert assign([], [group("v1", 3, 1)], 10) == []
    assert assign([agent("a")], [], 10) == []
    assert assign([agent("a")], [group("v1", 0, 1)], 10) == []


def test_cold_agent_takes_the_group_waiting_longest() -> None:
    groups = [group("new", 2, 300), group("old", 2, 100), group("mid", 2, 200)]
    assert assign([agent("a")], groups, 10) == [Assignment("a", "old", 2)]


def test_warm_agent_takes_its_installed_version_over_an_older_group() -> None:
    groups = [group("old", 4, 100), group("v2", 3, 500)]
    assert assign([agent("a", installed="v2")], groups, 10) == [Assignment("a", "v2", 3)]


def test_agent_whose_installed_version_has_no_pending_jobs_takes_the_oldest() -> None:
    groups = [group("new", 1, 200), group("old", 1, 100), group("v9", 0, 50)]
    assert assign([agent("a", installed="v9")], groups, 10) == [Assignment("a", "old", 1)]


def test_warm_agent_is_served_before_a_cold_agent_listed_first() -> None:
    # "old" fits in one batch: the warm agent gets it, the cold one moves on to "new".
    groups = [group("old", 5, 100), group("new", 2, 200)]
    result = assign([agent("cold"), agent("warm", installed="old")], groups, 10)
    assert sorted(result, key=lambda a: a.agent_id) == [
        Assignment("cold", "new", 2),
        Assignment("warm", "old", 5),
    ]


def test_group_that_fits_in_one_batch_is_not_split() -> None:
    groups = [group("x", 10, 100), group("y", 3, 200)]
    result = assign([agent("a"), agent("b")], groups, 10)
    assert result == [Assignment("a", "x", 10), Assignment("b", "y", 3)]


def test_two_agents_warm_on_the_same_small_group_do_not_split_it() -> None:
    groups = [group("x", 3, 100), group("y", 4, 200)]
    result = assign([agent("a", "x"), agent("b", "x")], groups, 10)
    assert result == [Assignment("a", "x", 3), Assignment("b", "y", 4)]


def test_large_group_is_split_over_free_agents_evenly_within_the_cap() -> None:
    result = assign([agent("a"), agent("b"), agent("c")], [group("x", 25, 100)], 10)
    assert result == [Assignment("a", "x", 9), Assignment("b", "x", 8), Assignment("c", "x", 8)]


def test_split_just_above_the_cap_gives_two_even_batches() -> None:
    result = assign([agent("a"), agent("b")], [group("x", 12, 100)], 10)
    assert result == [Assignment("a", "x", 6), Assignment("b", "x", 6)]


def test_group_larger_than_all_agents_can_take_leaves_the_rest_pending() -> None:
    result = assign([agent("a"), agent("b")], [group("x", 50, 100)], 10)
    assert result == [Assignment("a", "x", 10), Assignment("b", "x", 10)]


def test_once_a_group_is_fully_assigned_next_agents_move_on() -> None:
    groups = [group("x", 15, 100), group("y", 2, 200)]
    result = assign([agent("a"), agent("b"), agent("c"), agent("d")], groups, 10)
    assert result == [
        Assignment("a", "x", 8),
        Assignment("b", "x", 7),
        Assignment("c", "y", 2),
    ]


def test_more_agents_than_work_leaves_agents_without_assignment() -> None:
    assert assign([agent("a"), agent("b"), agent("c")], [group("x", 1, 100)], 10) == [
        Assignment("a", "x", 1)
    ]


def test_equal_arrival_is_broken_by_build() -> None:
    groups = [group("b", 1, 100), group("a", 1, 100)]
    assert assign([agent("z")], groups, 10) == [Assignment("z", "a", 1)]


def test_batch_max_of_one_gives_one_job_per_agent() -> None:
    result = assign([agent("a"), agent("b")], [group("x", 5, 100)], 1)
    assert result == [Assignment("a", "x", 1), Assignment("b", "x", 1)]


def test_batch_max_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_max"):
        assign([agent("a")], [group("x", 1, 1)], 0)


@pytest.mark.parametrize("seed", range(300))
def test_invariants_on_random_situations(seed: int) -> None:
    rng = random.Random(seed)
    versions = [f"v{i}" for i in range(rng.randint(0, 5))]
    groups = [group(v, rng.randint(0, 30), rng.randint(0, 5)) for v in versions]
    agents = [
        agent(f"a{i}", rng.choice([None, "v0", "v1", "v7"])) for i in range(rng.randint(0, 6))
    ]
    batch_max = rng.randint(1, 12)

    result = assign(agents, groups, batch_max)

    sizes = {g.build: g.size for g in groups}
    # each agent at most once; each batch 1..batch_max jobs of a pending group
    assert len({a.agent_id for a in result}) == len(result)
    assert all(1 <= a.count <= batch_max for a in result)
    taken = {v: sum(a.count for a in result if a.build == v) for v in sizes}
    assert all(taken[v] <= sizes[v] for v in sizes)
    # no agent left without work while jobs remain unassigned
    if any(taken[v] < sizes[v] for v in sizes):
        assert len(result) == len(agents)
    # a warm agent is given its installed version unless others took all of it
    for a in agents:
        warm = a.installed_build
        got = next((x.build for x in result if x.agent_id == a.agent_id), None)
        if warm in sizes and got != warm:
            assert taken[warm] == sizes[warm]
