"""Order of jobs inside a group: higher priority first, then arrival number."""

from __future__ import annotations

from qgjob_scheduler.grouping import PRIORITY_WEIGHT, group_score

LAST_ARRIVAL = PRIORITY_WEIGHT - 1  # the largest arrival number the weight allows for


def test_higher_priority_pops_first_even_when_it_arrived_last() -> None:
    assert group_score(2, LAST_ARRIVAL) < group_score(1, 1)


def test_same_priority_pops_in_arrival_order() -> None:
    assert group_score(3, 41) < group_score(3, 42)


def test_scores_stay_exact_in_a_double_up_to_priority_9000() -> None:
    for priority in (1, 10, 9000):
        for arrival in (1, LAST_ARRIVAL):
            score = group_score(priority, arrival)
            assert int(float(score)) == score
            assert float(score) != float(score + 1)
