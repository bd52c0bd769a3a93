"""How pending jobs are ordered inside their group (pure).

How groups take turns among themselves is the dispatcher's (see `qgjob_scheduler.dispatch`).
"""

from __future__ import annotations

# One priority step outweighs any arrival difference (10**13 ms is about 317 years), so a
# group pops higher priority first, then earlier arrival. Scores stay exact integers in a
# double for |priority| < 900.
PRIORITY_WEIGHT = 10**13


def group_score(priority: int, arrival_ms: int) -> int:
    """Score of a job in its group's sorted set: ZPOPMIN takes the job to run next.

    `arrival_ms`: the job's creation time in ms since the epoch (`events.timestamp_ms`).
    """
    return arrival_ms - priority * PRIORITY_WEIGHT
