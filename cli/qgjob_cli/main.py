"""The `qgjob` command: click commands wiring the HTTP client, the wait loop and the output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from qgjob_cli import admin, control, formatting, junit, suite
from qgjob_cli.client import RATE_LIMIT_WAIT_S, Client, JobRecord
from qgjob_cli.context import Deps, State, error_line, warning_line
from qgjob_cli.errors import QgjobError
from qgjob_cli.exit_codes import ExitCode, epilog
from qgjob_cli.vocabulary import DEFAULT_TARGET, STATUSES, TARGETS
from qgjob_cli.waiting import Watch, wait_for

__all__ = ["Deps", "cli"]

DEFAULT_API_URL = "http://localhost:5000"
DEFAULT_PRIORITY = 1


def _fail(message: str, code: int) -> NoReturn:
    error_line(message)
    raise click.exceptions.Exit(code)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Every failure becomes one `qgjob: error: ...` line on stderr and its exit code."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # bare `qgjob`: click prints the help
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _fail(exc.format_message() + hint, exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except QgjobError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERRUPTED)


class _Group(click.Group):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_errors():
            return super().invoke(ctx)


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value


_EXAMPLES = """\
  qgjob run --org-id=qualgent --app-version-id=xyz123 'tests/**/*.spec.js' --junit=report.xml
  qgjob run --org-id=qualgent --app-version-id=xyz123 --target=emulator --target=device \\
      tests/login.spec.js tests/checkout.spec.js --timeout=900
  qgjob wait RUN_ID
  qgjob rerun RUN_ID --failed
  qgjob runs --org-id=qualgent"""


@click.group(cls=_Group, epilog=epilog(_EXAMPLES))
@click.option(
    "--api-url",
    envvar="QGJOB_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    show_envvar=True,
    callback=_check_url,
    help="Base URL of the qgjob API.",
)
@click.option(
    "--token",
    envvar="QGJOB_TOKEN",
    show_envvar=True,
    help="Sent as 'Authorization: Bearer TOKEN' when set (prefer the variable: a flag "
    "shows in the process list).",
)
@click.option(
    "--rate-limit-wait",
    "rate_limit_wait_s",
    envvar="QGJOB_RATE_LIMIT_WAIT_S",
    type=click.FloatRange(min=0),
    default=RATE_LIMIT_WAIT_S,
    show_default=True,
    show_envvar=True,
    help="Seconds one request may wait in all on the server's rate limit (HTTP 429, as its "
    "Retry-After says) before the command gives up with exit code 10.",
)
@click.version_option(package_name="qgjob", prog_name="qgjob")
@click.pass_context
def cli(ctx: click.Context, api_url: str, token: str | None, rate_limit_wait_s: float) -> None:
    """Submit test suites to qgjob, follow them live, and end with an exit code CI acts on.

    Settings come from the flags, then the environment (QGJOB_API_URL, QGJOB_TOKEN,
    QGJOB_ORG_ID), then the defaults. Every error is one line on stderr,
    `qgjob: error: ...`; --json prints machine-readable JSON on stdout.
    """
    deps = ctx.obj if isinstance(ctx.obj, Deps) else Deps()
    client = Client(api_url, session=deps.session, token=token, rate_limit_wait_s=rate_limit_wait_s)
    ctx.call_on_close(client.close)
    ctx.obj = State(client=client, deps=deps, api_url=api_url)


cli.add_command(suite.run)
cli.add_command(suite.wait)
cli.add_command(suite.rerun)
cli.add_command(suite.list_runs)
cli.add_command(admin.admin)
cli.add_command(control.cancel)


@cli.command(epilog=epilog())
@click.option("--org-id", required=True, help="Organisation the jobs belong to.")
@click.option("--app-version-id", required=True, help="App build the tests run against.")
@click.option(
    "--test",
    "tests",
    required=True,
    multiple=True,
    metavar="PATH",
    help="Test file to run; repeat for several (one job each, one request for all).",
)
@click.option(
    "--target",
    default=DEFAULT_TARGET,
    show_default=True,
    help=f"Kind of device: {', '.join(TARGETS)}.",
)
@click.option(
    "--priority",
    type=int,
    default=DEFAULT_PRIORITY,
    show_default=True,
    help="Higher priority runs first.",
)
@click.option("--wait", is_flag=True, help="Wait until every job is final; exit 0 if all passed.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With --wait: give up after SECONDS (exit 7). Default: wait as long as it takes.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: seconds between polls.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the job records as JSON.")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="PATH",
    help="With --wait: write a JUnit XML report to PATH.",
)
@control.job_options
@click.pass_context
def submit(
    ctx: click.Context,
    *,
    org_id: str,
    app_version_id: str,
    tests: tuple[str, ...],
    target: str,
    priority: int,
    wait: bool,
    timeout: float | None,
    poll_interval: float,
    as_json: bool,
    junit_path: Path | None,
    job_options: dict[str, Any],
    idempotency_key: str,
) -> None:
    """Submit one job per --test and print the job ids, one per line.

    \b
    Examples:
      qgjob submit --org-id=qualgent --app-version-id=xyz123 --test=tests/onboarding.spec.js
      qgjob submit --org-id=qualgent --app-version-id=xyz123 --target=device \\
          --test=tests/login.spec.js --test=tests/checkout.spec.js --wait --timeout=600

    With --wait, each job's line (id, test, status, agent, duration) is printed as it
    finishes, then a summary; the exit code tells how the suite went. A poll that fails
    because the server is unreachable or answers 5xx is retried after 1, 2, 4 and 8 s.
    """
    if not wait:
        for option in ("timeout", "poll_interval", "junit_path"):
            if ctx.get_parameter_source(option) is not ParameterSource.DEFAULT:
                flag = option.removesuffix("_path").replace("_", "-")
                raise click.UsageError(f"--{flag} needs --wait", ctx)
    state: State = ctx.obj
    bodies = [
        {
            "org_id": org_id,
            "app_version_id": app_version_id,
            "test_path": test,
            "priority": priority,
            "target": target,
            **job_options,
        }
        for test in tests
    ]
    jobs = control.submit_retrying(
        state, lambda: state.client.submit(bodies, idempotency_key=idempotency_key)
    )
    for warning in state.client.warnings:
        warning_line(warning)
    if not wait:
        click.echo(formatting.to_json({"jobs": jobs}) if as_json else _ids(jobs))
        return
    if not as_json:
        click.echo(_ids(jobs))
    code = _wait_and_report(
        state,
        [job["job_id"] for job in jobs],
        timeout=timeout,
        poll_interval=poll_interval,
        as_json=as_json,
        test_width=max(len(test) for test in tests),
        junit_path=junit_path,
    )
    ctx.exit(code)


def _wait_and_report(
    state: State,
    job_ids: list[str],
    *,
    timeout: float | None,
    poll_interval: float,
    as_json: bool,
    test_width: int,
    junit_path: Path | None,
) -> ExitCode:
    """Wait for the jobs (one lookup request per poll), print a line per job as it
    finishes (or the JSON at the end)."""

    def echo_line(job: JobRecord) -> None:
        if not as_json:
            click.echo(formatting.job_line(job, test_width))

    watch = Watch(state.client, job_ids=job_ids)
    result = wait_for(
        watch.poll,
        timeout_s=timeout,
        poll_interval_s=poll_interval,
        clock=state.deps.clock,
        sleep=state.deps.sleep,
        on_final=echo_line,
        on_retry=lambda error, pause_s: warning_line(f"retrying in {pause_s:.3g} s: {error}"),
    )
    if junit_path is not None:
        junit.write(junit_path, junit.build(result.jobs, api_url=state.api_url))
    if as_json:
        click.echo(formatting.to_json({"jobs": result.jobs, "timed_out": result.timed_out}))
    else:
        for job in result.unfinished:
            echo_line(job)
        click.echo(formatting.summary(result.jobs))
    if result.timed_out:
        error_line(
            f"gave up waiting after {timeout:g} s: {len(result.unfinished)} of "
            f"{len(result.jobs)} jobs not final"
        )
    return result.exit_code


def _ids(jobs: list[JobRecord]) -> str:
    return "\n".join(job["job_id"] for job in jobs)


@cli.command(epilog=epilog("  qgjob status --job-id=1edd7f31-e4a9-472b-a760-d65ed9b1f7b0 --json"))
@click.option("--job-id", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@click.pass_obj
def status(state: State, job_id: str, as_json: bool) -> None:
    """Show a job's status, assigned agent, timings and result."""
    job = state.client.get_job(job_id)
    click.echo(formatting.to_json(job) if as_json else formatting.status_block(job))


@cli.command("list", epilog=epilog("  qgjob list --org-id=qualgent --status=failed --limit=20"))
@click.option("--org-id")
@click.option("--status", help=", ".join(STATUSES))
@click.option("--app-version-id")
@click.option("--target")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many jobs.")
@click.option("--cursor", help="Continue from a previous page's next cursor.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@click.pass_obj
def list_jobs(
    state: State,
    *,
    org_id: str | None,
    status: str | None,
    app_version_id: str | None,
    target: str | None,
    limit: int | None,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List jobs as a table, filtered by the options given."""
    page = state.client.list_jobs(
        org_id=org_id,
        status=status,
        app_version_id=app_version_id,
        target=target,
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        click.echo(formatting.to_json({"jobs": page.jobs, "next_cursor": page.next_cursor}))
        return
    click.echo(formatting.jobs_table(page.jobs) if page.jobs else "no jobs")
    if page.next_cursor is not None:
        click.echo(f"more jobs: add --cursor {page.next_cursor}", err=True)
