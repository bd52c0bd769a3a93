"""Edges of the live progress that `make mutation` found untested: clock-like durations at
their boundaries, what the status and failure lines leave out, and how the one redrawn
terminal line and the plain log lines are written (quiet, width, erasing, the 10 s pace)."""

from __future__ import annotations

from typing import Any

import pytest

from qgjob_cli.progress import (
    PLAIN_EVERY_S,
    Progress,
    counts_text,
    duration,
    failure_line,
    status_line,
)

ERASE = "\r\x1b[2K"


def _job(job_id: str, status: str, final: bool, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "status": status, "final": final, **extra}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(59.49, "59s"), (59.5, "1m00s"), (60, "1m00s"), (61, "1m01s"), (3660, "1h01m")],
)
def test_a_minute_reads_as_minutes_from_60_seconds_on(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_statuses_no_job_has_are_left_out_and_unknown_ones_sorted_last() -> None:
    jobs = [_job("1", "zz-new", True), _job("2", "aa-new", True), _job("3", "running", False)]
    assert counts_text(jobs) == "1 running, 1 aa-new, 1 zz-new"
    assert counts_text([]) == ""


def test_no_time_left_is_guessed_once_every_job_is_final() -> None:
    jobs = [_job("1", "passed", True), _job("2", "failed", True)]
    assert status_line(jobs, 30) == "2/2 final | 1 passed, 1 failed | 30s elapsed"


def test_the_time_left_scales_with_the_jobs_still_to_finish() -> None:
    """1 of 4 final after 10 s: three more at 10 s each."""
    jobs = [_job("1", "passed", True)] + [_job(str(i), "running", False) for i in range(3)]
    assert status_line(jobs, 10).endswith("| 10s elapsed, about 30s left")


def test_a_failure_line_leaves_out_what_is_not_known() -> None:
    """No agent, no duration (or one that is not a number), no reason: none is printed; a
    job without a test path is named by its id."""
    bare = _job("job-1", "cancelled", True, target="device", result=None)
    assert failure_line(bare) == "CANCELLED job-1 [device]"
    odd = _job(
        "job-2",
        "error",
        True,
        test_path="tests/a.js",
        target="emulator",
        assigned_agent="",
        result={"duration_s": "1.5", "reason": ""},
    )
    assert failure_line(odd) == "ERROR tests/a.js [emulator]"
    whole = _job(
        "job-3", "failed", True, test_path="t.js", target="emulator", result={"duration_s": 2}
    )
    assert failure_line(whole) == "FAILED t.js [emulator] after 2.00s"


class Screen:
    """What Progress writes, and a clock the test moves."""

    def __init__(self) -> None:
        self.text = ""
        self.now = 100.0

    def write(self, text: str) -> None:
        self.text += text

    def clock(self) -> float:
        return self.now


def _progress(screen: Screen, *, tty: bool, quiet: bool = False) -> Progress:
    return Progress(write=screen.write, clock=screen.clock, tty=tty, quiet=quiet)


def test_quiet_writes_nothing_at_all() -> None:
    screen = Screen()
    progress = _progress(screen, tty=True, quiet=True)
    progress.on_poll([_job("1", "running", False)])
    progress.on_final(_job("1", "failed", True, target="emulator"))
    progress.line("a line")
    progress.close()
    assert screen.text == ""


def test_a_poll_with_no_jobs_draws_nothing() -> None:
    screen = Screen()
    progress = _progress(screen, tty=False)
    progress.on_poll([])
    assert screen.text == ""
    # the first poll with jobs is still the first status line of a log
    progress.on_poll([_job("1", "running", False)])
    assert screen.text == "0/1 final | 1 running | 0s elapsed\n"


def test_on_a_terminal_the_status_line_is_cut_to_the_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One column is kept free so the line never wraps; without a known size (not a
    terminal, no COLUMNS) the width is 100."""
    jobs = [_job(str(i), "running", False) for i in range(3)]
    full = status_line(jobs, 0)
    monkeypatch.setenv("COLUMNS", "20")
    screen = Screen()
    _progress(screen, tty=True).on_poll(jobs)
    assert screen.text == ERASE + full[:19]
    monkeypatch.delenv("COLUMNS")
    long_jobs = [_job(str(i), f"status-{i:03d}", False) for i in range(12)]
    screen = Screen()
    _progress(screen, tty=True).on_poll(long_jobs)
    assert len(status_line(long_jobs, 0)) > 99
    assert screen.text == ERASE + status_line(long_jobs, 0)[:99]


def test_a_line_of_its_own_first_erases_the_drawn_status_line_once() -> None:
    screen = Screen()
    progress = _progress(screen, tty=True)
    progress.on_poll([_job("1", "running", False)])
    screen.text = ""
    progress.line("first")
    progress.line("second")
    assert screen.text == ERASE + "first\nsecond\n"
    screen.text = ""
    progress.close()
    assert screen.text == ""  # nothing drawn since: nothing to erase


def test_close_erases_a_drawn_line_and_nothing_in_a_log() -> None:
    screen = Screen()
    tty = _progress(screen, tty=True)
    tty.on_poll([_job("1", "running", False)])
    screen.text = ""
    tty.close()
    assert screen.text == ERASE
    screen = Screen()
    log = _progress(screen, tty=False)
    log.on_poll([_job("1", "running", False)])
    screen.text = ""
    log.close()
    assert screen.text == ""


def test_in_a_log_the_status_line_comes_every_10_seconds_and_at_the_end() -> None:
    screen = Screen()
    progress = _progress(screen, tty=False)
    running = [_job("1", "running", False)]
    progress.on_poll(running)  # the first: at once
    screen.now += PLAIN_EVERY_S - 0.5
    progress.on_poll(running)  # 9.5 s later: not yet
    screen.now += 0.5
    progress.on_poll(running)  # 10 s after the last line: due
    screen.now += 1
    progress.on_poll([_job("1", "passed", True)])  # all final: always shown
    assert screen.text.splitlines() == [
        "0/1 final | 1 running | 0s elapsed",
        "0/1 final | 1 running | 10s elapsed",
        "1/1 final | 1 passed | 11s elapsed",
    ]
    assert PLAIN_EVERY_S == 10.0


def test_only_jobs_that_did_not_pass_get_a_line_of_their_own() -> None:
    screen = Screen()
    progress = _progress(screen, tty=False)
    progress.on_final(_job("1", "passed", True, test_path="ok.js", target="emulator"))
    assert screen.text == ""
    progress.on_final(_job("2", "error", True, test_path="bad.js", target="emulator"))
    assert screen.text == "ERROR bad.js [emulator]\n"


def test_no_time_left_is_guessed_for_a_large_run_that_has_ended() -> None:
    jobs = [_job(str(i), "passed", True) for i in range(300)]
    assert status_line(jobs, 60) == "300/300 final | 300 passed | 1m00s elapsed"


def test_elapsed_time_counts_from_the_start_whatever_the_clock_origin() -> None:
    """The clock is monotonic: its origin is arbitrary (here 7 s)."""
    screen = Screen()
    screen.now = 7.0
    progress = _progress(screen, tty=False)
    screen.now += 10
    progress.on_poll([_job("1", "running", False)])
    assert screen.text == "0/1 final | 1 running | 10s elapsed\n"


def test_in_a_log_a_status_line_overdue_between_polls_comes_at_the_next_poll() -> None:
    """Polls 6 s apart: no poll falls exactly 10 s after the last line; the one at 12 s
    writes it."""
    screen = Screen()
    progress = _progress(screen, tty=False)
    running = [_job("1", "running", False)]
    for _ in range(3):
        progress.on_poll(running)
        screen.now += 6
    assert [line.rsplit("| ", 1)[1] for line in screen.text.splitlines()] == [
        "0s elapsed",
        "12s elapsed",
    ]


def test_the_time_left_uses_the_exact_mean_not_one_rounded_per_job() -> None:
    """4 of 6 final after 10 s: 2.5 s each on average, so 2 more take 5 s (a mean rounded
    down to 2 s a job would say 4 s)."""
    jobs = [_job(str(i), "passed", True) for i in range(4)]
    jobs += [_job(str(i), "running", False) for i in range(4, 6)]
    assert status_line(jobs, 10).endswith("| 10s elapsed, about 5s left")


def test_a_job_ending_in_a_final_status_this_cli_does_not_know_gets_a_line_too() -> None:
    """A newer server may add a final status (vocabulary.py): anything but passed is shown,
    whatever its name ('timed_out' sorts after 'passed')."""
    screen = Screen()
    progress = _progress(screen, tty=False)
    progress.on_final(_job("1", "timed_out", True, test_path="slow.js", target="device"))
    assert screen.text == "TIMED_OUT slow.js [device]\n"


def test_progress_is_shown_unless_quiet_is_asked_for() -> None:
    """quiet is opt-in: a Progress made without it draws."""
    screen = Screen()
    progress = Progress(write=screen.write, clock=screen.clock, tty=False)
    progress.on_poll([_job("1", "running", False)])
    progress.on_final(_job("1", "failed", True, test_path="x.js", target="emulator"))
    assert screen.text == "0/1 final | 1 running | 0s elapsed\nFAILED x.js [emulator]\n"


def test_in_a_log_the_10_second_pace_holds_whatever_the_clock_origin() -> None:
    """The clock is monotonic, its origin arbitrary (here 5 s): with polls every 5 s a line
    comes every second poll, 10 s after the one before."""
    screen = Screen()
    screen.now = 5.0
    progress = _progress(screen, tty=False)
    running = [_job("1", "running", False)]
    for _ in range(5):
        progress.on_poll(running)
        screen.now += 5
    assert [line.rsplit("| ", 1)[1] for line in screen.text.splitlines()] == [
        "0s elapsed",
        "10s elapsed",
        "20s elapsed",
    ]
