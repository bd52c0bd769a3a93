"""Where each agent's share of a makespan went (`bench.metrics.accounts`), and how long the
benchmark's waits may take on a loaded machine (`bench.stack.patience_for`)."""

from __future__ import annotations

import pytest

from bench.metrics import accounts
from bench.stack import patience_for


def _job(
    agent: str,
    batch: str,
    started: float,
    finished: float,
    *,
    duration_s: float,
    install_s: float = 0.0,
    created: float = 0.0,
) -> dict[str, object]:
    def at(seconds: float) -> str:
        return f"2026-01-01T00:00:{seconds:06.3f}+00:00"

    return {
        "assigned_agent": agent,
        "batch_id": batch,
        "created_at": at(created),
        "assigned_at": at(created),
        "started_at": at(started),
        "finished_at": at(finished),
        "result": {
            "install_paid": install_s > 0,
            "install_s": install_s,
            "duration_s": duration_s,
        },
    }


def test_each_agents_time_is_split_into_plan_platform_and_tail() -> None:
    records = [
        # a1: install 0.5 s from 0.25, tests 0.75-1.0 and 1.05-1.25; next batch after 0.5 s
        _job("a1", "b1", 0.75, 1.0, duration_s=0.2, install_s=0.5),
        _job("a1", "b1", 1.05, 1.25, duration_s=0.2),
        _job("a1", "b2", 1.75, 2.0, duration_s=0.2),
        # a2: one test from 0.5 to 1.0, then idle until the run ends at 2.0
        _job("a2", "b3", 0.5, 1.0, duration_s=0.4),
    ]
    a1, a2 = accounts(records)
    assert (a1.agent, a1.batches, a1.installs) == ("a1", 2, 1)
    assert a1.lead_in == pytest.approx(0.25)
    assert a1.install == pytest.approx(0.5)
    assert a1.test == pytest.approx(0.70)
    assert a1.between_tests == pytest.approx(0.05)
    assert a1.between_batches == pytest.approx(0.5)
    assert a1.tail == pytest.approx(0.0)
    assert a1.planned == pytest.approx(1.1)  # the install and the simulated durations
    assert (a2.batches, a2.installs, a2.lead_in, a2.tail) == (1, 0, 0.5, 1.0)
    assert a2.planned == pytest.approx(0.4)


def test_jobs_that_never_ran_are_left_out() -> None:
    never = {"created_at": "2026-01-01T00:00:00.000+00:00", "assigned_agent": None}
    assert accounts([never]) == []


@pytest.mark.parametrize(
    ("load", "cpus", "expected"),
    [(0.5, 2, 1.0), (4.0, 2, 2.0), (30.0, 2, 10.0), (7.0, 1, 7.0)],
)
def test_deadlines_grow_with_the_load_per_core_within_1_to_10(
    load: float, cpus: int, expected: float
) -> None:
    assert patience_for(load, cpus) == expected
