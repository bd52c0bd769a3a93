"""`qgjob admin`: operator commands. `admin dlq list|replay`: the dead-letter queue;
`admin token create|list|revoke`: org tokens (qgjob_cli.tokens)."""

from __future__ import annotations

import json
from typing import Any

import click

from qgjob_cli.context import State
from qgjob_cli.exit_codes import epilog
from qgjob_cli.tokens import token

_DLQ_COLUMNS = ("EVENT ID", "TYPE", "REASON", "DEAD AT (ms)", "ABOUT")


@click.group()
def admin() -> None:
    """Operator commands (admin-only once the API requires tokens)."""


admin.add_command(token)


@admin.group()
def dlq() -> None:
    """The dead-letter queue: events the scheduler could not apply."""


@dlq.command("list", epilog=epilog("  qgjob admin dlq list --limit 20"))
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Newest entries shown.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_obj
def list_dead_letters(state: State, limit: int, as_json: bool) -> None:
    """List dead-lettered events, newest first."""
    body = state.client.dead_letters(limit)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    letters = body["dead_letters"]
    click.echo(f"{body['total']} dead letter(s)")
    if letters:
        rows = [_row(letter) for letter in letters]
        widths = [
            max(len(str(v)) for v in column) for column in zip(_DLQ_COLUMNS, *rows, strict=True)
        ]
        for row in (_DLQ_COLUMNS, *rows):
            click.echo(
                "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            )


@dlq.command(
    "replay",
    epilog=epilog("  qgjob admin dlq replay 5b1f0c3e-...\n  qgjob admin dlq replay --all"),
)
@click.argument("event_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_obj
def replay_dead_letters(
    state: State, event_ids: tuple[str, ...], replay_all: bool, as_json: bool
) -> None:
    """Publish dead-lettered events again (each at most once)."""
    if bool(event_ids) == replay_all:
        raise click.UsageError("give EVENT_IDS or --all (not both)")
    body = state.client.replay_dead_letters(None if replay_all else list(event_ids))
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(
        f"replayed {len(body['replayed'])}, missing {len(body['missing'])}, "
        f"unreplayable {len(body['unreplayable'])}"
    )
    for event_id in body["missing"]:
        click.echo(f"missing: {event_id} (not in the dead-letter queue, or replayed already)")
    for event_id in body["unreplayable"]:
        click.echo(f"unreplayable: {event_id} (not a valid event: it stays listed)")


def _row(letter: dict[str, Any]) -> list[str]:
    body = letter.get("body")
    payload = body.get("payload") if isinstance(body, dict) else None
    about = ""
    if isinstance(payload, dict):
        about = " ".join(
            f"{name}={payload[name]}"
            for name in ("job_id", "batch_id", "agent_id")
            if name in payload
        )
    return [
        str(letter["event_id"]),
        str(letter.get("type") or "-"),
        str(letter.get("reason") or "-"),
        str(letter.get("dead_at_ms")),
        about,
    ]
