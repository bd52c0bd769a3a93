"""Rules of the qgjob policy added with issue 6's plan-quality work, each on a hand-made
situation that a policy without the rule gets wrong (`qgjob_scheduler.planning`)."""

from __future__ import annotations

from qgjob_scheduler.planning import DEFAULT_BATCH_FILL_S, AgentView, PendingJob, Situation, qgjob

A = ("org-a", "v1")


def _jobs(estimates: list[float]) -> list[PendingJob]:
    return [
        PendingJob(f"a-{i}", A[0], A[1], 5, 0.0, estimate, float(i))
        for i, estimate in enumerate(estimates)
    ]


def _situation(estimates: list[float], busy_for_s: float, install_s: float) -> Situation:
    agents = [
        AgentView("warm", A, free=False, busy_for_s=busy_for_s),
        AgentView("cold", None, free=True, busy_for_s=0.0),
    ]
    return Situation(
        "emulator",
        _jobs(estimates),
        agents,
        {A: install_s},
        batch_max=10,
        batch_fill_s=DEFAULT_BATCH_FILL_S,
    )


def test_rule_split_jobs_are_not_divisible_no_split_whose_first_job_would_end_last() -> None:
    """The warm agent is free in 0.8 s and A has 3.5 s of work: alone it ends at 4.3 s.
    Shared out (divisible work) a cold agent paying a 2 s install would bring the end to
    3.15 s, more than a quarter of its install sooner; but its first job is the longest,
    2.5 s, and would end at 4.5 s, after the warm agent alone would have finished: no split.
    """
    assert qgjob(_situation([2.5, 0.5, 0.5], busy_for_s=0.8, install_s=2.0)) == []


def test_rule_split_jobs_are_not_divisible_a_split_of_short_jobs_still_pays() -> None:
    """The same work in short jobs (the longest 1 s, ending at 3 s): the split pays."""
    [split] = qgjob(_situation([1.0, 1.0, 1.0, 0.5], busy_for_s=0.8, install_s=2.0))
    assert split.agent_id == "cold"
    assert split.job_ids[0] == "a-0"  # longest first


def test_rule_split_jobs_are_not_divisible_a_tie_is_no_split() -> None:
    """The cold agent's first job would end at 4 s, just when the warm agent alone ends the
    build: the install would buy nothing."""
    assert qgjob(_situation([2.0, 0.5, 0.5], busy_for_s=1.0, install_s=2.0)) == []


def test_rule_split_jobs_are_not_divisible_the_install_and_first_job_add_up() -> None:
    """The warm agent is free in 1 s and A has 8 s of work: alone it ends at 9 s. A cold
    agent's 3 s install plus its first 2 s job end at 5 s, well before: the split pays (the
    install and the job take their times one after the other, nothing more)."""
    [split] = qgjob(_situation([2.0, 2.0, 2.0, 2.0], busy_for_s=1.0, install_s=3.0))
    assert split.agent_id == "cold"
    assert split.job_ids[0] == "a-0"


def test_rule_split_jobs_are_not_divisible_a_long_first_job_after_the_install_still_pays() -> None:
    """The warm agent is free in 1 s and A has two 3 s jobs: alone it ends at 7 s. A cold
    agent's 3 s install then one 3 s job end at 6 s, before that: the split pays."""
    [split] = qgjob(_situation([3.0, 3.0], busy_for_s=1.0, install_s=3.0))
    assert split.agent_id == "cold"
