"""`qgjob admin token create|list|revoke`: org tokens, made with the admin token.

`create` prints the new token once (it cannot be shown again: the server keeps its hash);
pass the admin token as QGJOB_TOKEN (or --token).
"""

from __future__ import annotations

import json
from typing import Any

import click

from qgjob_cli.context import State
from qgjob_cli.exit_codes import epilog
from qgjob_cli.vocabulary import ROLES

_COLUMNS = ("TOKEN ID", "ORG", "ROLE", "NAME", "CREATED", "EXPIRES", "REVOKED")


@click.group("token")
def token() -> None:
    """Org tokens (needs the admin token): create, list, revoke."""


@token.command(
    "create",
    epilog=epilog(
        "  QGJOB_TOKEN=$QGJOB_ADMIN_TOKEN qgjob admin token create acme --role submitter"
    ),
)
@click.argument("org_id")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--name", default="", help="What the token is for (shown in listings).")
@click.option(
    "--expires-in",
    "expires_in_s",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds until the token expires (default: never).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_obj
def create(  # noqa: PLR0917 (click passes every option)
    state: State, org_id: str, role: str, name: str, expires_in_s: int | None, as_json: bool
) -> None:
    """Create a token for ORG_ID; it is printed once, on stdout."""
    body = state.client.create_token(org_id, role, name=name, expires_in_s=expires_in_s)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(body["token"])
    click.echo(
        f"token {body['token_id']} for org {body['org_id']}, role {body['role']}: "
        "store it now, it cannot be shown again",
        err=True,
    )


@token.command("list", epilog=epilog("  qgjob admin token list --org-id acme"))
@click.option("--org-id", default=None, help="Only this org's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print the tokens as JSON.")
@click.pass_obj
def list_tokens(state: State, org_id: str | None, as_json: bool) -> None:
    """List tokens (never their secrets), newest first."""
    records = state.client.list_tokens(org_id)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    rows = [_row(record) for record in records]
    widths = [max(len(v) for v in column) for column in zip(_COLUMNS, *rows, strict=True)]
    for row in (_COLUMNS, *rows):
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@token.command("revoke", epilog=epilog("  qgjob admin token revoke 0123456789abcdef"))
@click.argument("token_id")
@click.pass_obj
def revoke(state: State, token_id: str) -> None:
    """Revoke a token: it stops working at once."""
    record = state.client.revoke_token(token_id)
    click.echo(f"revoked {record['token_id']} (org {record['org_id']}) at {record['revoked_at']}")


def _row(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(record.get(name) or "-")
        for name in ("token_id", "org_id", "role", "name", "created_at", "expires_at", "revoked_at")
    )
