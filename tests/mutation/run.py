"""`make mutation`: mutation testing of the pure-logic modules against the unit tests.

For every module listed in tests/mutation/modules.toml, cosmic-ray makes each mutant (one small
change to the source) and runs that module's unit tests on it: a mutant the tests notice is
killed; one they do not notice survived. A survivor is either a gap in the tests or an
equivalent mutant (a change no test can notice, such as an unused default); equivalents are
listed, with the reason, in tests/mutation/equivalents.toml and leave the score's denominator.

cosmic-ray changes files in place, so each module is mutated in its own scratch copy of the
checkout (never in the work tree, which a docker build may be reading), and that copy's
packages come first on PYTHONPATH so they shadow the editable installs. Modules run in
parallel, `--jobs` at a time (default 2, the size of this project's machines).

A module's result is kept in tests/mutation/.cache/ (not in git) under a fingerprint of
everything that can change it: this runner, the module's entry, the module, its tests and
the conftest.py files pytest loads for them, each repository file those import (followed
import by import, packages' __init__.py included), every file inside the packages that is
not Python (Lua scripts, data), each component's pyproject.toml, tests/schemas, the
repository's pyproject.toml and the requirements, and a README
when one of those Python files names it (`DOCUMENTS`). A later run whose fingerprint matches reuses
that result instead of mutating again (the line says "cached"); a change to any of those
makes the module run again, and a change to code none of them imports does not. `--fresh`
ignores the cache. `--module PATH` (repeatable) runs only the modules named.

Prints one line per module, every surviving mutant that is not a listed equivalent, and as
its LAST line one JSON object: {"mutants", "killed", "survived", "equivalent", "skipped",
"score", "seconds"}, where score = killed / (mutants - equivalent). Exits 1 when any
unlisted mutant survived, a module's tests fail unmutated, or the list is wrong for a
module that ran: an entry matching no survivor (stale) or more than one (each must be
judged alone), else 0. An entry is keyed by module, definition, operator and the line's
text before and after (`Key`).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MODULES_FILE = HERE / "modules.toml"
# Files outside the packages that every module's result depends on: the configuration and
# the tools' versions (pytest, cosmic-ray, pydantic...).
SETTINGS = ["pyproject.toml", "requirements-dev.txt"]
# Documents some tests read (the exit-code tables, documented defaults): an input of a module
# when one of its Python inputs names the file.
DOCUMENTS = ["README.md", "cli/README.md"]
EQUIVALENTS_FILE = HERE / "equivalents.toml"
CACHE_DIR = HERE / ".cache"
# The package roots of the repository (the editable installs), shadowed in each copy.
PACKAGE_ROOTS = [
    "contract",
    "services/api",
    "services/scheduler",
    "services/agent-runtime",
    "services/agent-emulator",
    "services/agent-device",
    "services/agent-browserstack",
    "cli",
]
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".e2e", "build", "dist", "*.sqlite",
)  # fmt: skip
# pytest plugins of the dev tools that no unit test uses (hypothesis and schemathesis for the
# API's fuzz tests, anyio): loading them took ~3 s of CPU per mutant, six times the run of a
# small module's tests. A unit test that needs one fails the unmutated baseline (an ERROR line).
NO_PLUGINS = "-p no:hypothesispytest -p no:schemathesis -p no:anyio"
# A mutant whose tests run longer than this many times the unmutated run (an endless loop)
# counts as killed; never less than MIN_TIMEOUT_S.
TIMEOUT_FACTOR = 4.0
MIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Module:
    path: str
    tests: list[str]
    skip_definitions: list[str] = field(default_factory=list)


# An equivalent mutant's identity: (module, definition ("" at module level), operator, the
# source line, the mutated line). Text, not line numbers, so an entry survives edits above it.
Key = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Mutant:
    module: str
    operator: str
    line: int
    original: str  # the source line, stripped
    mutated: str  # the same line after the mutation, stripped ("" when removed)
    definition: str | None

    @property
    def key(self) -> Key:
        return (self.module, self.definition or "", self.operator, self.original, self.mutated)

    def describe(self) -> str:
        where = f"{self.module}:{self.line}" + (f" in {self.definition}" if self.definition else "")
        return f"{where} [{self.operator}]\n    - {self.original}\n    + {self.mutated}"


@dataclass
class Outcome:
    module: str
    mutants: int = 0
    killed: int = 0
    skipped: int = 0
    survivors: list[Mutant] = field(default_factory=list)
    # Mutants counted killed because their tests ran past the timeout (an endless loop, or
    # a loaded machine): an equivalent one among them cannot be told from a killed one.
    timeouts: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "mutants": self.mutants,
            "killed": self.killed,
            "skipped": self.skipped,
            "survivors": [vars(m) for m in self.survivors],
            "timeouts": [vars(m) for m in self.timeouts],
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            module=data["module"],
            mutants=data["mutants"],
            killed=data["killed"],
            skipped=data["skipped"],
            survivors=[Mutant(**m) for m in data["survivors"]],
            timeouts=[Mutant(**m) for m in data.get("timeouts", [])],
            seconds=data["seconds"],
            cached=True,
        )


def load_modules(path: Path = MODULES_FILE) -> list[Module]:
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["module"]
    return [
        Module(entry["path"], list(entry["tests"]), list(entry.get("skip-definitions", [])))
        for entry in entries
    ]


def load_equivalents(path: Path = EQUIVALENTS_FILE) -> dict[Key, str]:
    """`Key` -> why that mutant is equivalent. Every entry names its `definition` (the
    function or method, "" at module level) and gives a reason; an entry listed twice is an
    error."""
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])
    found: dict[Key, str] = {}
    for e in entries:
        key = (e["module"], e["definition"], e["operator"], e["original"], e["mutated"])
        if key in found:
            raise ValueError(f"{path.name}: listed twice: {key}")
        if not e["reason"].strip():
            raise ValueError(f"{path.name}: no reason given: {key}")
        found[key] = e["reason"]
    return found


def misfits(equivalents: dict[Key, str], outcomes: list[Outcome]) -> list[str]:
    """What is wrong with the list, for the modules that ran: an entry that matches no
    survivor (stale: the mutant is killed now, or the code changed) and one that matches
    more than one (the same text twice in a definition: each must be judged alone). An
    entry whose mutant was only killed by the timeout is not called stale: an equivalent
    mutant on a loaded machine can run past it."""
    problems = []
    for outcome in outcomes:
        if outcome.error:
            continue
        matches: dict[Key, list[int]] = {}
        for mutant in outcome.survivors:
            matches.setdefault(mutant.key, []).append(mutant.line)
        timed_out = {mutant.key for mutant in outcome.timeouts}
        for key in sorted(k for k in equivalents if k[0] == outcome.module):
            lines = matches.get(key, [])
            if not lines and key in timed_out:
                print(f"  note: listed equivalent killed by the timeout only (kept): {key}")
            elif not lines:
                problems.append(f"stale (no such survivor; remove it): {key}")
            elif len(lines) > 1:
                problems.append(f"matches {len(lines)} survivors (lines {lines}): {key}")
    return problems


def _config(module: Module, python: str, timeout_s: float) -> str:
    tests = " ".join(module.tests)
    command = (
        f"{python} -m pytest -x -q -p no:randomly -p no:cacheprovider {NO_PLUGINS} "
        f"-W ignore::pytest.PytestUnraisableExceptionWarning {tests}"
    )
    return "\n".join(
        [
            "[cosmic-ray]",
            f"module-path = {json.dumps(module.path)}",
            f"timeout = {timeout_s:.1f}",
            "excluded-modules = []",
            f"test-command = {json.dumps(command)}",
            "[cosmic-ray.distributor]",
            'name = "local"',
            "",
        ]
    )


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _mutant(spec: dict[str, Any], diff: str | None, source: list[str]) -> Mutant:
    line = int(spec["start_pos"][0])
    original = source[line - 1].strip() if line <= len(source) else ""
    removed = [
        d[1:].strip()
        for d in (diff or "").splitlines()
        if d.startswith("-") and not d.startswith("---")
    ]
    added = [
        d[1:].strip()
        for d in (diff or "").splitlines()
        if d.startswith("+") and not d.startswith("+++")
    ]
    if removed:
        original = removed[0]
    return Mutant(
        module=spec["module_path"],
        operator=spec["operator_name"],
        line=line,
        original=original,
        mutated=added[0] if added else "",
        definition=spec.get("definition_name"),
    )


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.endswith(".egg-info") for part in p.parts)
    )


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every Python file of the packages and of tests/
    and bench/ (the tests import `tests.…` and `bench.…` from the repository root)."""
    names: dict[str, Path] = {}
    roots = [(REPO / root, REPO / root) for root in PACKAGE_ROOTS]
    roots += [(REPO / "tests", REPO), (REPO / "bench", REPO)]
    for root, base in roots:
        for file in _files(root):
            if file.suffix != ".py":
                continue
            parts = list(file.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                names[".".join(parts)] = file
    return names


def _imported(file: Path, name: str, names: dict[str, Path]) -> set[str]:
    """The repository modules `file` (module `name`) imports, with their parent packages."""
    found: set[str] = set()
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(file.read_bytes())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            parts = target.split(".")
            prefixes = (".".join(parts[:n]) for n in range(1, len(parts) + 1))
            found.update(prefix for prefix in prefixes if prefix in names)
    return found


def _python_inputs(module: Module) -> list[Path]:
    """The module, its tests, the conftest.py files pytest loads for them (in the tests'
    folders and above), and what those import, transitively."""
    names = _module_files()
    by_file = {file: name for name, file in names.items()}
    tests = [f for test in module.tests for f in _files(REPO / test) if f.suffix == ".py"]
    folders = {folder for f in tests for folder in f.parents if folder.is_relative_to(REPO)}
    start = [REPO / module.path, *tests]
    start += [folder / "conftest.py" for folder in folders if (folder / "conftest.py").exists()]
    seen: dict[Path, str] = {}
    todo = [(f, by_file.get(f, "")) for f in start]
    while todo:
        file, name = todo.pop()
        if file in seen:
            continue
        seen[file] = name
        todo += [(names[n], n) for n in _imported(file, name, names) if names[n] not in seen]
    return sorted(seen)


def fingerprint(module: Module) -> str:
    """A digest of every input that can change a module's mutation result (see above)."""
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update(json.dumps([module.path, module.tests, module.skip_definitions]).encode())
    # Lua scripts and other data a module may read at run time: the packages' own files that
    # are not Python (not the components' READMEs or Dockerfiles), and each component's
    # pyproject.toml (its dependencies).
    data = [
        f
        for root in PACKAGE_ROOTS
        for package in sorted((REPO / root).glob("qgjob_*"))
        for f in _files(package)
        if f.suffix != ".py"
    ]
    data += [REPO / root / "pyproject.toml" for root in PACKAGE_ROOTS]
    data = [f for f in data if f.is_file()]
    inputs = [*_python_inputs(module), *data, *_files(REPO / "tests" / "schemas")]
    inputs += [f for test in module.tests for f in _files(REPO / test) if f.suffix != ".py"]
    inputs += [REPO / name for name in SETTINGS if (REPO / name).is_file()]
    code = b"\0".join(f.read_bytes() for f in inputs if f.suffix == ".py")
    inputs += [
        REPO / name
        for name in DOCUMENTS
        if (REPO / name).is_file() and Path(name).name.encode() in code
    ]
    for file in sorted(set(inputs)):
        digest.update(str(file.relative_to(REPO)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_file(module: Module) -> Path:
    return CACHE_DIR / (module.path.replace("/", "_") + ".json")


def cached_outcome(module: Module, key: str) -> Outcome | None:
    try:
        data = json.loads(_cache_file(module).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Outcome.from_json(data["outcome"]) if data.get("fingerprint") == key else None


def store_outcome(module: Module, key: str, outcome: Outcome) -> None:
    if outcome.error:
        return
    CACHE_DIR.mkdir(exist_ok=True)
    data = {"fingerprint": key, "outcome": outcome.to_json()}
    _cache_file(module).write_text(json.dumps(data, indent=1), encoding="utf-8")


def run_module(module: Module, scratch: Path, *, fresh: bool) -> Outcome:
    """The module's outcome: from the cache when its inputs are unchanged, else mutated."""
    key = fingerprint(module)
    if not fresh and (outcome := cached_outcome(module, key)) is not None:
        return outcome
    outcome = mutate_module(module, scratch)
    store_outcome(module, key, outcome)
    return outcome


def mutate_module(module: Module, scratch: Path) -> Outcome:
    """Init, filter and execute one cosmic-ray session on a fresh copy of the checkout."""
    started = time.monotonic()
    outcome = Outcome(module.path)
    copy = scratch / module.path.replace("/", "_")
    shutil.copytree(REPO, copy, ignore=IGNORED)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(copy / root) for root in PACKAGE_ROOTS),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    config = copy / "cosmic-ray.toml"
    session = copy / "session.sqlite"
    cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]

    config.write_text(_config(module, sys.executable, 600.0), encoding="utf-8")
    baseline_started = time.monotonic()
    baseline = _run([*cosmic_ray, "baseline", str(config)], copy, env)
    timeout_s = max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * (time.monotonic() - baseline_started))
    config.write_text(_config(module, sys.executable, timeout_s), encoding="utf-8")
    if baseline.returncode != 0:
        outcome.error = (
            f"the unmutated tests fail:\n{baseline.stdout[-3000:]}{baseline.stderr[-3000:]}"
        )
        return outcome
    for step in (["init", str(config), str(session)],):
        done = _run([*cosmic_ray, *step], copy, env)
        if done.returncode != 0:
            outcome.error = f"cosmic-ray {step[0]} failed:\n{done.stderr[-3000:]}"
            return outcome
    outcome.skipped = _skip(session, module.skip_definitions, _signature_spans(copy / module.path))
    done = _run([*cosmic_ray, "exec", str(config), str(session)], copy, env)
    if done.returncode != 0:
        outcome.error = f"cosmic-ray exec failed:\n{done.stderr[-3000:]}"
        return outcome
    dump = _run([*cosmic_ray, "dump", str(session)], copy, env)
    source = (copy / module.path).read_text(encoding="utf-8").splitlines()
    for line in dump.stdout.splitlines():
        item, result = json.loads(line)
        if result is None or result["worker_outcome"] == "skipped":
            continue
        outcome.mutants += 1
        (spec,) = item["mutations"]
        if result["test_outcome"] == "survived":
            outcome.survivors.append(_mutant(spec, result.get("diff"), source))
        else:
            outcome.killed += 1
            if result.get("output") == "timeout":  # cosmic-ray's mark for a timed-out run
                outcome.timeouts.append(_mutant(spec, result.get("diff"), source))
    outcome.seconds = time.monotonic() - started
    return outcome


Span = tuple[tuple[int, int], tuple[int, int]]


def _signature_spans(path: Path) -> list[Span]:
    """Where a function's parameter and return annotations are, in a module that has
    `from __future__ import annotations`: there they are strings never evaluated, so a
    mutant inside one (`Job | None` -> `Job + None`) cannot change behaviour."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if not any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    ):
        return []
    annotations: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = node.args
            every = [
                *arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                *([arguments.vararg] if arguments.vararg else []),
                *([arguments.kwarg] if arguments.kwarg else []),
            ]  # fmt: skip
            annotations += [arg.annotation for arg in every if arg.annotation is not None]
            if not isinstance(node, ast.Lambda) and node.returns is not None:
                annotations.append(node.returns)
    return [
        ((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0))
        for a in annotations
    ]


def _inside(position: tuple[int, int], spans: list[Span]) -> bool:
    return any(start <= position < end for start, end in spans)


def _skip(session: Path, definitions: list[str], annotation_spans: list[Span]) -> int:
    """Mark skipped the mutants inside `definitions` (not pure logic) or inside a signature's
    annotations (never evaluated); return how many."""
    if not definitions and not annotation_spans:
        return 0
    from cosmic_ray.work_db import WorkDB, use_db  # noqa: PLC0415 (only with cosmic-ray)
    from cosmic_ray.work_item import WorkerOutcome, WorkResult  # noqa: PLC0415

    skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (mutation,) = item.mutations
            if mutation.definition_name in definitions:
                why = "not pure logic"
            elif _inside(tuple(mutation.start_pos), annotation_spans):
                why = "inside an unevaluated annotation"
            else:
                continue
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))
            skipped += 1
    return skipped


def _stub(mutant: Mutant) -> str:
    return (
        "\n[[equivalent]]\n"
        f"module = {json.dumps(mutant.module)}\n"
        f"definition = {json.dumps(mutant.definition or '')}\n"
        f"operator = {json.dumps(mutant.operator)}\n"
        f"original = {json.dumps(mutant.original)}\n"
        f"mutated = {json.dumps(mutant.mutated)}\n"
        'reason = ""\n'
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="modules mutated at once")
    parser.add_argument("--module", action="append", help="only this module path (repeatable)")
    parser.add_argument(
        "--fresh", action="store_true", help="mutate every module again (ignore the cache)"
    )
    parser.add_argument(
        "--stubs",
        type=Path,
        help="write the unexplained survivors to this file as equivalents.toml entries "
        "(reason left empty) for review",
    )
    args = parser.parse_args(argv)

    modules = load_modules()
    if args.module:
        unknown = set(args.module) - {m.path for m in modules}
        if unknown:
            parser.error(f"not in {MODULES_FILE.name}: {', '.join(sorted(unknown))}")
        modules = [m for m in modules if m.path in args.module]
    equivalents = load_equivalents()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="qgjob-mutation-") as scratch,
        ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool,
    ):
        outcomes = list(pool.map(lambda m: run_module(m, Path(scratch), fresh=args.fresh), modules))

    total = killed = survived = equivalent = skipped = cached = 0
    mutating_s = 0.0
    failed = False
    for outcome in outcomes:
        if outcome.error:
            failed = True
            print(f"{outcome.module}: ERROR {outcome.error}")
            continue
        unexplained = [m for m in outcome.survivors if m.key not in equivalents]
        listed = len(outcome.survivors) - len(unexplained)
        total += outcome.mutants
        killed += outcome.killed
        survived += len(unexplained)
        equivalent += listed
        skipped += outcome.skipped
        cached += outcome.cached
        mutating_s += outcome.seconds
        print(
            f"{outcome.module}: {outcome.mutants} mutants, {outcome.killed} killed, "
            f"{len(unexplained)} survived, {listed} equivalent, {outcome.skipped} skipped "
            f"({outcome.seconds:.0f} s{', cached: inputs unchanged' if outcome.cached else ''})"
        )
        for mutant in unexplained:
            print(f"  SURVIVED {mutant.describe()}")
    if args.stubs:
        args.stubs.write_text(
            "".join(_stub(m) for o in outcomes for m in o.survivors if m.key not in equivalents),
            encoding="utf-8",
        )
    problems = misfits(equivalents, outcomes)
    for problem in problems:
        print(f"  {EQUIVALENTS_FILE.name}: {problem}")
    scored = total - equivalent
    score = killed / scored if scored else 1.0
    print(
        json.dumps(
            {
                "mutants": total,
                "killed": killed,
                "survived": survived,
                "equivalent": equivalent,
                "skipped": skipped,
                "score": round(score, 4),
                "seconds": round(time.monotonic() - started, 1),
                "modules": len(outcomes),
                "cached_modules": cached,
                "mutating_seconds": round(mutating_s, 1),
            }
        )
    )
    return 1 if failed or survived or problems else 0


if __name__ == "__main__":
    sys.exit(main())
