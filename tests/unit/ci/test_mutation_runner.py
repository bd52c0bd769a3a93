"""`make mutation` reuses a module's result only while nothing it runs has changed: the
fingerprint follows the imports of the module and of its tests, and nothing else."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

RUNNER = Path(__file__).resolve().parents[2] / "mutation" / "run.py"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    files = {
        "pkg/qgjob_x/__init__.py": "",
        "pkg/qgjob_x/logic.py": "from .helpers import double\n",
        "pkg/qgjob_x/helpers.py": "from qgjob_x import names\ndef double(x): return 2 * x\n",
        "pkg/qgjob_x/names.py": "A = 1\n",
        "pkg/qgjob_x/unrelated.py": "B = 2\n",
        "pkg/qgjob_x/script.lua": "return 1\n",
        "pkg/README.md": "# the component\n",
        "pkg/pyproject.toml": "[project]\n",
        "tests/conftest.py": "",
        "tests/unit/test_logic.py": "from qgjob_x.logic import double\nDOC = 'README.md'\n",
        "tests/other/conftest.py": "from qgjob_x import unrelated\n",
        "pyproject.toml": "",
        "README.md": "# x\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    runner = _runner()
    monkeypatch.setattr(runner, "REPO", tmp_path)
    monkeypatch.setattr(runner, "PACKAGE_ROOTS", ["pkg"])
    return runner


def _key(runner: ModuleType) -> str:
    module = runner.Module("pkg/qgjob_x/logic.py", ["tests/unit/test_logic.py"])
    key: str = runner.fingerprint(module)
    return key


@pytest.mark.parametrize(
    "changed",
    [
        "pkg/qgjob_x/logic.py",  # the module
        "pkg/qgjob_x/helpers.py",  # imported relatively by it
        "pkg/qgjob_x/names.py",  # imported by what it imports
        "pkg/qgjob_x/__init__.py",  # its package
        "pkg/qgjob_x/script.lua",  # data a module may read
        "pkg/pyproject.toml",  # the component's dependencies
        "README.md",  # a document the test names
        "tests/unit/test_logic.py",  # its test
        "tests/conftest.py",  # a conftest pytest loads for that test
    ],
)
def test_a_change_to_what_the_module_or_its_tests_run_changes_the_fingerprint(
    repo: ModuleType, changed: str
) -> None:
    before = _key(repo)
    path = repo.REPO / changed
    path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert _key(repo) != before


@pytest.mark.parametrize(
    "changed", ["pkg/qgjob_x/unrelated.py", "tests/other/conftest.py", "pkg/README.md"]
)
def test_a_change_to_code_nothing_of_it_imports_keeps_the_fingerprint(
    repo: ModuleType, changed: str
) -> None:
    before = _key(repo)
    path = repo.REPO / changed
    path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert _key(repo) == before


def _mutant(runner: ModuleType, line: int, definition: str | None = "double") -> Any:
    return runner.Mutant("m.py", "core/Op", line, "x = 1", "x = 2", definition)


def test_an_equivalent_must_match_exactly_one_survivor_of_a_module_that_ran(
    repo: ModuleType,
) -> None:
    outcome = repo.Outcome("m.py", survivors=[_mutant(repo, 3), _mutant(repo, 9, "triple")])
    listed = {
        ("m.py", "double", "core/Op", "x = 1", "x = 2"): "one survivor: fine",
        ("m.py", "half", "core/Op", "x = 1", "x = 2"): "no such survivor",
        ("other.py", "f", "core/Op", "y", "z"): "a module that did not run",
    }
    assert repo.misfits(listed, [outcome]) == [
        "stale (no such survivor; remove it): ('m.py', 'half', 'core/Op', 'x = 1', 'x = 2')"
    ]
    twice = repo.Outcome("m.py", survivors=[_mutant(repo, 3), _mutant(repo, 5)])
    (problem,) = repo.misfits({("m.py", "double", "core/Op", "x = 1", "x = 2"): "?"}, [twice])
    assert problem.startswith("matches 2 survivors (lines [3, 5])")


def test_an_equivalent_names_its_definition_and_a_reason_once(
    repo: ModuleType, tmp_path: Path
) -> None:
    entry = (
        '[[equivalent]]\nmodule = "m.py"\ndefinition = ""\noperator = "core/Op"\n'
        'original = "x = 1"\nmutated = "x = 2"\nreason = "{reason}"\n'
    )
    path = tmp_path / "equivalents.toml"
    path.write_text(entry.format(reason="never read"), encoding="utf-8")
    assert repo.load_equivalents(path) == {("m.py", "", "core/Op", "x = 1", "x = 2"): "never read"}
    path.write_text(entry.format(reason="a") + entry.format(reason="b"), encoding="utf-8")
    with pytest.raises(ValueError, match="listed twice"):
        repo.load_equivalents(path)
    path.write_text(entry.format(reason=" "), encoding="utf-8")
    with pytest.raises(ValueError, match="no reason"):
        repo.load_equivalents(path)
    path.write_text(entry.replace('definition = ""\n', ""), encoding="utf-8")
    with pytest.raises(KeyError):
        repo.load_equivalents(path)


def test_a_readme_no_test_of_the_module_names_is_not_an_input(repo: ModuleType) -> None:
    test = repo.REPO / "tests/unit/test_logic.py"
    test.write_text("from qgjob_x.logic import double\n", encoding="utf-8")
    before = _key(repo)
    readme = repo.REPO / "README.md"
    readme.write_text("# another text\n", encoding="utf-8")
    assert _key(repo) == before


def test_an_equivalent_killed_only_by_the_timeout_is_not_called_stale(repo: ModuleType) -> None:
    timed_out = repo.Outcome("m.py", timeouts=[_mutant(repo, 3)])
    listed = {("m.py", "double", "core/Op", "x = 1", "x = 2"): "slow on a loaded machine"}
    assert repo.misfits(listed, [timed_out]) == []
    assert repo.misfits(listed, [repo.Outcome("m.py")]) != []
