"""gunicorn's own answers and log lines, in the API's terms (issue 9, point 7).

gunicorn refuses some requests before the app sees them: a request line over
`--limit-request-line`, more header fields or a longer field than its limits (set above the
app's own bounds, qgjob_api.guards, so the app answers those first), a malformed head. Its
answer is an HTML page; `JsonErrorsWorker` answers the same status with the API's JSON error
body `{"error", "message"}` instead. `EscapingLogger` writes gunicorn's access and error log
lines through qgjob_contract.logsafe, so a request line or header a client sent cannot put a
control character (C0, DEL, C1 such as U+0085 NEL, bidi overrides) into the log.

Used by the API image: `gunicorn --worker-class qgjob_api.serving.JsonErrorsWorker
--logger-class qgjob_api.serving.EscapingLogger`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from qgjob_contract.logsafe import EscapingFormatter, escape

_STATUS_LINE: Final = re.compile(rb"^HTTP/1\.[01] (\d{3}) ([^\r\n]*)\r\n")
_MAX_MESSAGE: Final = 200


class _Captured:
    """A stand-in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def json_error(status: int, reason: str, problem: str) -> bytes:
    """A whole HTTP answer: `status reason` with the API's JSON error body."""
    code = "internal_error" if status >= 500 else reason.lower().replace(" ", "_")
    text = escape(problem.strip() or reason)
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    body = json.dumps({"error": code, "message": text}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorsWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, answering its own refusals as JSON errors."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)  # logs, and builds its answer
        found = _STATUS_LINE.match(captured.data)
        status, reason = (int(found[1]), found[2].decode("latin-1")) if found else (400, "")
        problem = str(exc) if status < 500 else "internal server error"
        try:
            util.write_nonblock(client, json_error(status, reason or "Bad Request", problem))
        except Exception:  # the client is gone: nothing to answer
            self.log.debug("failed to send the error answer")


class EscapingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger whose every line (access and error) escapes control characters."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                _escape(handler)


def _escape(handler: logging.Handler) -> None:
    current = handler.formatter or logging.Formatter()
    handler.setFormatter(EscapingFormatter(current._fmt, current.datefmt))
