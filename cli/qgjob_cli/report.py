"""Following a wait to its end: live progress, the final report, JUnit, the exit code.

Shared by `run`, `wait` and `rerun`; `submit --wait` shares the wait loop and the JUnit
writer but keeps its one-line-per-job output.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from qgjob_cli import formatting, junit
from qgjob_cli.client import JobRecord
from qgjob_cli.context import State, error_line, warning_line
from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.progress import Progress, duration, failure_line
from qgjob_cli.vocabulary import PASSED
from qgjob_cli.waiting import WaitResult, Watch, wait_for

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class WaitOptions:
    timeout: float | None
    poll_interval: float
    as_json: bool
    junit_path: Path | None
    quiet: bool


def wait_options(command: F) -> F:
    """The options of every command that waits, gathered into one `options` argument."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        timeout: float | None,
        poll_interval: float,
        as_json: bool,
        junit_path: Path | None,
        quiet: bool,
        **kwargs: Any,
    ) -> Any:
        options = WaitOptions(timeout, poll_interval, as_json, junit_path, quiet)
        return command(*args, options=options, **kwargs)

    decorators = [
        click.option(
            "--timeout",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Give up waiting after SECONDS (exit 7). Default: as long as it takes.",
        ),
        click.option(
            "--poll-interval",
            type=click.FloatRange(min=0.1),
            default=1.0,
            show_default=True,
            metavar="SECONDS",
            help="Seconds between polls (one request per run per poll).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
        click.option(
            "--junit",
            "junit_path",
            type=click.Path(dir_okay=False, writable=True, path_type=Path),
            metavar="PATH",
            help="Write a JUnit XML report to PATH (also when the wait times out).",
        ),
        click.option(
            "--quiet", "-q", is_flag=True, help="No progress; print only the final summary."
        ),
    ]
    result: Any = wrapper
    for decorator in reversed(decorators):
        result = decorator(result)
    return result  # type: ignore[no-any-return]


def follow(state: State, watch: Watch, options: WaitOptions) -> ExitCode:
    """Wait for everything `watch` follows, showing progress; report; return the exit code."""
    deps = state.deps
    progress = Progress(
        # color=True: keep the erase-line codes; they are only written to a terminal.
        write=lambda text: click.echo(text, err=True, nl=False, color=True),
        clock=deps.clock,
        tty=deps.isatty(),
        quiet=options.quiet or options.as_json,
    )
    last: list[JobRecord] = []

    def seen(jobs: list[JobRecord]) -> None:
        last[:] = jobs
        progress.on_poll(jobs)

    def retrying(error: Exception, pause_s: float) -> None:
        progress.close()
        warning_line(f"retrying in {pause_s:.3g} s: {error}")

    started = deps.clock()
    try:
        result = wait_for(
            watch.poll,
            timeout_s=options.timeout,
            poll_interval_s=options.poll_interval,
            clock=deps.clock,
            sleep=deps.sleep,
            on_poll=seen,
            on_final=progress.on_final,
            on_retry=retrying,
        )
    except BaseException:
        # Unreachable server, Ctrl-C, ...: the report still says what was known.
        progress.close()
        if last:
            _write_junit(state, watch, last, options)
        raise
    progress.close()
    _write_junit(state, watch, result.jobs, options)
    _print_result(watch, result, options, elapsed_s=deps.clock() - started)
    if result.timed_out:
        error_line(
            f"gave up waiting after {options.timeout:g} s: {len(result.unfinished)} of "
            f"{len(result.jobs)} jobs not final"
        )
    return result.exit_code


def _write_junit(state: State, watch: Watch, jobs: list[JobRecord], options: WaitOptions) -> None:
    if options.junit_path is not None:
        tree = junit.build(jobs, watch.runs.values(), api_url=state.api_url)
        junit.write(options.junit_path, tree)


def _print_result(watch: Watch, result: WaitResult, options: WaitOptions, elapsed_s: float) -> None:
    if options.as_json:
        body = {
            "runs": list(watch.runs.values()),
            "jobs": [job for job in result.jobs if job["job_id"] in set(watch.job_ids)],
            "timed_out": result.timed_out,
            "exit_code": int(result.exit_code),
        }
        click.echo(formatting.to_json(body))
        return
    if not options.quiet:
        for job in result.jobs:
            if job["status"] != PASSED:
                click.echo(failure_line(job))
    names = ", ".join(f"run {run_id}" for run_id in watch.run_ids)
    if watch.job_ids:
        names = ", ".join(filter(None, [names, f"{len(watch.job_ids)} job(s)"]))
    click.echo(f"{names}: {formatting.summary(result.jobs)} in {duration(elapsed_s)}")
