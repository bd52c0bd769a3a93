"""The client's exception tree: each error carries the exit code it ends the command with."""

from __future__ import annotations

from typing import ClassVar

from qgjob_cli.exit_codes import ExitCode


class QgjobError(Exception):
    """A failure the CLI reports as one line on stderr; `str(error)` is that line."""

    exit_code: ClassVar[ExitCode] = ExitCode.SERVER_ERROR
    # True when the same request may well succeed a moment later (see waiting.py).
    transient: ClassVar[bool] = False


class RequestRejected(QgjobError):
    """The server refused the input (a 4xx other than 404)."""

    exit_code = ExitCode.USAGE


class KeyInProgress(RequestRejected):
    """409: another request with the same Idempotency-Key has not answered yet."""

    transient = True


class ServerUnreachable(QgjobError):
    """No connection to the server, or no answer in time."""

    exit_code = ExitCode.UNREACHABLE
    transient = True


class ServerError(QgjobError):
    """A response the client does not understand, or (as ServerFailed) a 5xx."""

    exit_code = ExitCode.SERVER_ERROR


class ServerFailed(ServerError):
    """The server answered 5xx (503 while Redis or RabbitMQ is away, a proxy's 502, ...)."""

    transient = True


class RateLimited(QgjobError):
    """429 again and again: the server's rate limit, past the client's bounded wait."""

    exit_code = ExitCode.RATE_LIMITED


class NotFound(QgjobError):
    """The server answered 404."""

    exit_code = ExitCode.NOT_FOUND
