"""The pure policies of `qgjob_scheduler.planning`, on hand-made situations."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from qgjob_scheduler.planning import (
    DEFAULT_BATCH_FILL_S,
    POLICIES,
    UNSEEN_FILL,
    AgentView,
    Assignment,
    PendingJob,
    Situation,
    fifo,
    finish_time,
    qgjob,
)

A, B = ("org-a", "v1"), ("org-b", "v1")  # same version string, two orgs: two builds


def _jobs(
    build: tuple[str, str],
    count: int,
    *,
    estimate_s: float = 1.0,
    priority: int = 5,
    waited_s: float = 0.0,
    prefix: str | None = None,
    first_order: int = 0,
) -> list[PendingJob]:
    name = prefix or f"{build[0]}-{build[1]}"
    return [
        PendingJob(
            f"{name}-{i}",
            build[0],
            build[1],
            priority,
            waited_s,
            estimate_s,
            float(first_order + i),
        )
        for i in range(count)
    ]


def _free(agent_id: str, installed: tuple[str, str] | None = None) -> AgentView:
    return AgentView(agent_id, installed, free=True, busy_for_s=0.0)


def _busy(agent_id: str, installed: tuple[str, str] | None, busy_for_s: float) -> AgentView:
    return AgentView(agent_id, installed, free=False, busy_for_s=busy_for_s)


def _situation(
    jobs: list[PendingJob],
    agents: list[AgentView],
    *,
    install_s: float = 2.0,
    batch_max: int = 10,
    batch_fill_s: float = 0.0,
) -> Situation:
    builds = {job.build for job in jobs}
    return Situation(
        "emulator",
        jobs,
        agents,
        dict.fromkeys(builds, install_s),
        batch_max,
        batch_fill_s=batch_fill_s,
    )


def _by_agent(assignments: list[Assignment]) -> dict[str, Assignment]:
    return {a.agent_id: a for a in assignments}


# --- finish_time (water filling) -------------------------------------------------------


def test_finish_time_shares_work_so_agents_end_together() -> None:
    assert finish_time([0.0, 0.0], 4.0) == 2.0
    assert finish_time([0.0, 2.0], 4.0) == 3.0
    # an agent ready after the others would have finished takes no part
    assert finish_time([0.0, 10.0], 4.0) == 4.0
    assert finish_time([], 1.0) == math.inf
    assert finish_time([3.0, 1.0], 0.0) == 1.0


# --- qgjob -----------------------------------------------------------------------------


def test_warm_free_agent_takes_its_build_and_cold_one_the_other() -> None:
    jobs = _jobs(A, 5) + _jobs(B, 5)
    plan = _by_agent(qgjob(_situation(jobs, [_free("cold"), _free("warm-b", B)])))
    assert (plan["warm-b"].org_id, plan["warm-b"].app_version_id) == B
    assert (plan["cold"].org_id, plan["cold"].app_version_id) == A
    assert not plan["warm-b"].force_install


def test_busy_warm_agent_that_frees_soon_beats_a_cold_free_one() -> None:
    # 2 s of work left; the warm agent is free in 0.5 s, a cold one needs 2 s to install.
    jobs = _jobs(A, 2)
    assert qgjob(_situation(jobs, [_busy("warm", A, 0.5), _free("cold")])) == []


def test_cold_agent_helps_when_the_warm_agent_is_busy_for_long() -> None:
    jobs = _jobs(A, 4)
    plan = qgjob(_situation(jobs, [_busy("warm", A, 30.0), _free("cold")]))
    assert [a.agent_id for a in plan] == ["cold"]
    assert len(plan[0].job_ids) == 4


def test_a_build_is_split_only_when_it_pays() -> None:
    agents = [_free("x"), _free("y")]
    # 1 s of work: a second agent paying a 2 s install could not bring the end forward.
    small = qgjob(_situation(_jobs(A, 4, estimate_s=0.25), agents))
    assert len(small) == 1
    assert len(small[0].job_ids) == 4
    # 20 s of work: two agents end it far sooner, each paying one install.
    large = qgjob(_situation(_jobs(A, 20, estimate_s=1.0), agents, batch_max=100))
    assert len(large) == 2
    assert sorted(len(a.job_ids) for a in large) == [10, 10]


def test_longest_tests_first_within_a_build() -> None:
    estimates = [0.5, 3.0, 1.0, 2.0]
    jobs = [
        PendingJob(f"j{i}", *A, 5, 0.0, estimate, float(i)) for i, estimate in enumerate(estimates)
    ]
    [batch] = qgjob(_situation(jobs, [_free("x")]))
    assert batch.job_ids == ("j1", "j3", "j2", "j0")


def test_batches_shrink_as_the_backlog_drains() -> None:
    agents = [_free("x", A), _free("y", A), _busy("z", A, 0.0), _busy("w", A, 0.0)]
    # Large backlog: batches are capped by batch_max.
    [big, *_] = qgjob(_situation(_jobs(A, 200, estimate_s=1.0), agents))
    assert len(big.job_ids) == 10
    # Small backlog: 8 s of work over 4 agents: about 2 s each, not one batch of 8.
    plan = qgjob(_situation(_jobs(A, 8, estimate_s=1.0), agents))
    assert [len(a.job_ids) for a in plan] == [2, 2]


def test_short_tests_fill_a_batch_past_batch_max_up_to_the_fill_seconds() -> None:
    # 10 ms tests: batch_max (10) of them are 0.1 s of work; the default 2 s fill takes 200.
    short = _jobs(A, 1000, estimate_s=0.01)
    fill = DEFAULT_BATCH_FILL_S
    [one] = qgjob(_situation(short, [_free("x", A)], batch_fill_s=fill))
    assert len(one.job_ids) == 200
    # Off (0, the Situation's default): batch_max, as before, no-op tests included.
    [off] = qgjob(_situation(short, [_free("x", A)]))
    assert len(off.job_ids) == 10
    [unset] = qgjob(Situation("emulator", short, [_free("x", A)], {A: 2.0}, 10))
    assert len(unset.job_ids) == 10
    noop = _jobs(A, 2000, estimate_s=0.0)
    [off_noop] = qgjob(_situation(noop, [_free("x", A)], batch_fill_s=0.0))
    assert len(off_noop.job_ids) == 10
    # ... with two free agents too: the first batch does not take the second one's share
    off_two = qgjob(_situation(noop, [_free("x", A), _free("y", A)], batch_fill_s=0.0))
    assert [len(a.job_ids) for a in off_two] == [10, 10]
    # No-op tests: the ceiling (500) bounds the batch, for each free agent.
    [ceiling] = qgjob(_situation(noop, [_free("x", A)], batch_fill_s=0.5))
    assert len(ceiling.job_ids) == 500
    two = qgjob(_situation(noop, [_free("x", A), _free("y", A)], batch_fill_s=fill))
    assert [len(a.job_ids) for a in two] == [500, 500]
    # Tests of normal length: batch_max of them already exceed the fill; nothing changes.
    [normal] = qgjob(_situation(_jobs(A, 100, estimate_s=1.0), [_free("x", A)], batch_fill_s=2.0))
    assert len(normal.job_ids) == 10


def test_tests_never_seen_fill_a_batch_only_up_to_unseen_fill_times_batch_max() -> None:
    # An org whose earlier tests took 10 ms submits a new suite: its estimate is the org's,
    # not the test's own, so the batch is bounded (the suite may well take 30 s a test).
    unseen = [dataclasses.replace(job, seen=False) for job in _jobs(A, 1000, estimate_s=0.01)]
    [one] = qgjob(_situation(unseen, [_free("x", A)], batch_fill_s=2.0))
    assert len(one.job_ids) == UNSEEN_FILL * 10 == 50
    # A batch_max over the ceiling is still honoured, seen or not, and not exceeded.
    many = [dataclasses.replace(job, seen=False) for job in _jobs(A, 3000, estimate_s=0.001)]
    agents = [_free("x", A), _free("y", A)]
    big = qgjob(_situation(many, agents, batch_max=600, batch_fill_s=20.0))
    assert [len(a.job_ids) for a in big] == [600, 600]


def test_a_batch_is_a_prefix_of_its_builds_order_a_shorter_later_job_does_not_jump_in() -> None:
    # batch_max 1, 2 s fill: 1.5 s is taken, 1.0 s would overfill, and the 0.4 s behind it
    # stays behind it (the build's order is kept for the next batch), though it would fit.
    jobs = [
        PendingJob("long", *A, 5, 0.0, 1.5, 0.0),
        PendingJob("mid", *A, 5, 0.0, 1.0, 1.0),
        PendingJob("short", *A, 5, 0.0, 0.4, 2.0),
    ]
    [batch] = qgjob(_situation(jobs, [_free("x", A)], batch_max=1, batch_fill_s=2.0))
    assert batch.job_ids == ("long",)


def test_a_filled_batch_still_shrinks_for_the_tail_and_keeps_longest_first() -> None:
    # Two warm agents, 300 short tests (3 s): each batch takes its half, not 2 s of it...
    jobs = _jobs(A, 150, estimate_s=0.01) + _jobs(A, 150, estimate_s=0.01, prefix="b")
    plan = qgjob(_situation(jobs, [_free("x", A), _free("y", A)], batch_fill_s=2.0))
    assert [len(a.job_ids) for a in plan] == [150, 150]
    # ...and a long test goes first, the short ones fill behind it up to the fill seconds.
    mixed = _jobs(A, 1, estimate_s=1.5, prefix="long") + _jobs(A, 500, estimate_s=0.01)
    [batch] = qgjob(_situation(mixed, [_free("x", A)], batch_fill_s=2.0))
    assert batch.job_ids[0] == "long-0"
    assert len(batch.job_ids) == 1 + 50


def test_fair_share_the_small_org_is_served_before_the_big_org_continues() -> None:
    # Org A keeps three agents busy and has 1,000 jobs waiting; org B has 5.
    jobs = _jobs(A, 1000) + _jobs(B, 5, first_order=1000)
    agents = [_busy("a1", A, 5.0), _busy("a2", A, 5.0), _busy("a3", A, 5.0), _free("free", A)]
    [only] = qgjob(_situation(jobs, agents))
    assert (only.org_id, only.app_version_id) == B
    assert len(only.job_ids) == 5


def test_fair_share_two_free_agents_go_one_to_each_org() -> None:
    jobs = _jobs(A, 1000) + _jobs(B, 5, first_order=1000)
    plan = qgjob(_situation(jobs, [_free("x"), _free("y")]))
    assert sorted(a.org_id for a in plan) == ["org-a", "org-b"]


def test_org_weights_give_a_heavier_org_more_agents() -> None:
    jobs = _jobs(A, 100) + _jobs(B, 100, first_order=100)
    agents = [_busy("a1", A, 5.0), _busy("b1", B, 5.0), _free("x")]
    builds = {A: 2.0, B: 2.0}
    even = qgjob(Situation("emulator", jobs, agents, builds, 10))
    weighted = qgjob(Situation("emulator", jobs, agents, builds, 10, org_weights={"org-b": 2.0}))
    assert [a.org_id for a in even] == ["org-a"]  # tie: A's jobs arrived first
    assert [a.org_id for a in weighted] == ["org-b"]


def test_an_org_of_weight_zero_gets_only_what_no_other_org_wants() -> None:
    jobs = _jobs(A, 3) + _jobs(B, 30, first_order=3)
    agents = [_busy("b1", B, 5.0), _busy("b2", B, 5.0), _free("x")]
    plan = qgjob(
        Situation("emulator", jobs, agents, {A: 2.0, B: 2.0}, 10, org_weights={"org-a": 0})
    )
    assert [a.org_id for a in plan] == ["org-b"]
    alone = qgjob(
        Situation("emulator", _jobs(A, 3), [_free("x")], {A: 2.0}, 10, org_weights={"org-a": 0})
    )
    assert [a.org_id for a in alone] == ["org-a"]


def test_priority_first_within_an_org() -> None:
    low = _jobs(A, 3, priority=2, prefix="low")
    high = _jobs(A, 3, priority=9, prefix="high", first_order=3)
    [batch] = qgjob(_situation(low + high, [_free("x")], batch_max=4))
    assert batch.job_ids[:3] == ("high-0", "high-1", "high-2")
    assert batch.job_ids[3] == "low-0"


def test_higher_priority_build_of_an_org_goes_first() -> None:
    jobs = _jobs(("org-a", "v1"), 3, priority=1) + _jobs(("org-a", "v2"), 3, priority=8)
    [batch] = qgjob(_situation(jobs, [_free("x")]))
    assert batch.app_version_id == "v2"


def test_aging_an_old_low_priority_job_overtakes_fresh_high_priority_ones() -> None:
    old = _jobs(A, 1, priority=1, waited_s=600.0, prefix="old")
    fresh = _jobs(A, 5, priority=9, prefix="fresh", first_order=1)
    [batch] = qgjob(_situation(old + fresh, [_free("x")], batch_max=1))
    assert batch.job_ids == ("old-0",)
    # without the wait, the fresh high-priority jobs come first
    young = _jobs(A, 1, priority=1, waited_s=5.0, prefix="old")
    [batch] = qgjob(_situation(young + fresh, [_free("x")], batch_max=1))
    assert batch.job_ids == ("fresh-0",)


def test_aging_a_waiting_build_overtakes_the_warm_one() -> None:
    # The free agent is warm on v1, which keeps receiving jobs; v2 has waited 10 minutes.
    jobs = _jobs(("org-a", "v1"), 5) + _jobs(("org-a", "v2"), 1, waited_s=600.0, first_order=5)
    [batch] = qgjob(_situation(jobs, [_free("x", ("org-a", "v1"))]))
    assert batch.app_version_id == "v2"


def test_no_cold_agent_takes_a_build_whose_agents_end_it_first() -> None:
    # Every pending build is in hand and a cold agent cannot help: it stays idle.
    jobs = _jobs(A, 3, estimate_s=0.2)
    agents = [_busy("warm", A, 0.1), _free("cold")]
    assert qgjob(_situation(jobs, agents, install_s=2.0)) == []


def test_two_orgs_with_the_same_version_string_never_share_a_batch() -> None:
    jobs = _jobs(A, 3) + _jobs(B, 3)
    for policy in POLICIES.values():
        for assignment in policy(_situation(jobs, [_free("x"), _free("y")])):
            orgs = {job_id.split("-v1-")[0] for job_id in assignment.job_ids}
            assert orgs == {assignment.org_id}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_plan_is_valid_on_random_situations(name: str) -> None:
    policy = POLICIES[name]
    rng = random.Random(6)
    for _ in range(200):
        builds = [(f"org-{rng.randint(1, 3)}", f"v{rng.randint(1, 3)}") for _ in range(4)]
        jobs = [
            PendingJob(
                f"j{i}",
                *rng.choice(builds),
                rng.randint(1, 10),
                rng.uniform(0, 300),
                rng.uniform(0, 5),
                float(i),
            )
            for i in range(rng.randint(0, 60))
        ]
        agents = [
            AgentView(
                f"a{i}",
                rng.choice([None, *builds]),
                free := rng.random() < 0.6,
                0.0 if free else rng.uniform(0, 20),
            )
            for i in range(rng.randint(0, 6))
        ]
        fill = rng.choice([0.0, 0.0, rng.uniform(0, 20)])
        situation = _situation(jobs, agents, batch_max=rng.randint(1, 12), batch_fill_s=fill)
        plan = policy(situation)
        by_id = {job.job_id: job for job in jobs}
        free_ids = {agent.agent_id for agent in agents if agent.free}
        assert len({a.agent_id for a in plan}) == len(plan)
        assert {a.agent_id for a in plan} <= free_ids
        job_ids = [job_id for a in plan for job_id in a.job_ids]
        assert len(job_ids) == len(set(job_ids))
        for assignment in plan:
            work = sum(by_id[job_id].estimate_s for job_id in assignment.job_ids)
            assert 1 <= len(assignment.job_ids) <= 500  # the ceiling
            # past batch_max only while the batch's work stays within the fill
            assert len(assignment.job_ids) <= situation.batch_max or work <= fill + 1e-9
            builds_in = {by_id[job_id].build for job_id in assignment.job_ids}
            assert builds_in == {(assignment.org_id, assignment.app_version_id)}
        # No free agent idles while no agent at all serves a pending build.
        if jobs and free_ids and name == "qgjob":
            assert plan


def test_bad_batch_max_is_refused() -> None:
    for policy in POLICIES.values():
        with pytest.raises(ValueError, match="batch_max"):
            policy(_situation(_jobs(A, 1), [_free("x")], batch_max=0))


# --- fifo ------------------------------------------------------------------------------


def test_fifo_is_naive_one_job_each_oldest_first_install_every_time() -> None:
    jobs = (
        _jobs(A, 2, waited_s=1.0, prefix="late")
        + _jobs(B, 2, waited_s=9.0, prefix="early", first_order=2)
        + _jobs(A, 1, waited_s=5.0, prefix="middle", first_order=4)
    )
    # A warm agent gets no special treatment, and force_install asks for an install anyway.
    plan = fifo(_situation(jobs, [_free("x", A), _free("y"), _free("z"), _busy("w", None, 1)]))
    assert [(a.agent_id, a.job_ids) for a in plan] == [
        ("x", ("early-0",)),
        ("y", ("early-1",)),
        ("z", ("middle-0",)),
    ]
    assert all(a.force_install for a in plan)
    assert plan[0].org_id == "org-b"


def test_policies_by_name() -> None:
    assert set(POLICIES) == {"qgjob", "fifo"}
    assert POLICIES["qgjob"] is qgjob
    assert POLICIES["fifo"] is fifo
