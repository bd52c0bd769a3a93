"""The benchmark's pure figures: bounds, makespans, installs, latencies, timelines."""

from __future__ import annotations

import math

from bench.metrics import (
    dispatch_latencies_ms,
    durations_lower_bound,
    installs,
    makespan_s,
    percentile,
    standard_lower_bound,
    timeline,
)


def _record(
    agent: str, created: str, started: str, finished: str, install_s: float = 0.0
) -> dict[str, object]:
    return {
        "assigned_agent": agent,
        "created_at": f"2026-01-01T00:00:{created}+00:00",
        "started_at": f"2026-01-01T00:00:{started}+00:00",
        "finished_at": f"2026-01-01T00:00:{finished}+00:00",
        "result": {"install_paid": install_s > 0, "install_s": install_s, "duration_s": 0.2},
    }


def test_standard_lower_bound_of_the_issue() -> None:
    # The issue's own example: 4 agents, 200 jobs, 5 versions, I = 2 s, T = 0.2 s: 12.5 s.
    assert standard_lower_bound(200, 5, 4, 2.0, 0.2) == 12.5
    # one long build dominates: I + ceil(N/K) * T
    assert math.isclose(standard_lower_bound(40, 1, 4, 2.0, 1.0), 12.0)
    # more builds than agents, tiny tests: ceil(V/K) * (I + T)
    assert math.isclose(standard_lower_bound(8, 8, 4, 2.0, 0.0), 4.0)


def test_durations_lower_bound_from_actual_durations() -> None:
    assert durations_lower_bound({"a": [1.0, 1.0], "b": [2.0]}, 2, 1.0) == 3.0
    # the longest test after one install bounds it when agents are many
    assert durations_lower_bound({"a": [5.0, 0.1]}, 4, 1.0) == 6.0
    assert durations_lower_bound({}, 4, 1.0) == 0.0


def test_makespan_installs_and_latencies_from_records() -> None:
    records = [
        _record("a1", "00.000", "02.000", "02.200", install_s=2.0),
        _record("a1", "00.000", "02.200", "02.400"),
        _record("a2", "01.000", "01.050", "03.500"),
    ]
    assert makespan_s(records) == 3.5
    assert installs(records) == 1
    assert dispatch_latencies_ms(records) == [2000.0, 2200.0, 50.0]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert math.isnan(percentile([], 0.5))


def test_timeline_puts_the_install_before_the_first_test() -> None:
    records = [
        _record("a1", "00.000", "02.000", "02.200", install_s=2.0),
        _record("a1", "00.000", "02.200", "02.400"),
    ]
    segments = timeline(records)
    assert [(s.kind, s.start_s, round(s.length_s, 3)) for s in segments] == [
        ("install", 0.0, 2.0),
        ("test", 2.0, 0.2),
        ("test", 2.2, 0.2),
    ]
