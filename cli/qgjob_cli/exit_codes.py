"""The exit codes of every qgjob command: the contract CI scripts rely on.

This module is the single source: `qgjob --help`, the README's and cli/README.md's
exit-code tables say the same (a test checks the README against DESCRIPTIONS).

When a command waits (`run`, `wait`, `rerun`, `submit --wait`), the first rule that applies
decides: 1 if any job failed; 7 if jobs were still unfinished at --timeout; 6 if any job
ended error (or a final status this CLI does not know); 8 if any job was cancelled; else 0.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """One value per outcome a CI script may want to tell apart."""

    OK = 0  # success; when waiting: every job passed
    TESTS_FAILED = 1  # at least one job ended `failed`: a verdict on the code under test
    USAGE = 2  # a bad argument, or the server rejected the input (4xx other than 404)
    UNREACHABLE = 3  # no connection to the server, or no answer in time
    SERVER_ERROR = 4  # the server answered 5xx (503 included) or something unreadable
    NOT_FOUND = 5  # 404: an unknown job or run id
    INFRA_ERROR = 6  # a job ended `error` (infrastructure) and none failed
    WAIT_TIMEOUT = 7  # the wait gave up after --timeout with jobs not yet final
    CANCELLED = 8  # a job was cancelled, and none failed or ended error
    ALREADY_FINAL = 9  # `cancel`: a job named was already final (nothing changed for it)
    RATE_LIMITED = 10  # 429: still over the server's rate limit after waiting its Retry-After
    INTERRUPTED = 130  # Ctrl-C (SIGINT), the shell's 128 + 2


DESCRIPTIONS: dict[ExitCode, str] = {
    ExitCode.OK: "success; when waiting: every job passed",
    ExitCode.TESTS_FAILED: "at least one job ended failed (a test failed)",
    ExitCode.USAGE: "usage error: a bad argument, or the server rejected the input (4xx)",
    ExitCode.UNREACHABLE: "the server could not be reached (connection error or timeout)",
    ExitCode.SERVER_ERROR: "server error (5xx, 503 included) or an unexpected response",
    ExitCode.NOT_FOUND: "not found (404): an unknown job or run id",
    ExitCode.INFRA_ERROR: "a job ended error (infrastructure) and none failed",
    ExitCode.WAIT_TIMEOUT: "the wait gave up after --timeout with jobs not yet final",
    ExitCode.CANCELLED: "a job was cancelled, and none failed or ended error",
    ExitCode.ALREADY_FINAL: "cancel: a job named was already final, nothing changed for it",
    ExitCode.RATE_LIMITED: "rate limited (429): still refused after waiting Retry-After",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}

PRECEDENCE = (
    "When waiting, the first that applies: 1 if any job failed, 7 if jobs were still "
    "unfinished at --timeout, 6 if any job ended error, 8 if any was cancelled, else 0."
)


def epilog(examples: str = "") -> str:
    """The exit-code table for `--help` (`\\b` keeps click from rewrapping it)."""
    rows = "\n".join(f"  {code.value:<4} {text}" for code, text in DESCRIPTIONS.items())
    head = f"\b\nExamples:\n{examples}\n\n" if examples else ""
    return f"{head}\b\nExit codes:\n{rows}\n\n{PRECEDENCE}"
