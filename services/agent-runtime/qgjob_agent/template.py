"""Command templates: a command line with `{variable}` placeholders, run without a shell.

The template is split into arguments once (shlex rules), then each argument is filled in on
its own. A value is never re-parsed, so a test path such as `a.js; rm -rf /` or `$(id)` stays
one literal argument: it cannot add arguments or run anything.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass

from qgjob_agent.errors import ConfigError

# Variables a test command may use, and the subset an install command may use.
TEST_VARIABLES = frozenset({"test_path", "app_version_id", "target", "org_id"})
INSTALL_VARIABLES = frozenset({"app_version_id", "target"})


@dataclass(frozen=True)
class CommandTemplate:
    text: str
    arguments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, variables: frozenset[str], *, source: str) -> CommandTemplate:
        """Split and check a template; `source` names where it came from, for the error."""
        try:
            arguments = tuple(shlex.split(text))
        except ValueError as exc:
            raise ConfigError(f"{source}: cannot split {text!r}: {exc}") from exc
        if not arguments:
            raise ConfigError(f"{source}: the command is empty")
        for argument in arguments:
            _check_placeholders(argument, variables, source=source)
        return cls(text=text, arguments=arguments)

    def render(self, values: Mapping[str, str]) -> list[str]:
        """The argument list with every placeholder replaced by its value."""
        return [argument.format_map(values) for argument in self.arguments]

    @property
    def program(self) -> str | None:
        """The program the command runs; None when its name holds a placeholder."""
        first = self.arguments[0]
        return None if _fields(first) else first.format_map({})


def _fields(argument: str) -> list[tuple[str, str | None, str | None]]:
    """The placeholders of one argument: (name, format spec, conversion) each."""
    return [
        (name, spec, conversion)
        for _, name, spec, conversion in string.Formatter().parse(argument)
        if name is not None
    ]


def _check_placeholders(argument: str, variables: frozenset[str], *, source: str) -> None:
    allowed = ", ".join(sorted(variables))
    try:
        fields = _fields(argument)
    except ValueError as exc:
        raise ConfigError(f"{source}: bad placeholder in {argument!r}: {exc}") from exc
    for name, spec, conversion in fields:
        if name not in variables or spec or conversion:
            raise ConfigError(
                f"{source}: unsupported placeholder {name!r} in {argument!r} "
                f"(allowed, written as {{name}}: {allowed})"
            )
