"""The exit-code tables of README.md and cli/README.md say what the CLI's code does.

The codes are read from the CLI package itself, generically: the one IntEnum of qgjob_cli
whose name mentions "exit" (today `qgjob_cli.exit_codes.ExitCode`), and its one-line
descriptions (a module-level dict keyed by its members, or a `description` on each member).
Moving the enum to another module of qgjob_cli needs no change here.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import qgjob_cli

REPO_ROOT = Path(__file__).resolve().parents[3]
READMES = [REPO_ROOT / "README.md", REPO_ROOT / "cli" / "README.md"]
# A table whose header row is `| <anything with "code"> | meaning |`.
_HEADER = re.compile(r"^\|\s*[^|]*code[^|]*\|\s*meaning\s*\|\s*$", re.IGNORECASE)
_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*(.*?)\s*\|\s*$")
_WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about which code a row is.
_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an the and or of in on to with is are be by for not no any at e g yet after was "
        "were other than every one none",
    )
)


def _cli_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"qgjob_cli.{info.name}")
        for info in pkgutil.iter_modules(qgjob_cli.__path__)
    ]


def exit_code_enum() -> type[enum.IntEnum]:
    """The IntEnum of qgjob_cli that holds the exit codes (exactly one must exist)."""
    found = {
        obj
        for module in _cli_modules()
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, enum.IntEnum)
        and obj.__module__.startswith("qgjob_cli.")
        and "exit" in obj.__name__.lower() + obj.__module__.lower()
    }
    assert len(found) == 1, f"expected one exit-code IntEnum in qgjob_cli, found {found}"
    (codes,) = found
    return codes


def descriptions(codes: type[enum.IntEnum]) -> dict[int, str]:
    """Each code's one-line meaning as the CLI states it (its --help epilog)."""
    for module in _cli_modules():
        for value in vars(module).values():
            if (
                isinstance(value, dict)
                and value
                and all(isinstance(key, codes) for key in value)
                and all(isinstance(text, str) for text in value.values())
            ):
                return {int(key): text for key, text in value.items()}
    return {int(member): str(getattr(member, "description", "")) for member in codes}


def readme_table(path: Path) -> dict[int, str]:
    """The rows (code -> meaning) of the exit-code table in `path`; exactly one table."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    assert len(starts) == 1, f"{path}: expected one exit-code table, found {len(starts)}"
    rows: dict[int, str] = {}
    for line in lines[starts[0] + 2 :]:
        match = _ROW.match(line)
        if match is None:
            break
        code = int(match.group(1))
        assert code not in rows, f"{path}: code {code} listed twice"
        rows[code] = match.group(2)
    return rows


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if word not in _STOP}


def _overlap(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


def test_the_cli_has_one_exit_code_enum_with_a_description_for_each_code() -> None:
    codes = exit_code_enum()
    described = descriptions(codes)
    assert set(described) == {int(member) for member in codes}
    assert all(text.strip() for text in described.values()), described


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_readme_lists_exactly_the_cli_exit_codes(readme: Path) -> None:
    codes = {int(member) for member in exit_code_enum()}
    table = readme_table(readme)
    assert set(table) == codes, (
        f"{readme.name}: codes only in the README {sorted(set(table) - codes)}, "
        f"only in the CLI {sorted(codes - set(table))}"
    )


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_each_readme_meaning_is_the_cli_meaning_of_that_code(readme: Path) -> None:
    """Wording may differ; the meaning of a row must be closer to its own code's description
    than to any other code's (a swapped or stale row fails)."""
    described = descriptions(exit_code_enum())
    table = readme_table(readme)
    for code, meaning in table.items():
        assert meaning, f"{readme.name}: code {code} has no meaning"
        scores = {other: _overlap(meaning, text) for other, text in described.items()}
        best = max(scores, key=lambda other: scores[other])
        assert scores[code] > 0, f"{readme.name}: code {code} says {meaning!r}"
        assert best == code, (
            f"{readme.name}: code {code} says {meaning!r}, which reads like code {best} "
            f"({described.get(best)!r}) rather than {described.get(code)!r}"
        )


def test_readme_parser_finds_a_wrong_table(tmp_path: Path) -> None:
    """The checks above can fail: a swapped and a missing row are caught."""
    described = descriptions(exit_code_enum())
    readme = tmp_path / "README.md"
    rows = dict(readme_table(READMES[0]))
    first, second = sorted(rows)[1:3]
    rows[first], rows[second] = rows[second], rows[first]
    del rows[max(rows)]
    table = "\n".join(f"| {code} | {text} |" for code, text in rows.items())
    readme.write_text(f"| exit code | meaning |\n| --- | --- |\n{table}\n", encoding="utf-8")
    parsed = readme_table(readme)
    assert set(parsed) != set(described)
    swapped = {
        code: max(described, key=lambda c: _overlap(parsed[code], described[c]))
        for code in (first, second)
    }
    assert swapped != {first: first, second: second}
