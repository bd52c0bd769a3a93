"""Edges of the qgjob planning policy that `make mutation` found untested: fair share counts
every agent, aging in exact steps, the split rule's margin, batch sizing with every helper
(whatever its name), nearest rounding of a batch, and plans as values."""

from __future__ import annotations

import dataclasses

import pytest

from qgjob_scheduler.planning import (
    Assignment,
    PendingJob,
    Situation,
    finish_time,
    qgjob,
)
from tests.unit.scheduler.test_scheduler_planning import _busy, _free, _jobs, _situation

A, B = ("org-a", "v1"), ("org-b", "v1")


def _builds(plan: list[Assignment]) -> list[tuple[str, str]]:
    return [(a.org_id, a.app_version_id) for a in plan]


def _sizes(plan: list[Assignment]) -> list[int]:
    return [len(a.job_ids) for a in plan]


# --- finish_time --------------------------------------------------------------------------


def test_no_work_or_less_ends_when_the_first_agent_is_ready() -> None:
    """Nothing (or a negative leftover) to share: the build ends as soon as any agent is
    ready, never before."""
    assert finish_time([3.0, 1.0], 0.0) == 1.0
    assert finish_time([3.0, 1.0], -2.0) == 1.0
    assert finish_time([3.0, 1.0], -0.5) == 1.0


# --- a plan is a value --------------------------------------------------------------------


def test_the_snapshot_a_policy_reads_cannot_be_changed_by_it() -> None:
    """Jobs, agents and the situation are frozen values: a policy cannot alter the
    snapshot the dispatcher then checks its assignments against."""
    job = _jobs(A, 1)[0]
    agent = _free("x")
    situation = _situation([job], [agent])
    for value, name in ((job, "priority"), (agent, "free"), (situation, "batch_max")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, 1)


def test_an_assignment_cannot_be_changed_after_the_plan_is_made() -> None:
    """The dispatcher carries out exactly what the policy returned: an assignment is a
    frozen value, so no later step can rebind its jobs to another agent."""
    [assignment] = qgjob(_situation(_jobs(A, 2), [_free("x")]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        assignment.agent_id = "y"  # type: ignore[misc]
    assert hash(assignment) == hash(dataclasses.replace(assignment))


# --- fair share ---------------------------------------------------------------------------


def test_fair_share_counts_every_agent_an_org_holds() -> None:
    """Org A holds two agents, org B one: B is further from its share and goes first,
    even though A's jobs have the higher priority."""
    jobs = _jobs(A, 50, priority=9) + _jobs(B, 50, priority=5, first_order=50)
    # The free agent (nothing installed) is listed first: the others still count.
    agents = [
        _free("x"),
        _busy("a1", A, 100.0),
        _busy("a2", A, 100.0),
        _busy("b1", B, 100.0),
    ]
    assert _builds(qgjob(_situation(jobs, agents))) == [B]


def test_an_org_with_one_agent_running_yields_to_an_org_with_none() -> None:
    jobs = _jobs(A, 50, priority=9) + _jobs(B, 50, priority=5, first_order=50)
    agents = [_busy("a1", A, 100.0), _free("x")]
    assert _builds(qgjob(_situation(jobs, agents))) == [B]


def test_a_batch_given_in_this_pass_counts_like_a_busy_agent() -> None:
    """Org A's first batch of the pass puts it level with org C, which holds one busy
    agent: the next free agent then goes by priority (A's), not to C."""
    c = ("org-c", "v1")
    jobs = _jobs(A, 60, priority=9) + _jobs(c, 60, priority=5, first_order=60)
    agents = [_busy("c1", c, 100.0), _free("x"), _free("y")]
    plan = qgjob(_situation(jobs, agents, install_s=2.0))
    assert _builds(plan) == [A, A]


def test_the_first_batch_of_an_unserved_org_counts_once() -> None:
    """After one batch an org counts one agent, not none: a second org with nothing
    running takes the next free agent even though the first has the higher priority."""
    jobs = _jobs(A, 60, priority=9) + _jobs(B, 60, priority=5, first_order=60)
    plan = qgjob(_situation(jobs, [_free("x"), _free("y")]))
    assert sorted(_builds(plan)) == [A, B]


def test_weights_divide_the_share_without_rounding() -> None:
    """Weight 3 against weight 2, neither served: org A (weight 3) is further from its
    share (1/3 < 1/2) and goes first, although org B has the higher priority."""
    jobs = _jobs(A, 20, priority=2) + _jobs(B, 20, priority=9, first_order=20)
    situation = Situation(
        "emulator",
        jobs,
        [_free("x")],
        {A: 2.0, B: 2.0},
        10,
        org_weights={"org-a": 3.0, "org-b": 2.0},
    )
    assert _builds(qgjob(situation)) == [A]


# --- priority and aging -------------------------------------------------------------------


def test_aging_adds_whole_steps_to_the_priority() -> None:
    """A priority-3 job that has waited two aging steps ranks as 5: its build goes before
    a build of fresh priority-4 jobs."""
    old = _jobs(("org-a", "v1"), 3, priority=3, waited_s=120.0)
    fresh = _jobs(("org-a", "v2"), 3, priority=4, first_order=3)
    [batch] = qgjob(_situation(old + fresh, [_free("x")]))
    assert batch.app_version_id == "v1"


def test_an_aging_step_is_one_priority_level_no_more() -> None:
    """A priority-2 job that waited one step ranks as 3: still behind a fresh priority 4."""
    old = _jobs(("org-a", "v1"), 3, priority=2, waited_s=60.0)
    fresh = _jobs(("org-a", "v2"), 3, priority=4, first_order=3)
    [batch] = qgjob(_situation(old + fresh, [_free("x")]))
    assert batch.app_version_id == "v2"


def test_less_than_one_aging_step_gives_no_bonus() -> None:
    """A job that waited 10 s (of a 60 s step) does not pass an equal job queued ahead of
    it, and neither does a job that has not waited at all lose its place."""
    ahead = PendingJob("ahead", *A, 5, 0.0, 1.0, 0.0)
    waited = PendingJob("waited", *A, 5, 10.0, 1.0, 1.0)
    [batch] = qgjob(_situation([ahead, waited], [_free("x")], batch_max=1))
    assert batch.job_ids == ("ahead",)
    [batch] = qgjob(_situation([waited, ahead], [_free("x")], batch_max=1))
    assert batch.job_ids == ("ahead",)


@pytest.mark.parametrize("aging_s", [0.0, -60.0])
def test_an_aging_step_of_zero_or_less_turns_aging_off(aging_s: float) -> None:
    """No step, no bonus: a job that waited an hour keeps its priority (and the policy does
    not divide by zero)."""
    old = PendingJob("old", *A, 1, 3600.0, 1.0, 1.0)
    high = PendingJob("high", *A, 2, 0.0, 1.0, 0.0)
    situation = Situation(
        "emulator", [old, high], [_free("x")], {A: 2.0}, batch_max=1, aging_s=aging_s
    )
    [batch] = qgjob(situation)
    assert batch.job_ids == ("high",)
    # and the long wait costs it nothing either: priority 3 still goes before a fresh 2
    older = dataclasses.replace(old, priority=3)
    situation = dataclasses.replace(situation, jobs=[older, high])
    [batch] = qgjob(situation)
    assert batch.job_ids == ("old",)


def test_a_job_that_waited_exactly_n_aging_steps_gains_n_priority_steps() -> None:
    """SCHEDULER_AGING_S may be a fraction: 1.0 s of waiting at 0.1 s a step is ten steps
    (priority 1 -> 11), enough to run before a fresh priority-10 job queued ahead of it."""
    fresh = PendingJob("fresh", *A, 10, 0.0, 1.0, 0.0)
    old = PendingJob("old", *A, 1, 1.0, 1.0, 1.0)
    situation = Situation(
        "emulator", [fresh, old], [_free("x")], {A: 2.0}, batch_max=1, aging_s=0.1
    )
    [batch] = qgjob(situation)
    assert batch.job_ids == ("old",)


def test_between_equal_builds_the_one_that_waited_longer_goes_first() -> None:
    """Same org, same priority (less than one aging step apart), both unserved: the build
    whose job has waited longer is served first, whatever the arrival order says."""
    late = _jobs(("org-a", "v1"), 3, waited_s=10.0)
    early = _jobs(("org-a", "v2"), 3, waited_s=50.0, first_order=3)
    [batch] = qgjob(_situation(late + early, [_free("x")]))
    assert batch.app_version_id == "v2"


# --- warm, unserved, splits ---------------------------------------------------------------


@pytest.mark.parametrize(("installed", "free_version"), [("v1", "v2"), ("v2", "v1")])
def test_a_warm_agent_stays_on_its_build_even_when_another_installs_for_free(
    installed: str, free_version: str
) -> None:
    """Another build installs in no time, but the free agent has its own build installed:
    staying warm comes first (the other build has waited longer, which alone would put it
    first), whichever of the two versions sorts first."""
    warm = _jobs(("org-a", installed), 3)
    free_install = _jobs(("org-a", free_version), 3, waited_s=30.0, first_order=3)
    situation = Situation(
        "emulator",
        warm + free_install,
        [_free("x", ("org-a", installed))],
        {("org-a", installed): 5.0, ("org-a", free_version): 0.0},
        10,
    )
    [batch] = qgjob(situation)
    assert batch.app_version_id == installed


def test_among_paying_splits_the_build_that_would_end_last_goes_first() -> None:
    """Two builds, each served by a busy agent, both worth a second agent: the one cold
    free agent joins the build that would otherwise end later (it bounds the makespan),
    although the other build is first in arrival order."""
    soon = _jobs(("org-a", "v1"), 20)  # its agent is busy 10 s more: ends at 30 s
    late = _jobs(("org-a", "v2"), 40, first_order=20)  # ends at 50 s
    agents = [_busy("a1", ("org-a", "v1"), 10.0), _busy("a2", ("org-a", "v2"), 10.0), _free("x")]
    [split] = qgjob(_situation(soon + late, agents, batch_max=100))
    assert split.app_version_id == "v2"


def test_when_every_free_agent_is_warm_elsewhere_the_first_listed_switches() -> None:
    """v3 has the highest priority and nobody has it installed; x and y are both warm on
    builds with work left. The first listed (x) switches to v3; y stays warm on v2."""
    jobs = (
        _jobs(("org-a", "v1"), 3)
        + _jobs(("org-a", "v2"), 3, first_order=3)
        + _jobs(("org-a", "v3"), 3, priority=9, first_order=6)
    )
    agents = [_free("x", ("org-a", "v1")), _free("y", ("org-a", "v2"))]
    plan = {a.agent_id: a.app_version_id for a in qgjob(_situation(jobs, agents))}
    assert plan == {"x": "v3", "y": "v2"}


def test_a_split_that_does_not_pay_leaves_the_agent_to_other_builds() -> None:
    """A's warm agent frees soon, so a cold agent would not help A; it must still take B,
    which nobody serves."""
    jobs = _jobs(A, 2) + _jobs(B, 3, first_order=2)
    agents = [_busy("a1", A, 0.5), _free("x")]
    assert _builds(qgjob(_situation(jobs, agents))) == [B]


def test_a_split_must_gain_more_than_a_quarter_of_its_install() -> None:
    """A's warm agent is busy for 2 s and A has 4 s of work: alone it ends at 6 s. A cold
    agent paying a 4 s install ends it at 5 s: a gain of exactly a quarter of the install
    is not enough (the install must be more than repaid); a 3 s busy agent (a gain of
    1.5 s) is worth a split."""
    jobs = _jobs(A, 4, estimate_s=1.0)
    assert qgjob(_situation(jobs, [_busy("a1", A, 2.0), _free("x")], install_s=4.0)) == []
    [split] = qgjob(_situation(jobs, [_busy("a1", A, 3.0), _free("x")], install_s=4.0))
    assert split.agent_id == "x"


# --- batch sizes --------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["z", "a"])
def test_a_batch_leaves_a_share_to_every_warm_agent_whatever_its_name(first: str) -> None:
    """Two warm free agents and 8 s of work: 4 jobs each, whichever is listed first."""
    other = "a" if first == "z" else "z"
    plan = qgjob(_situation(_jobs(A, 8), [_free(first, A), _free(other, A)]))
    assert sorted(_sizes(plan)) == [4, 4]


@pytest.mark.parametrize("other_version", ["v0", "v9"])
def test_an_agent_another_build_needs_is_not_counted_as_a_helper(other_version: str) -> None:
    """Build v1 has a warm free agent; the cold free agent is needed for the org's other
    build, which nobody serves (named before or after v1). So v1's batch is not shrunk to
    leave work for the cold agent: its warm agent takes all 8 jobs, the cold one the other
    build."""
    other = ("org-a", other_version)
    jobs = _jobs(A, 8) + _jobs(other, 8, first_order=8)
    plan = {a.agent_id: a for a in qgjob(_situation(jobs, [_free("w", A), _free("c")]))}
    assert len(plan["w"].job_ids) == 8
    assert (plan["w"].app_version_id, plan["c"].app_version_id) == ("v1", other_version)


def test_a_served_build_does_not_reserve_a_cold_agent() -> None:
    """The other build already has its own (busy) agent: the cold free agent may help A,
    so A's warm agent takes only its share."""
    jobs = _jobs(A, 8) + _jobs(B, 3, first_order=8)
    agents = [_free("w", A), _free("c"), _busy("b1", B, 1.0)]
    plan = {a.agent_id: a for a in qgjob(_situation(jobs, agents))}
    assert len(plan["w"].job_ids) < 8


def test_warm_agents_share_even_a_small_build() -> None:
    """Adding a warm agent costs no install: two 0.2 s jobs go one to each warm agent."""
    plan = qgjob(_situation(_jobs(A, 2, estimate_s=0.2), [_free("x", A), _free("y", A)]))
    assert _sizes(plan) == [1, 1]


def test_no_batch_exceeds_batch_max_even_a_large_one() -> None:
    """BATCH_MAX_JOBS may be large (300): two agents warm on two builds of 700 short jobs
    each take 300, not every job the pass looked at."""
    v1, v2 = ("org-a", "v1"), ("org-a", "v2")
    jobs = _jobs(v1, 700, estimate_s=0.01) + _jobs(v2, 700, estimate_s=0.01, first_order=700)
    plan = qgjob(_situation(jobs, [_free("x", v1), _free("y", v2)], batch_max=300))
    assert _sizes(plan) == [300, 300]


def test_no_cold_install_for_the_short_job_left_after_a_batch() -> None:
    """One job per batch: the warm agent takes the 1 s job; the 0.2 s job left is not
    worth a 1 s install on the cold agent (the warm one reaches it at 1.2 s)."""
    jobs = [PendingJob("long", *A, 1, 0.0, 1.0, 0.0), PendingJob("short", *A, 1, 0.0, 0.2, 1.0)]
    plan = qgjob(_situation(jobs, [_free("cold"), _free("warm", A)], install_s=1.0, batch_max=1))
    assert [(a.agent_id, a.job_ids) for a in plan] == [("warm", ("long",))]


def test_an_agent_just_given_a_long_batch_is_not_counted_on_to_help_soon() -> None:
    """x takes 10 s of v1; y, warm on v2, takes all 6 s of v2: x, busy until 10 s and
    then paying an install, could not end v2 sooner."""
    jobs = _jobs(("org-a", "v1"), 20) + _jobs(("org-a", "v2"), 6, first_order=20)
    agents = [_free("x", ("org-a", "v1")), _free("y", ("org-a", "v2"))]
    plan = {a.agent_id: len(a.job_ids) for a in qgjob(_situation(jobs, agents))}
    assert plan == {"x": 10, "y": 6}


def test_an_even_split_rounds_to_the_nearest_batch_and_leaves_nothing() -> None:
    """5 jobs of 1 s over two warm agents: 3 and 2 (a batch of 2.5 s rounds up), every
    job placed in this pass."""
    plan = qgjob(_situation(_jobs(A, 5), [_free("x", A), _free("y", A)]))
    assert _sizes(plan) == [3, 2]


def test_a_batch_ends_as_near_its_share_as_whole_jobs_allow() -> None:
    """7 jobs of 1 s over three warm agents: a share of 2.33 s is 2 jobs, not 3 (the
    seventh goes to whichever agent frees first, in a later pass)."""
    plan = qgjob(_situation(_jobs(A, 7), [_free("x", A), _free("y", A), _free("z", A)]))
    assert _sizes(plan) == [2, 2, 2]


def test_every_batch_given_in_a_pass_counts_toward_the_org_share() -> None:
    """Orgs A and C each hold one busy agent; A (higher priority) gets the first free
    agent, and with it two agents: the second free agent goes to C."""
    c = ("org-c", "v1")
    jobs = _jobs(A, 60, priority=9) + _jobs(c, 60, priority=5, first_order=60)
    agents = [_busy("a1", A, 100.0), _busy("c1", c, 100.0), _free("x"), _free("y")]
    assert _builds(qgjob(_situation(jobs, agents))) == [A, c]


@pytest.mark.parametrize("busy_for_s", [30.0, 110.0])
def test_a_cold_agent_takes_the_work_of_a_warm_agent_busy_for_long(busy_for_s: float) -> None:
    """The warm agent is busy for long: a cold agent installing for 2 s ends 10 s of work
    far sooner, whatever the exact figures (110 s + 10 s is a multiple of 2 s + 10 s)."""
    plan = qgjob(_situation(_jobs(A, 10), [_busy("warm", A, busy_for_s), _free("cold")]))
    assert [(a.agent_id, len(a.job_ids)) for a in plan] == [("cold", 10)]


def test_one_job_per_batch_still_uses_every_warm_agent() -> None:
    """BATCH_MAX_JOBS=1: two warm free agents take one job each of the same build."""
    plan = qgjob(_situation(_jobs(A, 2), [_free("x", A), _free("y", A)], batch_max=1))
    assert _sizes(plan) == [1, 1]


def test_finish_time_with_hundreds_of_agents() -> None:
    """A target may have hundreds of agents: 300 s of work over 300 agents ready now ends
    after 1 s."""
    assert finish_time([0.0] * 300, 300.0) == 1.0


def test_a_job_stamped_ahead_of_the_scheduler_clock_loses_no_priority() -> None:
    """Host clocks may be skewed: a job whose age comes out negative keeps its priority
    and its place in the queue."""
    skewed = PendingJob("skewed", *A, 5, -0.5, 1.0, 0.0)
    other = PendingJob("other", *A, 5, 0.0, 1.0, 1.0)
    [batch] = qgjob(_situation([skewed, other], [_free("x")], batch_max=1))
    assert batch.job_ids == ("skewed",)


def test_the_agent_switched_to_another_build_is_one_whose_build_has_no_work_left() -> None:
    """v3 has the highest priority and no agent has it. x is warm on v1, which has work
    left; y is warm on v2, which has none: y switches to v3 and x keeps v1."""
    jobs = _jobs(("org-a", "v1"), 3) + _jobs(("org-a", "v3"), 3, priority=9, first_order=3)
    agents = [_free("x", ("org-a", "v1")), _free("y", ("org-a", "v2"))]
    plan = {a.agent_id: a.app_version_id for a in qgjob(_situation(jobs, agents))}
    assert plan == {"x": "v1", "y": "v3"}


def test_warm_builds_are_planned_in_waiting_order_not_by_when_they_end() -> None:
    """Two free agents, each warm on its own build; v2 also has a busy agent. The plan
    lists the batches in the order the policy chose them: the build that waited longer
    (v2) first, whether or not another agent serves it."""
    v1, v2 = ("org-a", "v1"), ("org-a", "v2")
    jobs = _jobs(v1, 3) + _jobs(v2, 3, waited_s=30.0, first_order=3)
    agents = [_free("x", v1), _busy("b", v2, 5.0), _free("y", v2)]
    assert _builds(qgjob(_situation(jobs, agents))) == [v2, v1]


def test_an_agent_held_counts_once_like_a_batch_given() -> None:
    """Org A holds nothing, org C one busy agent: A takes the first free agent; then both
    count one agent and C's higher priority takes the second."""
    c = ("org-c", "v1")
    jobs = _jobs(A, 60, priority=5) + _jobs(c, 60, priority=9, first_order=60)
    agents = [_busy("c1", c, 100.0), _free("x"), _free("y")]
    assert _builds(qgjob(_situation(jobs, agents))) == [A, c]


def test_weights_compare_agents_held_plus_one_per_weight() -> None:
    """Org A holds two agents at weight 2.5 ((2 + 1) / 2.5 = 1.2); org B holds none at
    weight 1 ((0 + 1) / 1 = 1.0): B is further from its share and goes first."""
    jobs = _jobs(A, 60, priority=9) + _jobs(B, 60, priority=5, first_order=60)
    agents = [_busy("a1", A, 100.0), _busy("a2", A, 100.0), _free("x")]
    situation = Situation(
        "emulator", jobs, agents, {A: 2.0, B: 2.0}, 10, org_weights={"org-a": 2.5, "org-b": 1.0}
    )
    assert _builds(qgjob(situation)) == [B]


def test_a_build_ranks_by_its_best_job() -> None:
    """v1's best job has priority 9 (its others 1); every job of v2 has priority 5: v1
    goes first."""
    mixed = _jobs(("org-a", "v1"), 1, priority=9, prefix="best") + _jobs(
        ("org-a", "v1"), 3, priority=1, first_order=1
    )
    even = _jobs(("org-a", "v2"), 4, priority=5, first_order=4)
    [batch] = qgjob(_situation(mixed + even, [_free("x")]))
    assert batch.app_version_id == "v1"
