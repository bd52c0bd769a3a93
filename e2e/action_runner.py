"""Runs a composite action's steps the way a GitHub runner does, for tests.

Inputs become the values of `${{ inputs.* }}` (defaults from action.yml), each `run:` step
is written to a file and run as GitHub runs `shell: bash` (`bash --noprofile --norc -eo
pipefail FILE`) with its `env:` rendered, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY and
$RUNNER_TEMP pointing at files of the test, and outputs read back from $GITHUB_OUTPUT for
later `${{ steps.<id>.outputs.* }}`. `if:` conditions are evaluated for the few forms the
action uses; `uses:` steps (the artifact upload) are not run, only their `with:` rendered.
Anything else in an expression fails loudly: the runner never guesses.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    ran: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    with_: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepResult]
    summary: str
    outputs: dict[str, dict[str, str]]

    @property
    def failed(self) -> bool:
        return any(step.returncode != 0 for step in self.steps)

    def step(self, name: str) -> StepResult:
        (found,) = (step for step in self.steps if step.name == name)
        return found


def run_action(
    action_dir: Path,
    inputs: dict[str, str],
    *,
    workspace: Path,
    scratch: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 300,
) -> ActionRun:
    spec: dict[str, Any] = yaml.safe_load((action_dir / "action.yml").read_text())
    declared: dict[str, dict[str, Any]] = spec["inputs"]
    unknown = set(inputs) - set(declared)
    if unknown:
        raise ValueError(f"inputs not declared in action.yml: {sorted(unknown)}")
    values = {
        name: inputs.get(name, str(meta.get("default", ""))) for name, meta in declared.items()
    }
    missing = [name for name, meta in declared.items() if meta.get("required") and not values[name]]
    if missing:
        raise ValueError(f"required inputs missing: {missing}")
    runner_temp = scratch / "runner-temp"
    runner_temp.mkdir(parents=True, exist_ok=True)
    summary = scratch / "step-summary.md"
    summary.touch()
    outputs: dict[str, dict[str, str]] = {}
    context = _Context(values, str(action_dir), outputs)
    results: list[StepResult] = []
    for index, step in enumerate(spec["runs"]["steps"]):
        name = step.get("name", f"step {index}")
        failed_before = any(result.returncode != 0 for result in results)
        if not context.condition(step.get("if"), failed_before=failed_before):
            results.append(StepResult(name, ran=False))
            continue
        if "uses" in step:
            rendered = {
                key: context.render(str(value)) for key, value in step.get("with", {}).items()
            }
            results.append(StepResult(name, ran=False, with_=rendered))
            continue
        assert step.get("shell") == "bash", f"{name}: only bash steps are supported"
        script = scratch / f"step-{index}.sh"
        script.write_text(context.render(step["run"]))
        github_output = scratch / f"step-{index}.output"
        github_output.touch()
        step_env = {
            **os.environ,
            **(env or {}),
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action_dir),
            "GITHUB_OUTPUT": str(github_output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(runner_temp),
            **{key: context.render(str(value)) for key, value in step.get("env", {}).items()},
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        results.append(StepResult(name, True, done.returncode, done.stdout, done.stderr))
        if "id" in step:
            outputs[step["id"]] = _read_outputs(github_output)
    return ActionRun(results, summary.read_text(), outputs)


def _read_outputs(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


@dataclass
class _Context:
    inputs: dict[str, str]
    action_path: str
    outputs: dict[str, dict[str, str]]

    def value(self, expression: str) -> str:
        if expression.startswith("inputs."):
            return self.inputs[expression.removeprefix("inputs.")]
        if expression == "github.action_path":
            return self.action_path
        match = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        if match:
            return self.outputs.get(match[1], {}).get(match[2], "")
        raise ValueError(f"expression not supported by the test runner: {expression!r}")

    def render(self, text: str) -> str:
        return _EXPR.sub(lambda match: self.value(match[1]), text)

    def condition(self, expression: str | None, *, failed_before: bool) -> bool:
        """`if:`; no condition means success() (every earlier step succeeded)."""
        if expression is None:
            return not failed_before
        expression = _EXPR.sub(lambda match: match[1], expression)
        result = True
        for term in (part.strip() for part in expression.split("&&")):
            if term == "always()":
                continue
            if term == "success()":
                result = result and not failed_before
                continue
            match = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", term)
            if not match:
                raise ValueError(f"condition not supported by the test runner: {term!r}")
            equal = self.value(match[1]) == match[3]
            result = result and (equal if match[2] == "==" else not equal)
        if "always()" not in expression and "success()" not in expression:
            result = result and not failed_before
        return result
