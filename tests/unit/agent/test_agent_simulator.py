"""The simulator driver: deterministic outcomes from glob patterns, and honest results."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys

import pytest

from qgjob_agent.config import SimSeconds
from qgjob_agent.drivers.base import JobRun
from qgjob_agent.drivers.simulator import SimulatorDriver, simulated_seconds
from qgjob_contract.statuses import ErrorReason, JobStatus


def _job(test_path: str) -> JobRun:
    return JobRun("j1", "org", test_path, "v1", "emulator")


def _driver(
    fail_pattern: str = "*fail*", error_pattern: str = "", sleeps: list[float] | None = None
) -> SimulatorDriver:
    return SimulatorDriver(
        install_s=3.0,
        test_s=1.5,
        fail_pattern=fail_pattern,
        error_pattern=error_pattern,
        sleep=(sleeps if sleeps is not None else []).append,
    )


@pytest.mark.parametrize(
    ("test_path", "expected"),
    [
        ("tests/onboarding.spec.js", JobStatus.PASSED),
        ("tests/login_fail.spec.js", JobStatus.FAILED),
        ("tests/fail/checkout.spec.js", JobStatus.FAILED),
        ("tests/FAIL.spec.js", JobStatus.PASSED),  # globs are case-sensitive
        ("tests/flaky-infra.spec.js", JobStatus.ERROR),
    ],
)
def test_outcome_follows_the_patterns(test_path: str, expected: JobStatus) -> None:
    driver = _driver(error_pattern="*infra*")
    assert driver.run_test(_job(test_path)).status == expected


def test_same_test_gives_the_same_outcome_every_time() -> None:
    driver = _driver(error_pattern="*infra*")
    paths = ["a.spec.js", "b_fail.spec.js", "infra.spec.js"] * 5
    first = [driver.run_test(_job(path)) for path in paths]
    second = [driver.run_test(_job(path)) for path in paths]
    assert first == second


def test_error_pattern_wins_over_fail_pattern_and_says_why() -> None:
    outcome = _driver(error_pattern="*infra*").run_test(_job("infra_fail.spec.js"))
    assert outcome.status == JobStatus.ERROR
    assert outcome.reason == ErrorReason.DRIVER_ERROR
    assert "SIM_ERROR_PATTERN" in outcome.log_tail


def test_empty_patterns_never_match() -> None:
    driver = _driver(fail_pattern="", error_pattern="")
    assert driver.run_test(_job("tests/fail.spec.js")).status == JobStatus.PASSED


def test_sleeps_the_configured_times_and_reports_them() -> None:
    sleeps: list[float] = []
    driver = _driver(sleeps=sleeps)
    driver.install("v1", "emulator")
    outcome = driver.run_test(_job("a.spec.js"))
    assert sleeps == [3.0, 1.5]
    assert outcome.duration_s == 1.5


def test_results_say_they_are_simulated() -> None:
    driver = _driver()
    outcome = driver.run_test(_job("tests/login_fail.spec.js"))
    assert driver.name == "simulator"
    assert driver.simulated is True
    assert "simulated" in outcome.log_tail
    assert "no real test ran" in outcome.log_tail
    assert outcome.reason is None


def test_a_range_gives_each_test_its_own_fixed_duration_within_it() -> None:
    sleeps: list[float] = []
    driver = SimulatorDriver(
        install_s=SimSeconds(1.0, 4.0),
        test_s=SimSeconds(0.05, 3.0),
        fail_pattern="",
        error_pattern="",
        sleep=sleeps.append,
    )
    paths = [f"tests/t{i}.spec.js" for i in range(400)]
    first = [driver.run_test(_job(path)).duration_s for path in paths]
    again = [driver.run_test(_job(path)).duration_s for path in reversed(paths)]
    assert first == list(reversed(again))  # a path's duration does not depend on order
    assert sleeps == first + again  # it sleeps what it reports
    assert all(0.05 <= d <= 3.0 for d in first)
    assert len(set(first)) == len(first)  # durations vary from test to test
    driver.install("v1", "emulator")
    driver.install("v2", "emulator")
    driver.install("v1", "emulator")
    installs = sleeps[-3:]
    assert installs[0] == installs[2] != installs[1]
    assert all(1.0 <= s <= 4.0 for s in installs)


def test_range_durations_are_log_uniform() -> None:
    # Log-uniform in [0.01, 100]: each decade holds about a quarter of the tests.
    seconds = SimSeconds(0.01, 100.0)
    durations = [simulated_seconds(seconds, f"tests/t{i}.spec.js") for i in range(4000)]
    decades = [0] * 4
    for duration in durations:
        decades[min(int(math.log10(duration) + 2), 3)] += 1
    assert all(850 <= count <= 1150 for count in decades), decades


def test_durations_are_the_same_in_another_process() -> None:
    # Not Python's salted hash(): another interpreter, with another hash seed, agrees.
    paths = [f"tests/t{i}.spec.js" for i in range(20)]
    code = (
        "from qgjob_agent.config import SimSeconds\n"
        "from qgjob_agent.drivers.simulator import simulated_seconds\n"
        f"print([simulated_seconds(SimSeconds(0.05, 3.0), p) for p in {paths!r}])"
    )
    here = [simulated_seconds(SimSeconds(0.05, 3.0), path) for path in paths]
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert ast.literal_eval(out) == here
