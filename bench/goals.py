"""The issue's goals for the benchmark's figures, and `python -m bench.goals`: the CI check.

`python -m bench.goals FILE` reads a benchmark's output, takes its LAST line (the JSON
object of every figure) and prints, per goal, the figure, the goal and whether it is met
(by how much it is missed otherwise). A missed goal is reported, never a failure: the
benchmark does not decide whether a build passes (issue 6). It exits 1 only when the
benchmark did not produce its figures: no JSON last line, or a figure missing or not a
number (the benchmark crashed or rotted).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Goal:
    field: str
    op: str  # "<=" or ">=" or "=="
    target: float
    relative_to: str | None = None  # the goal is `field <op> target * relative_to`

    def bound(self, figures: Mapping[str, Any]) -> float:
        base = float(figures[self.relative_to]) if self.relative_to else 1.0
        return self.target * base

    def met(self, figures: Mapping[str, Any]) -> bool:
        value, bound = float(figures[self.field]), self.bound(figures)
        if self.op == "<=":
            return value <= bound
        if self.op == ">=":
            return value >= bound
        return value == bound

    def describe(self, figures: Mapping[str, Any]) -> str:
        value, bound = float(figures[self.field]), self.bound(figures)
        goal = f"{self.op} {self.target:g}" + (f" x {self.relative_to}" if self.relative_to else "")
        if self.met(figures):
            return f"met     {self.field} = {value:g} ({goal})"
        miss = abs(value - bound) / bound * 100 if bound else math.inf
        at = f" = {bound:g}" if self.relative_to else ""
        return f"MISSED  {self.field} = {value:g} ({goal}{at}; off by {miss:.0f}%)"


GOALS = (
    Goal("makespan_ratio", "<=", 1.10),
    Goal("single_makespan_ratio", "<=", 1.10),
    Goal("fifo_speedup", ">=", 8.0),
    Goal("affinity_ratio", "<=", 1.10),
    Goal("affinity_installs", "==", 4),
    Goal("rerun_installs", "==", 0),
    Goal("durations_warm_ratio", "<=", 1.10),
    Goal("small_org_done_s", "<=", 0.25, "big_org_makespan_s"),
    Goal("noop_jobs_per_s", ">=", 1.0, "rq_noop_jobs_per_s"),
    Goal("submit_per_s", ">=", 0.30, "healthz_per_s"),
    Goal("dispatch_p50_ms", "<=", 20),
    Goal("dispatch_p99_ms", "<=", 100),
    Goal("scale_1_to_4", ">=", 3.6),
)


def figures_of(output: str) -> dict[str, Any]:
    """The figures of a benchmark's output (its last non-empty line); ValueError if absent."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output")
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the last line is not JSON: {lines[-1][:200]!r}") from exc
    if not isinstance(figures, dict):
        raise ValueError("the last line is not a JSON object")
    for goal in GOALS:
        for name in filter(None, (goal.field, goal.relative_to)):
            value = figures.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise ValueError(f"figure {name} missing or not a number: {value!r}")
    return figures


def report(figures: Mapping[str, Any]) -> list[str]:
    return [goal.describe(figures) for goal in GOALS]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.goals BENCH_OUTPUT_FILE", file=sys.stderr)
        return 2
    try:
        figures = figures_of(Path(args[0]).read_text())
    except (OSError, ValueError) as exc:
        print(f"bench: no figures ({exc}): the benchmark crashed or rotted", file=sys.stderr)
        return 1
    lines = report(figures)
    missed = sum(1 for line in lines if line.startswith("MISSED"))
    print(f"bench goals ({figures.get('mode', '?')} sizes; reported, not enforced):")
    for line in lines:
        print(f"  {line}")
    print(f"  {len(lines) - missed} of {len(lines)} goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
