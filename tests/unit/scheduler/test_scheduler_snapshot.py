"""The pure parts of the planner's snapshot: priorities recovered from group scores."""

from __future__ import annotations

import pytest

from qgjob_scheduler.grouping import PRIORITY_WEIGHT, group_score
from qgjob_scheduler.snapshot import priority_of


@pytest.mark.parametrize("priority", [1, 2, 5, 9, 10])
@pytest.mark.parametrize("arrival", [1, 2, 1000, 10**9, PRIORITY_WEIGHT - 1])
def test_priority_is_recovered_from_the_group_score(priority: int, arrival: int) -> None:
    assert priority_of(float(group_score(priority, arrival))) == priority
