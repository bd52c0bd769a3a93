"""The retry decision (`qgjob_scheduler.retry`, pure): infrastructure errors are retried with
backoff and jitter away from the agent, up to JOB_MAX_ATTEMPTS; failed tests only per the
job's `retries`; timeouts, expiries and cancels end the job; flaky is a pass after a fail."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from qgjob_contract.statuses import ErrorReason, JobStatus, RequeueReason, can_transition
from qgjob_scheduler import retry
from qgjob_scheduler.retry import Action, RetryPolicy

POLICY = RetryPolicy(max_attempts=3, backoff_s=1.0, backoff_max_s=60.0, avoid_s=5.0)
INFRA = [
    ErrorReason.INSTALL_FAILED.value,
    ErrorReason.DRIVER_ERROR.value,
    ErrorReason.NOT_REPORTED.value,
    RequeueReason.AGENT_LOST.value,
    RequeueReason.AGENT_RESTARTED.value,
]


def _entry(outcome: str, reason: str = "") -> dict[str, Any]:
    return {"outcome": outcome, "reason": reason, "agent_id": "a1"}


def _decide(
    outcome: str,
    reason: str | None = None,
    history: list[dict[str, Any]] | None = None,
    *,
    retries: int = 0,
    cancel: bool = False,
    policy: RetryPolicy = POLICY,
    jitter: float = 0.5,
) -> retry.Decision:
    return retry.decide(
        outcome,
        reason,
        history or [],
        retries=retries,
        agent_id="agent-1",
        cancel_requested=cancel,
        policy=policy,
        jitter=jitter,
    )


@pytest.mark.parametrize("reason", INFRA)
def test_an_infrastructure_error_is_retried_away_from_its_agent(reason: str) -> None:
    decision = _decide(JobStatus.ERROR.value, reason)
    assert decision.action is Action.REQUEUE
    assert decision.avoid_agent == "agent-1"
    assert decision.delay_s > 0
    assert reason in decision.note


@pytest.mark.parametrize("reason", INFRA)
def test_the_last_infrastructure_attempt_ends_the_job(reason: str) -> None:
    earlier = [_entry(JobStatus.ERROR.value, reason)] * (POLICY.max_attempts - 1)
    decision = _decide(JobStatus.ERROR.value, reason, earlier)
    assert decision.action is Action.END
    assert f"attempt {POLICY.max_attempts} of {POLICY.max_attempts}" in decision.note


def test_attempts_count_only_infrastructure_errors() -> None:
    # two failed runs (reruns) before: they do not use up infrastructure attempts
    earlier = [_entry(JobStatus.FAILED.value)] * 2 + [_entry("error", "install_failed")]
    decision = _decide(JobStatus.ERROR.value, "driver_error", earlier, retries=2)
    assert decision.action is Action.REQUEUE


def test_one_attempt_allowed_means_no_retry() -> None:
    decision = _decide("error", "install_failed", policy=RetryPolicy(max_attempts=1))
    assert decision.action is Action.END


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (JobStatus.PASSED.value, None),
        (JobStatus.ERROR.value, ErrorReason.TIMEOUT.value),
        (JobStatus.ERROR.value, ErrorReason.EXPIRED.value),
        (JobStatus.ERROR.value, "something nobody knows"),
        (JobStatus.ERROR.value, None),
        (JobStatus.CANCELLED.value, ErrorReason.CANCELLED.value),
    ],
)
def test_other_outcomes_end_the_job(outcome: str, reason: str | None) -> None:
    assert _decide(outcome, reason, retries=5).action is Action.END


def test_a_failed_test_is_not_rerun_unless_the_job_asks() -> None:
    assert _decide(JobStatus.FAILED.value).action is Action.END


def test_a_failed_test_is_rerun_at_once_while_reruns_are_left() -> None:
    first = _decide(JobStatus.FAILED.value, retries=2)
    second = _decide(JobStatus.FAILED.value, history=[_entry("failed")], retries=2)
    third = _decide(JobStatus.FAILED.value, history=[_entry("failed")] * 2, retries=2)
    assert (first.action, second.action, third.action) == (
        Action.REQUEUE,
        Action.REQUEUE,
        Action.END,
    )
    # a rerun is on the same build, at once, and any agent may take it
    assert (first.delay_s, first.avoid_agent) == (0.0, None)


def test_a_cancelled_job_is_never_attempted_again() -> None:
    decision = _decide("error", "install_failed", cancel=True)
    # the requeue script sees the cancel and ends it `cancelled` instead of queueing it
    assert decision.action is Action.REQUEUE
    assert "cancel" in decision.note
    assert decision.delay_s == 0.0


def test_a_cancel_does_not_change_an_outcome_that_ends() -> None:
    assert _decide("passed", cancel=True).action is Action.END


@pytest.mark.parametrize(
    ("retry_number", "jitter", "expected"),
    [
        (1, 0.0, 0.5),  # half of the base is fixed
        (1, 1.0, 1.0),
        (2, 0.5, 1.5),  # base 2 s
        (3, 0.0, 2.0),  # base 4 s
        (10, 1.0, 60.0),  # capped at backoff_max_s
        (1, 7.0, 1.0),  # jitter outside [0, 1] is clamped
        (1, -3.0, 0.5),
    ],
)
def test_backoff_is_exponential_with_equal_jitter(
    retry_number: int, jitter: float, expected: float
) -> None:
    assert retry.backoff_s(POLICY, retry_number, jitter) == pytest.approx(expected)


def test_the_second_retry_waits_longer_than_the_first() -> None:
    first = _decide("error", "agent_lost", jitter=0.0)
    second = _decide("error", "agent_lost", [_entry("error", "agent_lost")], jitter=0.0)
    assert second.delay_s == 2 * first.delay_s


def test_jitter_spreads_jobs_that_failed_together() -> None:
    delays = {_decide("error", "agent_lost", jitter=j / 10).delay_s for j in range(10)}
    assert len(delays) == 10


def test_flaky_is_a_pass_after_a_failed_run() -> None:
    assert retry.is_flaky("passed", [_entry("failed")])
    assert not retry.is_flaky("passed", [_entry("error", "install_failed")])
    assert not retry.is_flaky("failed", [_entry("failed")])
    assert not retry.is_flaky("passed", [])


def test_history_keeps_every_attempt_up_to_its_cap() -> None:
    history: list[dict[str, Any]] = []
    for n in range(retry.HISTORY_MAX + 3):
        history = retry.with_entry(history, {"attempt": n})
    assert len(history) == retry.HISTORY_MAX
    assert history[-1] == {"attempt": retry.HISTORY_MAX + 2}
    # the cap holds every attempt a job can make: all infra attempts, every rerun, the last
    assert retry.HISTORY_MAX > retry.MAX_MAX_ATTEMPTS + retry.MAX_RETRIES


def test_an_attempt_entry_names_everything_the_record_lists() -> None:
    entry = retry.attempt_entry(
        attempt=2,
        agent_id="a",
        batch_id="b",
        instance_id="i",
        assigned_at=None,
        started_at="s",
        finished_at="f",
        outcome="error",
        reason=None,
        retried=True,
    )
    assert entry == {
        "attempt": 2,
        "agent_id": "a",
        "batch_id": "b",
        "instance_id": "i",
        "assigned_at": "",
        "started_at": "s",
        "finished_at": "f",
        "outcome": "error",
        "reason": "",
        "retried": True,
    }


def test_the_transition_table_knows_the_job_control_ends() -> None:
    # a queued job ends `cancelled` (cancel) or `error` (its queue wait expired), never
    # passed/failed without running
    allowed = {new for new in JobStatus if can_transition(JobStatus.QUEUED, new)}
    assert allowed == {JobStatus.ASSIGNED, JobStatus.CANCELLED, JobStatus.ERROR}


def test_one_rerun_asked_means_exactly_one_rerun() -> None:
    """retries=1: the first failure is rerun (run 1 of 1), the second ends the job."""
    first = _decide(JobStatus.FAILED.value, retries=1)
    second = _decide(JobStatus.FAILED.value, history=[_entry("failed")], retries=1)
    assert first.action is Action.REQUEUE
    assert "run 1; 1 rerun(s) asked" in first.note
    assert second.action is Action.END


def test_the_note_of_a_rerun_counts_the_failed_runs_so_far() -> None:
    three = _decide(JobStatus.FAILED.value, history=[_entry("failed")] * 2, retries=5)
    assert three.action is Action.REQUEUE
    assert "run 3; 5 rerun(s) asked" in three.note


@pytest.mark.parametrize(
    "outcome", [JobStatus.PASSED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value]
)
@pytest.mark.parametrize("reason", INFRA)
def test_only_an_error_is_an_infrastructure_error_whatever_its_reason(
    outcome: str, reason: str
) -> None:
    """An attempt that ended passed, failed or cancelled is never retried as an
    infrastructure error, nor does an earlier one use up an infrastructure attempt."""
    assert not retry.is_infra(outcome, reason)
    decision = _decide(outcome, reason)  # retries=0: not rerun either
    assert decision.action is Action.END
    assert decision.avoid_agent is None
    # a history full of such attempts leaves every infrastructure attempt to the job
    earlier = [_entry(outcome, reason)] * (POLICY.max_attempts + 1)
    assert retry.infra_attempts(earlier) == 0
    assert _decide(JobStatus.ERROR.value, reason, earlier).action is Action.REQUEUE


def test_a_job_past_a_lowered_attempt_limit_ends_at_its_next_infrastructure_error() -> None:
    """JOB_MAX_ATTEMPTS lowered (3 -> 2) while a job had already used 3 attempts: its next
    infrastructure error ends it, it is not retried for ever."""
    earlier = [_entry("error", "agent_lost")] * 3
    decision = _decide("error", "agent_lost", earlier, policy=RetryPolicy(max_attempts=2))
    assert decision.action is Action.END
    assert "attempt 4 of 2" in decision.note


def test_the_longest_life_a_job_can_have_keeps_its_whole_history() -> None:
    """Every rerun the API accepts and every infrastructure attempt the scheduler can be
    configured to give (the reruns first, or the infrastructure errors first): the job ends
    on its last attempt and no entry of its history is dropped."""
    from qgjob_api.validation import MAX_RETRIES as API_MAX_RETRIES  # noqa: PLC0415

    policy = RetryPolicy(max_attempts=retry.MAX_MAX_ATTEMPTS)
    lives = [
        ["failed"] * API_MAX_RETRIES + ["error"] * retry.MAX_MAX_ATTEMPTS,
        ["error"] * (retry.MAX_MAX_ATTEMPTS - 1) + ["failed"] * (API_MAX_RETRIES + 1),
    ]
    for outcomes in lives:
        history: list[dict[str, Any]] = []
        actions = []
        for attempt, outcome in enumerate(outcomes, start=1):
            reason = "driver_error" if outcome == "error" else ""
            decision = _decide(outcome, reason, history, retries=API_MAX_RETRIES, policy=policy)
            actions.append(decision.action)
            history = retry.with_entry(history, {**_entry(outcome, reason), "attempt": attempt})
        assert actions == [Action.REQUEUE] * (len(outcomes) - 1) + [Action.END]
        assert [entry["attempt"] for entry in history] == list(range(1, len(outcomes) + 1))


def test_a_policy_made_without_settings_is_the_scheduler_default() -> None:
    """A Dispatcher or a handler given no policy uses RetryPolicy(): the same as a scheduler
    started with no JOB_* variable."""
    from qgjob_scheduler.config import Config  # noqa: PLC0415

    assert RetryPolicy() == Config.from_env({}).retry_policy()


def test_a_policy_and_a_decision_cannot_change_once_made() -> None:
    """Settings are read once into frozen objects, and one decision is shared by the jobs
    of a batch: neither can be altered on the way (and both may be hashed)."""
    decision = _decide("error", "agent_lost")
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.max_attempts = 10  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.delay_s = 0.0  # type: ignore[misc]
    assert {POLICY, decision} == {RetryPolicy(**vars(POLICY)), dataclasses.replace(decision)}
