"""Settings from environment variables and logging setup, the same way in every service.

Each service reads its variables once into its own frozen `Config`, through an `Env` that
raises the service's own ConfigError: `Env(os.environ, error=ConfigError)`. Every error is one
line naming the variable. An empty value counts as unset (compose passes `${VAR:-}` through
as empty), except in `pattern`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Final, Literal, overload

from qgjob_contract.logsafe import EscapingFormatter

# Defaults of the variables several services read.
DEFAULT_REDIS_URL: Final = "redis://localhost:6379/0"
DEFAULT_RABBITMQ_URL: Final = "amqp://guest:guest@localhost:5672/%2F"
DEFAULT_LOG_LEVEL: Final = "INFO"
# AGENT_TIMEOUT_S: the API and the scheduler must agree on when an agent counts as gone.
DEFAULT_AGENT_TIMEOUT_S: Final = 6.0
# JOB_RETENTION_S: how long finished jobs (and their runs, batches' RQ results, idempotency
# keys) are kept; the API and the scheduler read it.
DEFAULT_JOB_RETENTION_S: Final = 7 * 24 * 3600.0

REDIS_SCHEMES: Final = ("redis", "rediss", "unix")
AMQP_SCHEMES: Final = ("amqp", "amqps")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Env:
    """Typed reads of environment variables; a bad value raises `error(message)`."""

    def __init__(self, environ: Mapping[str, str], *, error: type[Exception]) -> None:
        self._environ = environ
        self._error = error

    def text(self, name: str, default: str) -> str:
        """The value without surrounding blanks; `default` when unset or blank."""
        return self._environ.get(name, "").strip() or default

    def pattern(self, name: str, default: str) -> str:
        """The value exactly as set: here empty is a value (a glob that matches nothing)."""
        return self._environ.get(name, default)

    @overload
    def number(
        self,
        name: str,
        default: int,
        *,
        minimum: float,
        exclusive: bool = False,
        integer: Literal[True],
    ) -> int: ...

    @overload
    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float,
        exclusive: bool = False,
        integer: Literal[False] = False,
    ) -> float: ...

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float,
        exclusive: bool = False,
        integer: bool = False,
    ) -> float:
        """A finite number >= `minimum` (> when `exclusive`); a whole one when `integer`."""
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        kind = "a whole number" if integer else "a number"
        problem = f"{name} must be {kind} {'>' if exclusive else '>='} {minimum:g} (got {raw!r})"
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            raise self._error(problem) from None
        if not math.isfinite(value) or value < minimum or (exclusive and value == minimum):
            raise self._error(problem)
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        """A URL with one of `schemes`; the message does not repeat it (it may hold a password)."""
        value = self.text(name, default)
        prefixes = tuple(f"{scheme}://" for scheme in schemes)
        if not value.startswith(prefixes):
            raise self._error(f"{name} must start with one of {', '.join(prefixes)}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, matched ignoring case and returned as spelled in `choices`."""
        value = self.text(name, default)
        for choice in choices:
            if value.casefold() == choice.casefold():
                return choice
        raise self._error(f"{name} must be one of {', '.join(choices)} (got {value!r})")


def configure_logging(level: str, *, pika_level: int = logging.WARNING) -> None:
    """Log to stderr at `level`, one of LOG_LEVELS.

    pika logs every connection step; unless `level` is DEBUG, only its records at
    `pika_level` or above (and at `level` or above) are shown.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(LOG_FORMAT))  # client input cannot forge a line
    logging.basicConfig(level=level, handlers=[handler])
    if level != "DEBUG":
        logging.getLogger("pika").setLevel(max(logging.getLevelNamesMapping()[level], pika_level))
