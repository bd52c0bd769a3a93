"""Edges of waiting that `make mutation` found unchecked: the last sleep is cut to the
deadline exactly, a final status the CLI does not know counts as an infrastructure end, and
a wait's result is an immutable value."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.waiting import WaitResult, wait_for
from tests.unit.cli.conftest import FakeClock


def never_final() -> list[dict[str, Any]]:
    """One poll's answer: job `a`, still running."""
    return [{"job_id": "a", "status": "running", "final": False}]


@pytest.mark.parametrize("start", [10.0, 1000.0])
def test_the_sleep_before_the_deadline_ends_exactly_at_it(start: float) -> None:
    clock = FakeClock(now_s=start)
    result = wait_for(
        never_final,  # type: ignore[arg-type]
        timeout_s=25.0,
        poll_interval_s=100.0,
        clock=clock.now,
        sleep=clock.sleep,
    )
    assert result.timed_out
    assert clock.sleeps == [25.0]
    assert clock.now_s == start + 25.0


class OvershootingClock(FakeClock):
    """A sleep that wakes up later than asked, as real sleeps do; at most 10 of them."""

    def sleep(self, seconds: float) -> None:
        assert len(self.sleeps) < 10, "the wait never noticed its deadline had passed"
        self.sleeps.append(seconds)
        self.now_s += seconds + 0.3


def test_a_deadline_overshot_by_the_last_sleep_still_ends_the_wait() -> None:
    clock = OvershootingClock()
    result = wait_for(
        never_final,  # type: ignore[arg-type]
        timeout_s=3.0,
        poll_interval_s=1.0,
        clock=clock.now,
        sleep=clock.sleep,
    )
    assert result.timed_out
    # Awake at +1.3, +2.6, then +3.3: past the deadline (never exactly at it), so it ends.
    assert clock.sleeps == pytest.approx([1.0, 1.0, 0.4])


@pytest.mark.parametrize("status", ["skipped", "timed_out", "aborted"])
def test_an_unknown_final_status_counts_like_error(status: str) -> None:
    jobs = [
        {"job_id": "a", "status": "passed", "final": True},
        {"job_id": "b", "status": status, "final": True},
    ]
    assert WaitResult(jobs=jobs, timed_out=False).exit_code is ExitCode.INFRA_ERROR


def test_a_wait_result_is_immutable() -> None:
    result = WaitResult(jobs=[], timed_out=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.timed_out = True  # type: ignore[misc]
