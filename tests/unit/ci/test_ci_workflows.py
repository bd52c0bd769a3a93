"""The GitHub workflows and the qgjob action are checked with actionlint, and the action's
metadata agrees with its scripts (every input reaches a step, every INPUT_* is set)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTION = REPO / ".github" / "actions" / "qgjob"


def actionlint(*paths: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or "actionlint"
    return subprocess.run(
        [exe, "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_there_is_one_example_workflow_and_it_uses_the_action() -> None:
    names = [path.name for path in WORKFLOWS]
    assert "appwright.yml" in names
    assert not [name for name in names if name.startswith("appwright") and name != "appwright.yml"]
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "appwright.yml").read_text())
    steps = workflow["jobs"]["appwright"]["steps"]
    assert any(step.get("uses") == "./.github/actions/qgjob" for step in steps)


def test_workflows_pass_actionlint() -> None:
    done = actionlint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_wrong_input_of_the_action(tmp_path: Path) -> None:
    """The check can fail: a workflow giving the action an input it lacks is refused.

    Checked in a copy of the project's .github (actionlint finds local actions from the
    git root), so the repository itself is never written to.
    """
    shutil.copytree(REPO / ".github", tmp_path / ".github")
    (tmp_path / ".git").mkdir()
    bad = tmp_path / ".github" / "workflows" / "appwright.yml"
    bad.write_text(bad.read_text().replace("poll-interval:", "poll-intervall:"))
    assert actionlint(tmp_path / ".github" / "workflows" / "ci.yml", cwd=tmp_path).returncode == 0
    done = actionlint(bad, cwd=tmp_path)
    assert done.returncode != 0
    assert "poll-intervall" in done.stdout


def _action() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ACTION / "action.yml").read_text())
    return spec


def test_every_input_of_the_action_reaches_a_step() -> None:
    spec = _action()
    used = set(re.findall(r"inputs\.([\w-]+)", (ACTION / "action.yml").read_text()))
    assert set(spec["inputs"]) <= used


def test_every_input_variable_a_script_reads_is_set_by_its_step() -> None:
    for step in _action()["runs"]["steps"]:
        if "run" not in step:
            continue
        (script,) = re.findall(r'"\$ACTION_PATH/([\w.]+)"', step["run"])
        text = (ACTION / script).read_text()
        read = set(re.findall(r"\$\{?(INPUT_\w+)", text))
        assert read <= set(step.get("env", {})), (script, read - set(step.get("env", {})))


@pytest.mark.parametrize("script", sorted(path.name for path in ACTION.glob("*.sh")))
def test_action_scripts_are_valid_bash(script: str) -> None:
    done = subprocess.run(["bash", "-n", str(ACTION / script)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
