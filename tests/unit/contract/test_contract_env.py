"""The shared environment reader and logging setup every service uses."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

from qgjob_contract.env import LOG_LEVELS, Env


class SettingError(Exception):
    """Stands for a service's own ConfigError."""


def _env(**values: str) -> Env:
    return Env(values, error=SettingError)


def test_text_is_stripped_and_blank_means_the_default() -> None:
    assert _env(NAME=" value ").text("NAME", "default") == "value"
    assert _env(NAME="").text("NAME", "default") == "default"
    assert _env(NAME="  ").text("NAME", "default") == "default"
    assert _env().text("NAME", "default") == "default"


def test_pattern_keeps_an_empty_value() -> None:
    assert _env(GLOB="").pattern("GLOB", "*fail*") == ""
    assert _env(GLOB="*x*").pattern("GLOB", "*fail*") == "*x*"
    assert _env().pattern("GLOB", "*fail*") == "*fail*"


def test_number_reads_floats_and_whole_numbers() -> None:
    assert _env(N=" 2.5 ").number("N", 1.0, minimum=0) == 2.5
    assert _env(N="").number("N", 1.0, minimum=0) == 1.0
    assert _env().number("N", 1.0, minimum=0) == 1.0
    count = _env(N="7").number("N", 3, minimum=1, integer=True)
    assert count == 7
    assert isinstance(count, int)


def test_number_minimum_is_inclusive_unless_exclusive() -> None:
    assert _env(N="0").number("N", 1.0, minimum=0) == 0.0
    with pytest.raises(SettingError, match=r"^N must be a number > 0 \(got '0'\)$"):
        _env(N="0").number("N", 1.0, minimum=0, exclusive=True)
    with pytest.raises(SettingError, match=r"^N must be a whole number >= 1 \(got '0'\)$"):
        _env(N="0").number("N", 5, minimum=1, integer=True)


@pytest.mark.parametrize("raw", ["ten", "nan", "inf", "-inf", "-0.5"])
def test_number_refuses_what_is_not_a_finite_number_in_range(raw: str) -> None:
    with pytest.raises(SettingError, match=r"^N must be a number >= 0 \(got .+\)$"):
        _env(N=raw).number("N", 1.0, minimum=0)


def test_whole_number_refuses_a_fraction() -> None:
    with pytest.raises(SettingError, match="N must be a whole number"):
        _env(N="1.5").number("N", 1, minimum=0, integer=True)


def test_url_must_have_one_of_the_schemes_and_is_not_echoed() -> None:
    env = _env(URL="amqps://user:secret@broker/%2F", BAD="http://user:secret@redis")
    assert env.url("URL", "amqp://localhost", ("amqp", "amqps")) == "amqps://user:secret@broker/%2F"
    assert env.url("UNSET", "amqp://localhost", ("amqp", "amqps")) == "amqp://localhost"
    with pytest.raises(
        SettingError, match=r"^BAD must start with one of redis://, unix://$"
    ) as exc:
        env.url("BAD", "redis://localhost", ("redis", "unix"))
    assert "secret" not in str(exc.value)


def test_choice_ignores_case_and_answers_as_spelled_in_the_choices() -> None:
    assert _env(LEVEL="debug").choice("LEVEL", "INFO", LOG_LEVELS) == "DEBUG"
    assert _env(LEVEL="").choice("LEVEL", "INFO", LOG_LEVELS) == "INFO"
    with pytest.raises(SettingError, match=r"^LEVEL must be one of DEBUG, .* \(got 'loud'\)$"):
        _env(LEVEL="loud").choice("LEVEL", "INFO", LOG_LEVELS)


def _log_lines(level: str, pika_level: int = logging.WARNING) -> list[str]:
    """stderr of a fresh process that configures logging, then logs at every level."""
    script = f"""
import logging
from qgjob_contract.env import configure_logging
configure_logging({level!r}, pika_level={pika_level})
for name in ("qgjob_x", "pika.connection"):
    for severity in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        logging.getLogger(name).log(severity, "m")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stderr.splitlines()


def _shown(lines: list[str], logger: str) -> list[str]:
    return [line.split()[2] for line in lines if line.split()[3] == f"{logger}:"]


def test_configure_logging_writes_one_formatted_line_per_record_at_the_level() -> None:
    lines = _log_lines("INFO")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO qgjob_x: m", lines[0])
    assert _shown(lines, "qgjob_x") == ["INFO", "WARNING", "ERROR", "CRITICAL"]


@pytest.mark.parametrize(
    ("level", "pika_level", "pika_shown"),
    [
        ("INFO", logging.WARNING, ["WARNING", "ERROR", "CRITICAL"]),
        ("ERROR", logging.WARNING, ["ERROR", "CRITICAL"]),
        ("INFO", logging.CRITICAL, ["CRITICAL"]),
        ("DEBUG", logging.CRITICAL, ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
    ],
)
def test_pika_is_held_back_unless_debug_and_never_louder_than_the_level(
    level: str, pika_level: int, pika_shown: list[str]
) -> None:
    assert _shown(_log_lines(level, pika_level), "pika.connection") == pika_shown
