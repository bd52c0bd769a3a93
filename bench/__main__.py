"""`python -m bench [--quick] [--out DIR] [--project NAME] [--keep]`: see `bench.workloads`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.plot import plot_timelines
from bench.stack import DEFAULT_PROJECT, REPO_ROOT, log, running
from bench.workloads import FULL, QUICK, Bench, Sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 3 minutes)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".bench", help="plots go here")
    parser.add_argument(
        "--project",
        default=os.environ.get("QGJOB_BENCH_PROJECT", DEFAULT_PROJECT),
        help="compose project name (default: $QGJOB_BENCH_PROJECT or qgjob-bench)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    suffix = "-quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    plot = args.out / f"standard-timeline{suffix}.png"
    with running(args.project, keep=args.keep) as stack:
        bench = Bench(stack, sizes)
        try:
            _workloads(bench, sizes)
        finally:
            # What ran is kept even when a later workload crashes (the run still fails).
            (args.out / f"records{suffix}.json").write_text(json.dumps(bench.records))
            if bench.timelines:
                plot_timelines(
                    {f"{name} (standard workload)": r for name, r in bench.timelines.items()},
                    plot,
                )
    elapsed = time.monotonic() - started
    bench.figures.update(
        mode="quick" if args.quick else "full",
        agents=sizes.agents,
        bench_seconds=round(elapsed, 1),
        plot=str(plot.relative_to(REPO_ROOT) if plot.is_relative_to(REPO_ROOT) else plot),
    )
    print("qgjob benchmark summary")
    for line in bench.summary:
        print(f"- {line}")
    print(f"- took {elapsed:.0f} s; timeline plot: {plot}")
    print(json.dumps(bench.figures, sort_keys=True))
    log("done")
    return 0


def _workloads(bench: Bench, sizes: Sizes) -> None:
    k = sizes.agents
    bench.up(k, bench.base_settings())
    bench.standard()
    bench.affinity()
    bench.fairness()
    bench.dispatch()
    scale_k = bench.scale(k)
    bench.up(k, bench.base_settings("fifo"))
    bench.standard_fifo()
    bench.up(1, bench.base_settings())
    scale_1 = bench.scale(1)
    bench.figures["scale_1_to_4"] = round(scale_1 / scale_k, 3)
    low, high = sizes.durations_range
    bench.up(k, {**bench.base_settings(), "SIM_TEST_SECONDS": f"{low:g}..{high:g}"})
    bench.durations()
    bench.up(1, {**bench.base_settings(), "SIM_INSTALL_SECONDS": "0", "SIM_TEST_SECONDS": "0"})
    bench.noop()
    bench.intake()


if __name__ == "__main__":
    sys.exit(main())
