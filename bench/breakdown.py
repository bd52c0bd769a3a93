"""`python -m bench.breakdown [RECORDS_JSON]`: where each run's platform time went.

Reads the job records a benchmark kept (`.bench/records.json`, or `records-quick.json`) and
prints, per run, the median and 90th percentile of each round-trip leg of
`metrics.RoundTrips`, so a change to the scheduler or the agent can be judged leg by leg.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.metrics import RoundTrips, percentile, round_trips
from bench.stack import REPO_ROOT

LEGS = ("ready_to_assigned", "assigned_to_running", "finished_to_assigned", "between_tests")


def legs(trips: RoundTrips) -> dict[str, tuple[int, float, float]]:
    """leg -> (count, p50 ms, p90 ms)."""
    out = {}
    for leg in LEGS:
        values: list[float] = getattr(trips, leg)
        out[leg] = (len(values), percentile(values, 0.5), percentile(values, 0.9))
    return out


def summary(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    lines = []
    for name, records in runs.items():
        parts = [
            f"{leg} p50 {p50:.0f} / p90 {p90:.0f} ms (n={n})"
            for leg, (n, p50, p90) in legs(round_trips(records)).items()
            if n
        ]
        lines.append(f"{name}: " + "; ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else REPO_ROOT / ".bench" / "records.json"
    for line in summary(json.loads(path.read_text())):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
