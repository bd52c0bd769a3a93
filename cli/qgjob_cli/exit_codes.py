"""The exit codes of every qgjob command: the contract CI scripts rely on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    TESTS_FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    SERVER_ERROR = 4
    NOT_FOUND = 5
    INFRA_ERROR = 6
    WAIT_TIMEOUT = 7
    INTERRUPTED = 130


DESCRIPTIONS: dict[ExitCode, str] = {
    ExitCode.OK: "success (with --wait: every job passed)",
    ExitCode.TESTS_FAILED: "at least one job ended failed (the test failed)",
    ExitCode.USAGE: "usage error: a bad argument, or the server rejected the input (4xx)",
    ExitCode.UNREACHABLE: "the server could not be reached (connection error or timeout)",
    ExitCode.SERVER_ERROR: "server error (5xx, 503 included) or an unexpected response",
    ExitCode.NOT_FOUND: "not found (404), e.g. an unknown job id",
    ExitCode.INFRA_ERROR: "a job ended error or cancelled and none failed",
    ExitCode.WAIT_TIMEOUT: "--wait gave up after --timeout with jobs not yet final",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def epilog() -> str:
    """The exit-code table for `qgjob --help` (`\\b` keeps click from rewrapping it)."""
    rows = "\n".join(f"  {code.value:<4} {text}" for code, text in DESCRIPTIONS.items())
    precedence = (
        "With --wait the first that applies: 1 if any job failed, 7 if jobs were still "
        "unfinished at --timeout, 6 if any job ended error or cancelled, else 0."
    )
    return f"\b\nExit codes:\n{rows}\n\n{precedence}"
