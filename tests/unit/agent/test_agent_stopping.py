"""`Stop`, the one way a running test stops early (its run timeout, a cancel of its job), and
how each driver honours it: the simulator stops waiting, the command driver kills the test's
process group; plus the simulator's first-attempt faults (SIM_FLAKY_PATTERN,
SIM_INSTALL_ERROR_PATTERN)."""

from __future__ import annotations

import itertools
import re
import shlex
import time
from pathlib import Path

import pytest

from qgjob_agent.drivers.base import JobRun
from qgjob_agent.drivers.command import CommandDriver
from qgjob_agent.drivers.simulator import SimulatorDriver
from qgjob_agent.errors import InstallError
from qgjob_agent.stopping import Stop, StopReason
from qgjob_agent.template import TEST_VARIABLES, CommandTemplate
from qgjob_contract.statuses import ErrorReason, JobStatus


class Clock:
    """A fake monotonic clock that `sleep` moves forward."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _stop(clock: Clock, timeout_s: float, cancel_at: float | None = None) -> Stop:
    return Stop(
        timeout_s,
        cancelled=lambda: cancel_at is not None and clock.now >= cancel_at,
        poll_s=0.5,
        monotonic=clock.monotonic,
        pause=clock.sleep,
    ).start()


def test_a_stop_says_nothing_before_its_deadline_then_timeout() -> None:
    clock = Clock()
    stop = _stop(clock, 2.0)
    assert stop.reason() is None
    clock.now += 1.99
    assert stop.reason() is None
    clock.now += 0.01
    assert stop.reason() is StopReason.TIMEOUT
    assert "2 s run timeout" in stop.describe(StopReason.TIMEOUT)


def test_a_cancel_is_looked_up_at_most_every_poll() -> None:
    clock = Clock()
    asked: list[float] = []
    stop = Stop(
        60.0,
        cancelled=lambda: asked.append(clock.now) is not None and False,
        poll_s=0.5,
        monotonic=clock.monotonic,
    ).start()
    for _ in range(10):  # 10 looks within 0.25 s: one lookup
        stop.reason()
        clock.now += 0.025
    clock.now += 0.3
    stop.reason()
    assert len(asked) == 2


def test_sleep_runs_the_whole_time_when_nothing_stops_it() -> None:
    clock = Clock()
    assert _stop(clock, 10.0).sleep(3.0) is None
    assert sum(clock.slept) == pytest.approx(3.0)
    assert max(clock.slept) <= 0.5  # it wakes up to look for a cancel


def test_sleep_ends_at_the_timeout() -> None:
    clock = Clock()
    assert _stop(clock, 1.5).sleep(30.0) is StopReason.TIMEOUT
    assert sum(clock.slept) == pytest.approx(1.5)


def test_sleep_ends_within_a_poll_of_a_cancel() -> None:
    clock = Clock()
    started = clock.now
    assert _stop(clock, 60.0, cancel_at=started + 2.2).sleep(30.0) is StopReason.CANCELLED
    assert 2.2 <= clock.now - started <= 2.2 + 0.5


def _sim(clock: Clock, **patterns: str) -> SimulatorDriver:
    return SimulatorDriver(
        install_s=1.0,
        test_s=5.0,
        fail_pattern="*fail*",
        error_pattern="",
        sleep=clock.sleep,
        **patterns,
    )


def _job(test_path: str = "tests/a.spec.js", attempt: int = 1) -> JobRun:
    return JobRun("j1", "org", test_path, "v1", "emulator", attempt=attempt)


def test_the_simulator_stops_a_test_at_its_run_timeout() -> None:
    clock = Clock()
    outcome = _sim(clock).run_test(_job(), _stop(clock, 2.0))
    assert outcome.status is JobStatus.ERROR
    assert outcome.reason is ErrorReason.TIMEOUT
    assert outcome.duration_s == pytest.approx(2.0)
    assert "2 s run timeout" in outcome.log_tail


def test_the_simulator_stops_a_cancelled_test() -> None:
    clock = Clock()
    outcome = _sim(clock).run_test(_job(), _stop(clock, 60.0, cancel_at=clock.now + 1.0))
    assert outcome.status is JobStatus.CANCELLED
    assert outcome.duration_s < 2.0
    assert "cancelled" in outcome.log_tail


def test_a_test_within_its_timeout_runs_its_simulated_time() -> None:
    clock = Clock()
    outcome = _sim(clock).run_test(_job(), _stop(clock, 6.0))
    assert outcome.status is JobStatus.PASSED
    assert sum(clock.slept) == pytest.approx(5.0)


@pytest.mark.parametrize(("attempt", "expected"), [(1, JobStatus.FAILED), (2, JobStatus.PASSED)])
def test_a_flaky_test_fails_on_its_first_attempt_only(attempt: int, expected: JobStatus) -> None:
    clock = Clock()
    driver = _sim(clock, flaky_pattern="*flaky*")
    outcome = driver.run_test(_job("tests/flaky.spec.js", attempt), _stop(clock, 60.0))
    assert outcome.status is expected
    assert driver.run_test(_job("tests/steady.spec.js", 1), _stop(clock, 60.0)).status is (
        JobStatus.PASSED
    )


def test_the_flaky_pattern_is_empty_by_default() -> None:
    clock = Clock()
    outcome = _sim(clock).run_test(_job("tests/flaky.spec.js"), _stop(clock, 60.0))
    assert outcome.status is JobStatus.PASSED


def test_an_install_matching_the_pattern_fails_on_a_first_attempt_only() -> None:
    clock = Clock()
    driver = _sim(clock, install_error_pattern="*bad-install*")
    with pytest.raises(InstallError, match="SIM_INSTALL_ERROR_PATTERN"):
        driver.install("1.0-bad-install", "emulator", attempt=1)
    driver.install("1.0-bad-install", "emulator", attempt=2)
    driver.install("1.0", "emulator", attempt=1)


def _command(command: str) -> CommandDriver:
    return CommandDriver(
        command=CommandTemplate.parse(command, TEST_VARIABLES, source="AGENT_COMMAND"),
        install_command=None,
        timeout_s=30.0,
        log_tail_chars=4000,
    )


def test_the_command_driver_kills_a_cancelled_test_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; wait"
    started = time.monotonic()
    stop = Stop(30.0, cancelled=lambda: time.monotonic() - started > 0.5, poll_s=0.1)
    outcome = _command(f"sh -c {shlex.quote(script)}").run_test(_job(), stop)
    assert outcome.status is JobStatus.CANCELLED
    assert time.monotonic() - started < 2.0  # stopped within the 2 s the issue asks
    assert "cancelled" in outcome.log_tail
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


def _gone(pid: int) -> bool:
    """True once the process no longer exists or is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_the_job_timeout_replaces_the_agents_for_the_command_driver() -> None:
    started = time.monotonic()
    outcome = _command("sleep 30").run_test(_job(), Stop(0.5, poll_s=0.1))
    assert outcome.status is JobStatus.ERROR
    assert outcome.reason is ErrorReason.TIMEOUT
    assert time.monotonic() - started < 5
    assert "0.5 s run timeout" in outcome.log_tail


@pytest.mark.parametrize("origin", [0.0, 100.0])
def test_a_sleep_ends_exactly_at_the_run_timeout_whatever_the_clock_origin(origin: float) -> None:
    """A monotonic clock's origin is arbitrary (0 on a fresh boot): the last pause is cut to
    the deadline, not a whole poll past it."""
    clock = Clock()
    clock.now = origin
    assert _stop(clock, 1.2).sleep(30.0) is StopReason.TIMEOUT
    assert sum(clock.slept) == pytest.approx(1.2)
    assert max(clock.slept) <= 0.5


def test_a_job_cancelled_before_its_test_starts_is_stopped_before_any_wait() -> None:
    clock = Clock()
    assert _stop(clock, 60.0, cancel_at=clock.now).sleep(30.0) is StopReason.CANCELLED
    assert clock.slept == []


def test_by_default_a_cancel_is_looked_up_as_often_as_the_readme_says() -> None:
    """README (Cancel): the agent looks the mark up every N s while the test runs; so a cancel
    stops the test within N s, and Redis is not asked more often."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"looks the mark up\s+in Redis every ([\d.]+) s", readme)
    assert found, "README no longer says how often a running job's cancel is looked up"
    every_s = float(found.group(1))
    clock = Clock()
    cancel_at = clock.now + 2.2
    asked: list[float] = []

    def cancelled() -> bool:
        asked.append(clock.now)
        return clock.now >= cancel_at

    stop = Stop(60.0, cancelled=cancelled, monotonic=clock.monotonic, pause=clock.sleep).start()
    assert stop.sleep(30.0) is StopReason.CANCELLED
    assert cancel_at <= clock.now <= cancel_at + every_s
    assert all(b - a >= every_s - 1e-9 for a, b in itertools.pairwise(asked)), asked


def test_a_pause_that_oversleeps_its_end_still_ends_the_sleep() -> None:
    """Real sleeps overrun: once the simulated time is over, the sleep ends; it never asks
    for a pause of negative length (time.sleep would raise)."""
    clock = Clock()

    def oversleep(seconds: float) -> None:
        assert seconds >= 0, f"a pause of {seconds} s"
        clock.sleep(seconds + 0.01)

    stop = _stop(clock, 60.0)
    assert stop.sleep(1.0, pause=oversleep) is None
    assert 1.0 <= sum(clock.slept) <= 1.0 + 0.5


def test_past_its_deadline_a_stop_lets_a_driver_wait_zero_seconds_never_less() -> None:
    """The command driver waits `slice_s` for its process: a negative wait is an error."""
    clock = Clock()
    stop = _stop(clock, 1.0)
    clock.now += 5.0
    assert stop.slice_s() == 0.0


def test_a_sleep_with_no_cancel_poll_still_moves_forward() -> None:
    """With `poll_s` 0 (a cancel looked up on every step) a sleep pauses a millisecond at a
    time: never a pause of 0 s, which would spin without the clock moving."""
    clock = Clock()

    def pause(seconds: float) -> None:
        assert seconds > 0, f"a pause of {seconds} s"
        assert len(clock.slept) < 1000, "the sleep does not end"
        clock.sleep(seconds)

    stop = Stop(60.0, poll_s=0.0, monotonic=clock.monotonic, pause=pause).start()
    assert stop.sleep(0.05) is None
    assert all(0 < s <= 0.001 + 1e-12 for s in clock.slept), clock.slept
    assert sum(clock.slept) == pytest.approx(0.05)


def test_a_stop_that_was_never_started_has_no_deadline_to_report() -> None:
    with pytest.raises(AttributeError):
        Stop(1.0).reason()
    with pytest.raises(TypeError):
        Stop(1.0, _reason=None)  # type: ignore[call-arg]
