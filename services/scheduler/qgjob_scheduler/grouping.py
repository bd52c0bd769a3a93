"""How pending jobs are ordered inside their group (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

# One priority step outweighs any arrival difference (10**13 ms is about 317 years), so a
# group pops higher priority first, then earlier arrival. Scores stay exact integers in a
# double for |priority| < 900.
PRIORITY_WEIGHT = 10**13


def arrival_ms(created_at: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 timestamp (naive means UTC)."""
    moment = datetime.fromisoformat(created_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def group_score(priority: int, arrival: int) -> int:
    """Score of a job in its group's sorted set: ZPOPMIN takes the job to run next."""
    return arrival - priority * PRIORITY_WEIGHT
