"""What every command shares: the outside world (Deps), the client (State), stderr lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click
import requests

from qgjob_cli.client import Client


def _stderr_is_a_terminal() -> bool:
    return sys.stderr.isatty()


@dataclass(frozen=True)
class Deps:
    """What the commands take from the outside world; tests pass fakes as click's `obj`."""

    session: requests.Session | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # Whether progress goes to a terminal (one redrawn line) or a log (plain lines).
    isatty: Callable[[], bool] = _stderr_is_a_terminal


@dataclass(frozen=True)
class State:
    client: Client
    deps: Deps
    api_url: str


def error_line(message: str) -> None:
    click.echo(f"qgjob: error: {message}", err=True)


def warning_line(message: str) -> None:
    click.echo(f"qgjob: warning: {message}", err=True)
