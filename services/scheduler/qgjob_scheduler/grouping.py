"""How pending jobs are ordered inside their group (pure).

How groups take turns among themselves is the dispatcher's (see `qgjob_scheduler.dispatch`).
"""

from __future__ import annotations

# A job's arrival number: `Keys.ARRIVAL_SEQ`, incremented once per job joining a group, in
# the order of the jobs of each jobs.submitted (so a suite keeps its `--test` order, which
# creation times cannot give: every job of a request has the same `created_at`).
#
# One priority step outweighs any arrival difference while arrivals stay below 10**12 (a
# trillion jobs), so a group pops higher priority first, then earlier arrival. The scores
# stay exact integers in a double (below 2**53) for priorities up to 9000; the API allows
# 1-10.
PRIORITY_WEIGHT = 10**12


def group_score(priority: int, arrival: int) -> int:
    """Score of a job in its group's sorted set: ZPOPMIN takes the job to run next.

    `arrival`: the job's arrival number. The join script (`handlers._JOIN_GROUPS`) computes
    this same formula in Lua, where the arrival number is taken.
    """
    return arrival - priority * PRIORITY_WEIGHT
