"""Commands for suites: `run`, `wait`, `rerun` and `runs`."""

from __future__ import annotations

import glob
import uuid
from pathlib import Path
from typing import Any

import click

from qgjob_cli import control, formatting
from qgjob_cli.client import RunRecord
from qgjob_cli.context import State, warning_line
from qgjob_cli.errors import NotFound
from qgjob_cli.exit_codes import epilog
from qgjob_cli.report import WaitOptions, follow, wait_options
from qgjob_cli.vocabulary import CANCELLED, DEFAULT_TARGET, PASSED, TARGETS
from qgjob_cli.waiting import Watch

DEFAULT_PRIORITY = 1
_GLOB_CHARS = frozenset("*?[")
_JOB_OPTIONS = ("retries", "timeout_s", "queue_ttl_s")
_RUN_COLUMNS = ("RUN ID", "CREATED", "ORG", "APP VERSION", "TARGETS", "JOBS", "STATE")

org_option = click.option(
    "--org-id",
    envvar="QGJOB_ORG_ID",
    show_envvar=True,
    required=True,
    help="Organisation the jobs belong to.",
)


def expand_tests(patterns: list[str]) -> list[str]:
    """Test paths from paths and globs (`**` recursive), in order, each once.

    A path without glob characters is sent as it is (the tests live where the agents run
    them, not necessarily here); a glob must match at least one file here.
    """
    found: list[str] = []
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise click.BadParameter(f"{pattern!r} matches no file", param_hint="TESTS")
            found += [Path(match).as_posix() for match in matches]
        else:
            found.append(pattern)
    return list(dict.fromkeys(found))


def _read_tests_from(path: str) -> list[str]:
    """One path or glob per line; blank lines and `#` comments are skipped; `-` is stdin."""
    with click.open_file(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    return [line for line in lines if line and not line.startswith("#")]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _start_run(
    state: State, body: dict[str, Any], options: WaitOptions, *, idempotency_key: str
) -> int:
    run = control.submit_retrying(
        state, lambda: state.client.create_run(body, idempotency_key=idempotency_key)
    )
    for warning in state.client.warnings:
        warning_line(warning)
    if not options.quiet and not options.as_json:
        tests, targets = len(run.get("tests") or []), len(run.get("targets") or [])
        click.echo(
            f"run {run['run_id']}: {_count(len(run['jobs']), 'job')} ({_count(tests, 'test')}"
            f" x {_count(targets, 'target')}), app version {run.get('app_version_id')}",
            err=True,
        )
    return follow(state, Watch(state.client, run_ids=[run["run_id"]]), options)


@click.command(
    epilog=epilog(
        "  qgjob run --org-id=qualgent --app-version-id=xyz123 'tests/**/*.spec.js'\n"
        "  qgjob run --org-id=qualgent --app-version-id=xyz123 --target=emulator \\\n"
        "      --target=device --tests-from=suite.txt --timeout=900 --junit=report.xml"
    )
)
@org_option
@click.option("--app-version-id", required=True, help="App build the tests run against.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    default=(DEFAULT_TARGET,),
    show_default=True,
    help=f"Kind of device ({', '.join(TARGETS)}); repeat for a matrix: one job per (test, target).",
)
@click.option("--priority", type=int, default=DEFAULT_PRIORITY, show_default=True)
@click.option(
    "--tests-from",
    metavar="FILE",
    help="Read test paths or globs from FILE, one per line ('-' for stdin).",
)
@click.argument("tests", nargs=-1)
@wait_options
@control.job_options
@click.pass_context
def run(
    ctx: click.Context,
    *,
    org_id: str,
    app_version_id: str,
    targets: tuple[str, ...],
    priority: int,
    tests_from: str | None,
    tests: tuple[str, ...],
    options: WaitOptions,
    job_options: dict[str, Any],
    idempotency_key: str,
) -> None:
    """Submit TESTS (paths or globs) as one run, show progress until it ends, and exit
    with a code that tells how it went.

    Progress goes to stderr: on a terminal one updating line, in a CI log a plain line at
    most every 10 s, and a line for each job that ends other than passed as soon as it
    does. The summary (and --json) goes to stdout.
    """
    patterns = list(tests) + (_read_tests_from(tests_from) if tests_from else [])
    paths = expand_tests(patterns)
    if not paths:
        raise click.UsageError("no tests given: name TESTS or --tests-from FILE", ctx)
    body = {
        "org_id": org_id,
        "app_version_id": app_version_id,
        "targets": list(dict.fromkeys(targets)),
        "tests": paths,
        "priority": priority,
        **job_options,
    }
    ctx.exit(_start_run(ctx.obj, body, options, idempotency_key=idempotency_key))


@click.command(
    epilog=epilog(
        "  qgjob wait 3f0d6c1e-...            # a run id or a job id\n"
        "  qgjob wait RUN_ID --junit=report.xml --timeout=600"
    )
)
@click.argument("ids", nargs=-1, required=True, metavar="RUN_OR_JOB_ID...")
@wait_options
@click.pass_context
def wait(ctx: click.Context, *, ids: tuple[str, ...], options: WaitOptions) -> None:
    """Wait for runs and jobs (given by id) to end, with the same progress and exit code
    as `qgjob run`."""
    state: State = ctx.obj
    run_ids, job_ids = [], []
    for item in dict.fromkeys(ids):
        try:
            state.client.get_run(item)
        except NotFound:
            job_ids.append(item)  # not a run: the first poll finds out whether it is a job
        else:
            run_ids.append(item)
    ctx.exit(follow(state, Watch(state.client, run_ids=run_ids, job_ids=job_ids), options))


@click.command(
    epilog=epilog(
        "  qgjob rerun RUN_ID --failed              # only what failed or errored\n"
        "  qgjob rerun RUN_ID --failed --junit=rerun.xml"
    )
)
@click.argument("run_id")
@click.option(
    "--failed",
    "only_failed",
    is_flag=True,
    help="Only the tests that ended failed or error (on any target).",
)
@wait_options
@click.pass_context
def rerun(ctx: click.Context, *, run_id: str, only_failed: bool, options: WaitOptions) -> None:
    """Run a run's tests again as a new run: same org, build, targets and priority.

    With --failed only the tests that ended failed or error run again, on every target of
    the run (exit 0 at once when there is none).
    """
    state: State = ctx.obj
    old = state.client.get_run(run_id)
    tests = list(old.get("tests") or [])
    if only_failed:
        bad = {job.get("test_path") for job in old["jobs"] if _failed_or_errored(job)}
        tests = [test for test in tests if test in bad]
        if not tests:
            click.echo(f"nothing to rerun: no test failed or errored in run {run_id}", err=True)
            return
    body = {
        "org_id": old["org_id"],
        "app_version_id": old["app_version_id"],
        "targets": old["targets"],
        "tests": tests,
        "priority": old.get("priority", DEFAULT_PRIORITY),
        # the job options the run was given (a server before job control shows none)
        **{name: old[name] for name in _JOB_OPTIONS if old.get(name) not in (None, 0)},
    }
    ctx.exit(_start_run(state, body, options, idempotency_key=str(uuid.uuid4())))


def _failed_or_errored(job: dict[str, Any]) -> bool:
    """Ended failed, error, or a final status this CLI does not know."""
    return bool(job["final"]) and job["status"] not in (PASSED, CANCELLED)


@click.command(
    "runs", epilog=epilog("  qgjob runs --org-id=qualgent --limit=10\n  qgjob runs --json")
)
@click.option("--org-id", envvar="QGJOB_ORG_ID", show_envvar=True, help="Only this org's runs.")
@click.option("--limit", type=click.IntRange(min=1, max=100), help="At most this many runs.")
@click.option("--cursor", help="Continue from a previous page's next cursor.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@click.pass_obj
def list_runs(
    state: State, *, org_id: str | None, limit: int | None, cursor: str | None, as_json: bool
) -> None:
    """List runs, newest first: id, creation time, build, targets, size and state."""
    page = state.client.list_runs(org_id=org_id, limit=limit, cursor=cursor)
    if as_json:
        click.echo(formatting.to_json({"runs": page.runs, "next_cursor": page.next_cursor}))
        return
    click.echo(runs_table(page.runs) if page.runs else "no runs")
    if page.next_cursor is not None:
        click.echo(f"more runs: add --cursor {page.next_cursor}", err=True)


def _run_state(run: RunRecord) -> str:
    counts = run.get("counts") or {}
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return ("finished: " if run.get("finished") else "") + (parts or "-")


def runs_table(runs: list[RunRecord]) -> str:
    rows = [list(_RUN_COLUMNS)]
    for run in runs:
        rows.append(
            [
                str(run["run_id"]),
                str(run.get("created_at") or "-"),
                str(run.get("org_id") or "-"),
                str(run.get("app_version_id") or "-"),
                ",".join(run.get("targets") or []) or "-",
                str(run.get("total", "-")),
                _run_state(run),
            ]
        )
    return formatting.table(rows)
