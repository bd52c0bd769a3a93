"""Job control in the CLI: `qgjob cancel`, the job options of `submit` and `run`
(--retries, --test-timeout, --queue-ttl) and their idempotent, retried submission.

Every submission carries an `Idempotency-Key` (a fresh uuid, or --idempotency-key) and is
retried with that same key when the server could not be reached or answered 5xx, or while
another request with the key is still in progress (409): the server then answers the first
request's jobs instead of creating new ones, so a retried CI step never runs a suite twice.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import click

from qgjob_cli import formatting
from qgjob_cli.context import State
from qgjob_cli.errors import QgjobError
from qgjob_cli.exit_codes import ExitCode, epilog

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# A submission is sent at most this many times, pausing 1, 2, 4 s between tries.
SUBMIT_ATTEMPTS = 4
FIRST_SUBMIT_PAUSE_S = 1.0
MAX_RETRIES = 5


def job_options(command: F) -> F:
    """--retries, --test-timeout, --queue-ttl and --idempotency-key, gathered into
    `job_options` (the body fields to send: only those given) and `idempotency_key`."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        retries: int | None,
        test_timeout: float | None,
        queue_ttl: float | None,
        idempotency_key: str | None,
        **kwargs: Any,
    ) -> Any:
        given = {"retries": retries, "timeout_s": test_timeout, "queue_ttl_s": queue_ttl}
        options = {name: value for name, value in given.items() if value is not None}
        key = idempotency_key or str(uuid.uuid4())
        return command(*args, job_options=options, idempotency_key=key, **kwargs)

    decorators = [
        click.option(
            "--retries",
            type=click.IntRange(0, MAX_RETRIES),
            metavar="N",
            help="Rerun a test that failed up to N times (0-5; server default 0): one that "
            "fails then passes ends passed, marked flaky.",
        ),
        click.option(
            "--test-timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Stop each test after SECONDS (it ends error, reason timeout). Default: the "
            "agents' AGENT_TEST_TIMEOUT_S. (--timeout is how long the CLI waits.)",
        ),
        click.option(
            "--queue-ttl",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="A job no agent took within SECONDS ends error, reason expired. Default: "
            "the scheduler's JOB_QUEUE_TTL_S.",
        ),
        click.option(
            "--idempotency-key",
            metavar="KEY",
            help="Sent as Idempotency-Key (default: a fresh uuid): the same KEY with the "
            "same submission within 24 h creates nothing and returns the first one's jobs.",
        ),
    ]
    result: Any = wrapper
    for decorator in reversed(decorators):
        result = decorator(result)
    return result  # type: ignore[no-any-return]


def submit_retrying(state: State, send: Callable[[], T]) -> T:
    """`send()` (which carries one Idempotency-Key), again after 1, 2, 4 s while it fails
    with a transient error; the last error ends it."""
    pause = FIRST_SUBMIT_PAUSE_S
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        try:
            return send()
        except QgjobError as error:
            if not error.transient or attempt == SUBMIT_ATTEMPTS:
                raise
            # silent: a command that fails still prints one line (its last error)
            state.deps.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def cancel_exit_code(answers: list[dict[str, Any]], *, named_ids: bool) -> ExitCode:
    """5 if an id was unknown; else 9 if a job named was already final (or, for a run,
    nothing was left to cancel); else 0 (pure)."""
    if any(answer.get("not_found") for answer in answers):
        return ExitCode.NOT_FOUND
    for answer in answers:
        by_run = "run_id" in answer
        if (not by_run and named_ids and answer.get("already_final")) or (
            by_run and not answer.get("requested")
        ):
            return ExitCode.ALREADY_FINAL
    return ExitCode.OK


def cancel_lines(answer: dict[str, Any]) -> list[str]:
    """One line per job of a cancel answer: requested, already final, or not found."""
    lines = [f"cancel requested: {job_id}" for job_id in answer.get("requested") or []]
    lines += [
        f"already final ({item.get('status')}): {item.get('job_id')}"
        for item in answer.get("already_final") or []
    ]
    lines += [f"not found: {job_id}" for job_id in answer.get("not_found") or []]
    if "run_id" in answer and not answer.get("requested"):
        lines.append(f"nothing to cancel in run {answer['run_id']}: every job is final")
    return lines


@click.command(
    epilog=epilog(
        "  qgjob cancel 1edd7f31-e4a9-472b-a760-d65ed9b1f7b0 5b185ae0-...\n"
        "  qgjob cancel --run RUN_ID                # every unfinished job of the run"
    )
)
@click.argument("job_ids", nargs=-1, metavar="JOB_ID...")
@click.option("--run", "run_id", metavar="RUN_ID", help="Cancel every unfinished job of a run.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer(s) as JSON.")
@click.pass_context
def cancel(
    ctx: click.Context, *, job_ids: tuple[str, ...], run_id: str | None, as_json: bool
) -> None:
    """Ask for the cancel of jobs (by id) or of every unfinished job of a run (--run).

    A queued job never runs, an assigned one is taken back, a running one is stopped by its
    agent; each ends `cancelled`. The command returns once the server accepted the request
    (it does not wait for the jobs to end: `qgjob wait` does). Exit 0 when every job named
    had its cancel requested, 9 when one was already final (nothing changed for it), 5 when
    an id is unknown.
    """
    if not job_ids and run_id is None:
        raise click.UsageError("name JOB_IDs or --run RUN_ID", ctx)
    state: State = ctx.obj
    answers = []
    if job_ids:
        answers.append(state.client.cancel_jobs(job_ids=list(dict.fromkeys(job_ids))))
    if run_id is not None:
        answers.append(state.client.cancel_jobs(run_id=run_id))
    if as_json:
        click.echo(formatting.to_json(answers[0] if len(answers) == 1 else {"answers": answers}))
    else:
        for answer in answers:
            for line in cancel_lines(answer):
                click.echo(line)
    ctx.exit(cancel_exit_code(answers, named_ids=bool(job_ids)))
