"""`python -m bench.breakdown [RECORDS_JSON]`: where each run's platform time went.

Reads the job records a benchmark kept (`.bench/records.json`, or `records-quick.json`) and
prints, per run, the median and 90th percentile of each round-trip leg of
`metrics.RoundTrips`, so a change to the scheduler or the agent can be judged leg by leg;
then, with `--agents`, where each agent's share of the makespan went (`metrics.accounts`):
the plan's own time (installs and tests on the simulator's durations: what the makespan
would be with no platform at all) against the platform's (lead-in, between batches,
between tests, slower tests) and the tail (idle while other agents finish).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.metrics import RoundTrips, accounts, makespan_s, percentile, round_trips
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


def agent_lines(name: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The run's makespan against its plan's (the busiest agent on simulated times), then
    one line per agent (`metrics.AgentAccount`, seconds)."""
    rows = accounts(records)
    if not rows:
        return []
    makespan = makespan_s(records)
    planned = max(row.planned for row in rows)
    lines = [
        f"{name}: makespan {makespan:.2f}s; the plan alone {planned:.2f}s "
        f"(busiest agent on simulated times); platform and tail {makespan - planned:.2f}s; "
        f"{sum(row.batches for row in rows)} batches, {sum(row.installs for row in rows)} installs"
    ]
    lines += [
        f"  {row.agent}: {row.batches} batches, {row.installs} installs; planned "
        f"{row.planned:.2f}; lead-in {row.lead_in:.2f}, install {row.install:.2f}, test "
        f"{row.test:.2f}, between batches {row.between_batches:.2f}, between tests "
        f"{row.between_tests:.2f}, tail {row.tail:.2f}"
        for row in rows
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    per_agent = "--agents" in args
    args = [arg for arg in args if arg != "--agents"]
    path = Path(args[0]) if args else REPO_ROOT / ".bench" / "records.json"
    runs = json.loads(path.read_text())
    for line in summary(runs):
        print(line)
    if per_agent:
        for name, records in runs.items():
            for line in agent_lines(name, records):
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
