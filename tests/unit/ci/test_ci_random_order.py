"""`make test` runs the tests in a random order: pytest-randomly (requirements-dev.txt) is
loaded and reorders them, so no test can lean on another having run first.

Run with `-p no:randomly` (to replay without it), it checks only that `make test` would load
it. The mutation runner passes that flag (tests/mutation/run.py); this file sits in a folder
no module of tests/mutation/modules.toml lists all the same, which the second test keeps true.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().relative_to(REPO)


def test_pytest_randomly_is_loaded_and_reorders(pytestconfig: pytest.Config) -> None:
    if pytestconfig.pluginmanager.is_blocked("randomly"):
        # `-p no:randomly` on this command line (README: how to replay without it): what
        # `make test` runs must still load it.
        assert importlib.util.find_spec("pytest_randomly") is not None, "not installed"
        addopts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
        assert "randomly" not in addopts["ini_options"]["addopts"]
        assert "no:randomly" not in (REPO / "Makefile").read_text().split("\ntest:")[1][:200]
        return
    assert pytestconfig.pluginmanager.has_plugin("randomly"), "pytest-randomly is not loaded"
    assert pytestconfig.getoption("randomly_reorganize") is True  # not --randomly-dont-...


def test_no_mutation_run_includes_this_file() -> None:
    modules = tomllib.loads((REPO / "tests" / "mutation" / "modules.toml").read_text())["module"]
    listed = {Path(test) for module in modules for test in module["tests"]}
    assert listed, "modules.toml lists no tests"
    covering = sorted(str(path) for path in listed if path == HERE or path in HERE.parents)
    assert covering == [], f"a mutation run (-p no:randomly) would fail on {HERE}"
