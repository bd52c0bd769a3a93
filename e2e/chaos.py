"""`make chaos`: a larger chaos run than the e2e test's, on a stack of its own.

    python -m e2e.chaos [--jobs N] [--agents K] [--rounds R]

Each round submits N jobs and injects the faults of `e2e.faults.run_chaos` (an agent killed
mid-batch, another crashed and restarted under its id, RabbitMQ, Redis and the scheduler
restarted or killed). Prints a summary per round, then as its LAST line one JSON object:
jobs, lost, double_final, wrong_outcome, redispatch_p50_s, redispatch_max_s (agent killed ->
its first unfinished job running elsewhere, over the rounds), dead_letters, faults.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from e2e.conftest import PROJECT, wait_until
from e2e.faults import ChaosReport, fault_stack_up, run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=600, help="jobs per round")
    parser.add_argument("--agents", type=int, default=4, help="emulator agents")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of faults")
    args = parser.parse_args()
    reports: list[ChaosReport] = []
    started = time.monotonic()
    with fault_stack_up(f"{PROJECT}-chaos", args.agents, "chaos-compose.log") as stack:
        for round_number in range(1, args.rounds + 1):
            stack.compose_up("--scale", f"agent-emulator={args.agents}")
            wait_until(
                lambda: sum(1 for a in stack.agents() if a["alive"]) >= args.agents,
                timeout=60,
                what="every agent alive",
            )
            report = run_chaos(stack, jobs=args.jobs, timeout=600)
            reports.append(report)
            print(f"round {round_number}: {report.json_line()}", file=sys.stderr)
            for line in report.not_final + report.wrong:
                print(f"  problem: {line}", file=sys.stderr)
    times = sorted(t for report in reports for t in report.redispatch_s)
    total = {
        "jobs": sum(r.jobs for r in reports),
        "lost": sum(r.lost for r in reports),
        "double_final": sum(r.double_final for r in reports),
        "wrong_outcome": sum(r.wrong_outcome for r in reports),
        "redispatch_p50_s": round(statistics.median(times), 2) if times else None,
        "redispatch_max_s": round(max(times), 2) if times else None,
        "dead_letters": max((r.dead_letters for r in reports), default=0),
        "rounds": len(reports),
        "elapsed_s": round(time.monotonic() - started, 1),
        "faults": [fault for r in reports for fault in r.faults],
    }
    print(
        f"chaos: {total['jobs']} jobs over {len(reports)} rounds: lost {total['lost']}, "
        f"double final {total['double_final']}, wrong outcome {total['wrong_outcome']}, "
        f"redispatch p50 {total['redispatch_p50_s']} s, max {total['redispatch_max_s']} s"
    )
    print(json.dumps(total, separators=(",", ":")))
    return 0 if total["lost"] == total["double_final"] == total["wrong_outcome"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
