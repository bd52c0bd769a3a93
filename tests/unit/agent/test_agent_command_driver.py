"""The command driver: real processes, no shell, a timeout, exit code = outcome; start checks."""

from __future__ import annotations

import ast
import shlex
import sys
import time
from pathlib import Path

import pytest

from qgjob_agent import worker
from qgjob_agent.config import Config
from qgjob_agent.drivers.base import JobRun
from qgjob_agent.drivers.command import CommandDriver
from qgjob_agent.errors import ConfigError, InstallError
from qgjob_agent.template import INSTALL_VARIABLES, TEST_VARIABLES, CommandTemplate
from qgjob_agent_emulator.agent import PLUGIN as EMULATOR
from qgjob_contract.statuses import ErrorReason, JobStatus

PYTHON = shlex.quote(sys.executable)
PRINT_ARGV = f"{PYTHON} -c 'import sys; print(repr(sys.argv[1:]))'"


def _driver(
    command: str,
    *,
    install: str | None = None,
    timeout_s: float = 30.0,
    log_tail_chars: int = 4000,
) -> CommandDriver:
    return CommandDriver(
        command=CommandTemplate.parse(command, TEST_VARIABLES, source="AGENT_COMMAND"),
        install_command=(
            CommandTemplate.parse(install, INSTALL_VARIABLES, source="AGENT_INSTALL_COMMAND")
            if install
            else None
        ),
        timeout_s=timeout_s,
        log_tail_chars=log_tail_chars,
    )


def _job(test_path: str = "tests/onboarding.spec.js") -> JobRun:
    return JobRun("j1", "qualgent", test_path, "xyz123", "emulator")


def _argv(log_tail: str) -> list[str]:
    argv = ast.literal_eval(log_tail.strip())
    assert isinstance(argv, list)
    return argv


def test_exit_zero_passes_and_every_variable_is_filled_in() -> None:
    driver = _driver(
        f"{PRINT_ARGV} {{test_path}} --project={{target}} {{app_version_id}} {{org_id}}"
    )
    outcome = driver.run_test(_job())
    assert outcome.status == JobStatus.PASSED
    assert _argv(outcome.log_tail) == [
        "tests/onboarding.spec.js",
        "--project=emulator",
        "xyz123",
        "qualgent",
    ]
    assert outcome.duration_s > 0
    assert driver.name == "command"
    assert driver.simulated is False


def test_nonzero_exit_fails_with_stdout_and_stderr_in_the_log_tail() -> None:
    outcome = _driver("sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'").run_test(_job())
    assert outcome.status == JobStatus.FAILED
    assert outcome.reason is None
    assert "to-stdout" in outcome.log_tail
    assert "to-stderr" in outcome.log_tail


@pytest.mark.parametrize(
    "test_path",
    [
        "tests/a.spec.js; touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        "a.spec.js && touch {marker}",
        "a b 'c' \"d\" | touch {marker}",
    ],
)
def test_a_test_path_cannot_inject_arguments_or_commands(test_path: str, tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    path = test_path.format(marker=marker)
    outcome = _driver(f"{PRINT_ARGV} {{test_path}} --project {{target}}").run_test(_job(path))
    assert _argv(outcome.log_tail) == [path, "--project", "emulator"]
    assert not marker.exists()


def test_a_test_running_past_the_timeout_is_killed_and_ends_in_error() -> None:
    started = time.monotonic()
    outcome = _driver("sleep 30", timeout_s=0.5).run_test(_job())
    assert time.monotonic() - started < 10
    assert outcome.status == JobStatus.ERROR
    assert outcome.reason == ErrorReason.TIMEOUT
    assert "timeout" in outcome.log_tail


def test_the_timeout_kills_processes_the_test_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; wait"
    outcome = _driver(f"sh -c {shlex.quote(script)}", timeout_s=0.5).run_test(_job())
    assert outcome.reason == ErrorReason.TIMEOUT
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def _running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_log_tail_keeps_only_the_last_characters() -> None:
    script = "import sys; sys.stdout.write('x' * 10000 + 'THE-END')"
    outcome = _driver(f"{PYTHON} -c {shlex.quote(script)}", log_tail_chars=100).run_test(_job())
    assert len(outcome.log_tail) == 100
    assert outcome.log_tail.endswith("THE-END")


def test_a_missing_program_raises_for_the_runner_to_report() -> None:
    with pytest.raises(FileNotFoundError):
        _driver("/nonexistent/appwright {test_path}").run_test(_job())


def test_without_an_install_command_install_does_nothing() -> None:
    _driver("true").install("xyz123", "emulator")


def test_install_command_gets_the_app_version_and_target(tmp_path: Path) -> None:
    record = tmp_path / "installed"
    driver = _driver(
        "true", install=f"sh -c 'echo \"$0 $1\" > {record}' {{app_version_id}} {{target}}"
    )
    driver.install("xyz123", "device")
    assert record.read_text().strip() == "xyz123 device"


def test_failing_install_command_raises_install_error_with_its_output() -> None:
    driver = _driver("true", install="sh -c 'echo no space left; exit 1'")
    with pytest.raises(InstallError, match="no space left"):
        driver.install("xyz123", "emulator")


def test_install_program_that_cannot_start_raises_install_error() -> None:
    driver = _driver("true", install="/nonexistent/installer {app_version_id}")
    with pytest.raises(InstallError, match="could not start"):
        driver.install("xyz123", "emulator")


@pytest.mark.parametrize(
    ("template", "variables", "message"),
    [
        ("", TEST_VARIABLES, "empty"),
        ("run 'unbalanced", TEST_VARIABLES, "cannot split"),
        ("run {test_file}", TEST_VARIABLES, "test_file"),
        ("run {test_path.__class__}", TEST_VARIABLES, "unsupported placeholder"),
        ("run {test_path!r}", TEST_VARIABLES, "unsupported placeholder"),
        ("run {}", TEST_VARIABLES, "unsupported placeholder"),
        ("run {test_path", TEST_VARIABLES, "bad placeholder"),
        ("install {test_path}", INSTALL_VARIABLES, "test_path"),
    ],
)
def test_bad_templates_are_refused_at_startup(
    template: str, variables: frozenset[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        CommandTemplate.parse(template, variables, source="AGENT_COMMAND")


def test_braces_can_be_escaped_in_templates() -> None:
    template = CommandTemplate.parse("echo {{literal}} {test_path}", TEST_VARIABLES, source="X")
    assert template.render(_job().variables()) == ["echo", "{literal}", "tests/onboarding.spec.js"]


def test_environment_reaches_the_test_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QGJOB_TEST_MARKER", "seen")
    outcome = _driver("sh -c 'echo $QGJOB_TEST_MARKER'").run_test(_job())
    assert outcome.log_tail.strip() == "seen"


def _config(**environ: str) -> Config:
    return Config.from_env(EMULATOR, {"AGENT_DRIVER": "command", **environ})


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("AGENT_COMMAND", "/nonexistent/appwright test {test_path}"),
        ("AGENT_COMMAND", "qgjob-no-such-program test {test_path}"),
        ("AGENT_INSTALL_COMMAND", "/nonexistent/installer {app_version_id}"),
    ],
)
def test_a_program_that_is_not_installed_stops_the_agent_at_startup(
    name: str, template: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: program .* not found"):
        CommandDriver.from_config(_config(**{name: template}))


def test_installed_programs_are_accepted_at_startup() -> None:
    driver = CommandDriver.from_config(
        _config(AGENT_COMMAND=f"{PYTHON} {{test_path}}", AGENT_INSTALL_COMMAND="true")
    )
    assert driver.name == "command"


def test_a_program_named_by_a_placeholder_is_only_known_per_test() -> None:
    CommandDriver.from_config(_config(AGENT_COMMAND="{test_path} --project {target}"))


def test_the_agent_exits_with_one_line_naming_agent_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_DRIVER", "command")
    monkeypatch.setenv("AGENT_COMMAND", "qgjob-no-such-program test {test_path}")
    with pytest.raises(SystemExit) as exited:
        worker.main(EMULATOR)
    message = str(exited.value.code)
    assert message.startswith("qgjob agent (emulator): configuration error: AGENT_COMMAND: ")
    assert "'qgjob-no-such-program'" in message
    assert "\n" not in message
