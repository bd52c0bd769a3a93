"""cli/README.md's exit-code table says what the exit-code module says, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from qgjob_cli.exit_codes import DESCRIPTIONS

CLI_README = Path(__file__).resolve().parents[3] / "cli" / "README.md"


def test_the_cli_readme_table_is_the_modules() -> None:
    text = CLI_README.read_text()
    table = text[text.index("| code | meaning |") :].split("\n\n", 1)[0]
    rows = [
        (int(match[1]), match[2])
        for match in re.finditer(r"^\| (\d+) \| (.+?) \|$", table, flags=re.MULTILINE)
    ]
    assert rows == [(int(code), text) for code, text in DESCRIPTIONS.items()]
