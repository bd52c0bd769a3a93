"""The CI check of the benchmark: missed goals are reported, only missing figures fail."""

from __future__ import annotations

import json
from pathlib import Path

from bench.goals import GOALS, main, report

FIGURES = {
    "makespan_ratio": 1.05,
    "single_makespan_ratio": 1.5,
    "fifo_speedup": 9.0,
    "affinity_ratio": 1.0,
    "affinity_installs": 4,
    "rerun_installs": 0,
    "durations_warm_ratio": 1.08,
    "small_org_done_s": 2.0,
    "big_org_makespan_s": 20.0,
    "noop_jobs_per_s": 50.0,
    "rq_noop_jobs_per_s": 100.0,
    "submit_per_s": 40.0,
    "healthz_per_s": 100.0,
    "dispatch_p50_ms": 15.0,
    "dispatch_p99_ms": 90.0,
    "scale_1_to_4": 3.7,
}


def test_each_goal_is_judged_against_its_own_bound() -> None:
    lines = dict(zip((goal.field for goal in GOALS), report(FIGURES), strict=True))

    assert lines["makespan_ratio"].startswith("met")
    assert lines["single_makespan_ratio"].startswith("MISSED")
    assert "off by 36%" in lines["single_makespan_ratio"]
    assert lines["small_org_done_s"].startswith("met")  # 2.0 <= 0.25 x 20
    assert lines["noop_jobs_per_s"].startswith("MISSED")  # 50 < 1.0 x 100
    assert lines["submit_per_s"].startswith("met")  # 40 >= 0.30 x 100


def test_missed_goals_do_not_fail_but_a_benchmark_without_figures_does(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("summary line\n" + json.dumps(FIGURES) + "\n")
    crashed = tmp_path / "crashed.txt"
    crashed.write_text("summary line\nTraceback (most recent call last):\n")
    partial = tmp_path / "partial.txt"
    partial.write_text(json.dumps({**FIGURES, "dispatch_p99_ms": None}) + "\n")

    assert main([str(good)]) == 0
    assert main([str(crashed)]) == 1
    assert main([str(partial)]) == 1
    assert main([str(tmp_path / "absent.txt")]) == 1
