"""What happens to a job after one of its attempts ended: retry it, or let it end (pure).

- An `error` the platform caused (`INFRA_REASONS`: the install failed, the driver crashed,
  the agent never reported the job, the agent was lost or restarted) goes back to its group
  while its infrastructure attempts stay below `max_attempts` (JOB_MAX_ATTEMPTS), after an
  exponential backoff with jitter, and avoiding the agent it failed on for a while (another
  free agent takes it; the same one only when no other came in time).
- A test that ran and `failed` is rerun (at once, on the same build) while its failed runs
  stay within the job's `retries`; a later pass makes the job `passed` and `flaky`.
- Anything else ends the job: passed, a failure with no rerun left, `timeout` (the test
  itself ran too long: rerunning it only costs another timeout), `expired`, `cancelled`,
  an error of an unknown reason.
- A job whose cancel was asked is never attempted again: when its outcome would be retried,
  the requeue script ends it `cancelled` instead (`cancel_requested` only changes the note).

The decision reads only the job's history (the attempts that ended before this one), so it
is the same in every scheduler replica; the requeue script applies it atomically and only
if the job still belongs to the batch it was decided for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from qgjob_contract.statuses import MAX_ATTEMPTS, ErrorReason, JobStatus, RequeueReason

# Reasons of an `error` the platform caused: retried.
INFRA_REASONS: Final = frozenset(
    {
        ErrorReason.INSTALL_FAILED.value,
        ErrorReason.DRIVER_ERROR.value,
        ErrorReason.NOT_REPORTED.value,
        RequeueReason.AGENT_LOST.value,
        RequeueReason.AGENT_RESTARTED.value,
    }
)
# The most reruns of a failed test a job may ask for (`retries`).
MAX_RETRIES: Final = 5
# The most JOB_MAX_ATTEMPTS may be: with MAX_RETRIES it bounds a job's history.
MAX_MAX_ATTEMPTS: Final = 20
# Entries kept in a job's history: every attempt fits (infra attempts, reruns, the last).
HISTORY_MAX: Final = MAX_MAX_ATTEMPTS + MAX_RETRIES + 1


class Action(StrEnum):
    END = "end"  # the attempt's outcome is the job's final status
    REQUEUE = "requeue"  # the job goes back to its group for another attempt


@dataclass(frozen=True)
class RetryPolicy:
    """The scheduler's retry settings (config: JOB_MAX_ATTEMPTS, JOB_RETRY_BACKOFF_S, ...)."""

    max_attempts: int = MAX_ATTEMPTS  # infrastructure attempts, the first one included
    backoff_s: float = 1.0  # the delay before the first infrastructure retry (before jitter)
    backoff_max_s: float = 60.0  # the delay never exceeds this
    # How long after its delay a retried job still avoids the agent it failed on.
    avoid_s: float = 5.0


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_s: float = 0.0  # the job is eligible again only after this many seconds
    avoid_agent: str | None = None  # no batch of this agent takes it during the avoid window
    note: str = ""  # why, in words (the log, and the log tail of a job that ends)


def is_infra(outcome: str, reason: str | None) -> bool:
    return outcome == JobStatus.ERROR and reason in INFRA_REASONS


def infra_attempts(history: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for entry in history if is_infra(entry.get("outcome", ""), entry.get("reason")))


def failed_runs(history: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for entry in history if entry.get("outcome") == JobStatus.FAILED)


def backoff_s(policy: RetryPolicy, retry_number: int, jitter: float) -> float:
    """The delay before infrastructure retry number `retry_number` (1, 2, ...).

    Exponential (`backoff_s * 2**(n-1)`, capped at `backoff_max_s`) with "equal jitter":
    half of it fixed, the other half scaled by `jitter` in [0, 1), so the retries of
    batches that failed together (several agents lost at once, one broken build failing its
    installs everywhere) do not all come back at the same moment. The jobs of ONE batch
    share one jitter: they come back together, in their order, as one batch.
    """
    base = min(policy.backoff_s * 2.0 ** max(retry_number - 1, 0), policy.backoff_max_s)
    return base / 2 + base / 2 * min(max(jitter, 0.0), 1.0)


def decide(
    outcome: str,
    reason: str | None,
    history: Iterable[Mapping[str, Any]],
    *,
    retries: int,
    agent_id: str,
    cancel_requested: bool,
    policy: RetryPolicy,
    jitter: float,
) -> Decision:
    """What to do after an attempt that ended `outcome` (`reason`) on `agent_id`.

    `history`: the job's attempts that ended before this one; `retries`: the reruns of a
    failed test the job asked for; `jitter`: a random number in [0, 1).
    """
    earlier = list(history)
    decision = _decide(
        outcome, reason, earlier, retries=retries, agent_id=agent_id, policy=policy, jitter=jitter
    )
    if cancel_requested and decision.action is Action.REQUEUE:
        return Decision(Action.REQUEUE, note="a cancel was asked: it ends cancelled")
    return decision


def _decide(
    outcome: str,
    reason: str | None,
    earlier: list[Mapping[str, Any]],
    *,
    retries: int,
    agent_id: str,
    policy: RetryPolicy,
    jitter: float,
) -> Decision:
    if is_infra(outcome, reason):
        attempt = infra_attempts(earlier) + 1
        if attempt >= policy.max_attempts:
            return Decision(
                Action.END,
                note=f"infrastructure attempt {attempt} of {policy.max_attempts} ended "
                f"({reason}): no attempt left",
            )
        delay = backoff_s(policy, attempt, jitter)
        return Decision(
            Action.REQUEUE,
            delay_s=delay,
            avoid_agent=agent_id,
            note=f"infrastructure attempt {attempt} of {policy.max_attempts} ended ({reason}): "
            f"retried in {delay:.2f} s, away from agent {agent_id} if another is free",
        )
    if outcome == JobStatus.FAILED:
        run = failed_runs(earlier) + 1
        if run <= retries:
            return Decision(
                Action.REQUEUE, note=f"the test failed (run {run}; {retries} rerun(s) asked)"
            )
        return Decision(Action.END, note="the test failed: no rerun left")
    return Decision(Action.END)


def is_flaky(outcome: str, history: Iterable[Mapping[str, Any]]) -> bool:
    """A job that passes after a failed run of its test is flaky."""
    return outcome == JobStatus.PASSED and failed_runs(history) > 0


def attempt_entry(
    *,
    attempt: int,
    agent_id: str,
    batch_id: str,
    instance_id: str,
    assigned_at: str | None,
    started_at: str | None,
    finished_at: str,
    outcome: str,
    reason: str | None,
    retried: bool,
) -> dict[str, Any]:
    """One entry of a job's `history` (the requeue script writes the same fields)."""
    return {
        "attempt": attempt,
        "agent_id": agent_id,
        "batch_id": batch_id,
        "instance_id": instance_id,
        "assigned_at": assigned_at or "",
        "started_at": started_at or "",
        "finished_at": finished_at,
        "outcome": outcome,
        "reason": reason or "",
        "retried": retried,
    }


def with_entry(history: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """`history` with `entry` appended, capped at HISTORY_MAX (the oldest dropped)."""
    return [*history, entry][-HISTORY_MAX:]
