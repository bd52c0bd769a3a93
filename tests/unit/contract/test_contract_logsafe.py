"""Log lines that client input cannot forge (qgjob_contract.logsafe)."""

from __future__ import annotations

import io
import logging

from qgjob_contract.logsafe import EscapingFormatter, escape


def test_controls_line_breaks_and_bidi_overrides_are_escaped() -> None:
    assert escape("a\nb\r\x1b[31m\u2028\u202e\x00") == "a\\nb\\r\\x1b[31m\\u2028\\u202e\\x00"


def test_printable_text_is_unchanged() -> None:
    text = "job 3f2a/tests/é 漢字 ok"
    assert escape(text) == text


def _logged(message: str, *args: object, exc: bool = False) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("qgjob.test.logsafe")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_an_argument_cannot_start_a_fake_log_line() -> None:
    line = _logged("no job with id %s", "x\nERROR forged admin login")
    assert line == "WARNING no job with id x\\nERROR forged admin login\n"
    assert line.count("\n") == 1


def test_a_traceback_keeps_its_own_lines() -> None:
    text = _logged("failed on %s", "/v1/jobs/a\rb", exc=True)
    first, *rest = text.splitlines()
    assert first == "ERROR failed on /v1/jobs/a\\rb"
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"
