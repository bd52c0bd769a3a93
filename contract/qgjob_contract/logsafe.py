"""Log lines that input cannot forge: control characters in a message are escaped.

A job id, a path or a header value that a client sent may hold a newline or an ANSI escape;
written raw, it would start a fake log line or repaint a terminal. EscapingFormatter escapes
every control, format and line-break character of the message (`\\n`, `\\x1b`, `\\u2028`)
after its arguments are substituted; the traceback of an exception keeps its own newlines
(it is written by the process, not by a client).
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Final

# Unicode categories escaped: controls (C0, DEL, C1), format characters (bidi overrides),
# line and paragraph separators.
_ESCAPED: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def escape(text: str) -> str:
    """`text` with every control character written as a Python escape."""
    if text.isprintable():  # fast path: nothing to escape (also refuses Zs other than ' ')
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in _ESCAPED
        else char
        for char in text
    )


class EscapingFormatter(logging.Formatter):
    """A Formatter whose message part never holds a raw control character."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)
