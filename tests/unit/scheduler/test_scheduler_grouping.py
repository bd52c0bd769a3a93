"""Order of jobs inside a group: higher priority first, then arrival."""

from __future__ import annotations

from qgjob_contract.events import timestamp_ms
from qgjob_scheduler.grouping import group_score


def test_higher_priority_pops_first_even_when_it_arrived_later() -> None:
    early_low = group_score(1, timestamp_ms("2026-01-01T00:00:00.000+00:00"))
    late_high = group_score(5, timestamp_ms("2036-01-01T00:00:00.000+00:00"))
    assert late_high < early_low


def test_same_priority_pops_in_arrival_order() -> None:
    first = group_score(3, timestamp_ms("2026-11-29T10:00:00.000+00:00"))
    second = group_score(3, timestamp_ms("2026-11-29T10:00:00.001+00:00"))
    assert first < second


def test_scores_stay_exact_in_a_double_for_realistic_priorities() -> None:
    score = group_score(100, timestamp_ms("2100-01-01T00:00:00.001+00:00"))
    assert float(score) == score
