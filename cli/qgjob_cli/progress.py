"""Live progress of a wait, on stderr (stdout keeps the results, or the --json document).

On a terminal: ONE line, redrawn after every poll (counts per status, elapsed, time left).
Elsewhere (a CI log): the same line as plain text at most every PLAIN_EVERY_S seconds, so a
log stays readable and still shows the wait is alive. In both, each job that ends other than
passed gets its own line as soon as it is seen, so a failure shows up while the suite runs.
Written with click and ANSI `\\r` + erase-line only: the CLI installs into other projects'
CI with nothing but click and requests.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable

from qgjob_cli.client import JobRecord
from qgjob_cli.vocabulary import PASSED, STATUSES

PLAIN_EVERY_S = 10.0
_ERASE_LINE = "\r\x1b[2K"


def duration(seconds: float) -> str:
    """'8s', '1m05s', '2h03m'."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def counts_text(jobs: list[JobRecord]) -> str:
    """'3 passed, 1 failed, 2 running': statuses in lifecycle order, the unknown last."""
    found = Counter(job["status"] for job in jobs)
    order = [*STATUSES, *sorted(set(found) - set(STATUSES))]
    return ", ".join(f"{found[status]} {status}" for status in order if found[status])


def status_line(jobs: list[JobRecord], elapsed_s: float) -> str:
    """'4/6 final | 3 passed, 1 failed, 2 running | 12s elapsed, about 6s left'.

    The time left assumes the jobs still to finish take as long, on average, as those that
    did so far; it is left out until one has.
    """
    final = sum(1 for job in jobs if job["final"])
    text = f"{final}/{len(jobs)} final | {counts_text(jobs)} | {duration(elapsed_s)} elapsed"
    if 0 < final < len(jobs):
        text += f", about {duration(elapsed_s / final * (len(jobs) - final))} left"
    return text


def failure_line(job: JobRecord) -> str:
    """'FAILED tests/x.spec.js [emulator] on emulator-1 after 0.50s: <reason>'."""
    result = job.get("result") or {}
    text = f"{job['status'].upper()} {job.get('test_path', job['job_id'])} [{job.get('target')}]"
    if job.get("assigned_agent"):
        text += f" on {job['assigned_agent']}"
    seconds = result.get("duration_s")
    if isinstance(seconds, int | float):
        text += f" after {seconds:.2f}s"
    if result.get("reason"):
        text += f": {result['reason']}"
    return text


class Progress:
    """Receives the wait's callbacks and draws them; `write` takes text without a newline."""

    def __init__(
        self,
        *,
        write: Callable[[str], None],
        clock: Callable[[], float],
        tty: bool,
        quiet: bool = False,
        every_s: float = PLAIN_EVERY_S,
    ) -> None:
        self._write = write
        self._clock = clock
        self._tty = tty
        self._quiet = quiet
        self._every_s = every_s
        self._started = clock()
        self._last_plain: float | None = None
        self._drawn = False  # a TTY status line is on screen

    def line(self, text: str) -> None:
        """A line of its own (the TTY status line is redrawn at the next poll)."""
        if self._quiet:
            return
        self._clear()
        self._write(text + "\n")

    def on_final(self, job: JobRecord) -> None:
        if job["status"] != PASSED:
            self.line(failure_line(job))

    def on_poll(self, jobs: list[JobRecord]) -> None:
        if self._quiet or not jobs:
            return
        now = self._clock()
        text = status_line(jobs, now - self._started)
        if self._tty:
            width = shutil.get_terminal_size((100, 24)).columns - 1
            self._write(_ERASE_LINE + text[:width])
            self._drawn = True
            return
        done = all(job["final"] for job in jobs)
        if done or self._last_plain is None or now - self._last_plain >= self._every_s:
            self._write(text + "\n")
            self._last_plain = now

    def close(self) -> None:
        """Leave the terminal on a clean line."""
        self._clear()

    def _clear(self) -> None:
        if self._drawn:
            self._write(_ERASE_LINE)
            self._drawn = False
