"""dvc.yaml's code deps cover exactly what each stage imports inside `pipelines/`.

A stage runs `python -m pipelines <stage> <ds>`: the entry modules plus the stage module and
everything it imports (at module level or inside functions; `TYPE_CHECKING` imports do not run).
DVC re-runs a stage when one of its deps changes, so a module missing from the deps is a change
DVC would not see.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from pipelines import STAGES
from tests.conftest import REPO

PKG = REPO / "pipelines"
ENTRY = ("pipelines/__init__.py", "pipelines/__main__.py", "pipelines/cli.py")
"""What every `python -m pipelines <stage>` loads before the stage (cli's own command imports aside),
besides the config package and what it imports."""


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for candidate in (REPO / rel.with_suffix(".py"), REPO / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _imports(path: Path) -> set[str]:
    """Every `pipelines.*` module a file imports, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pipelines")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipelines"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    return {m for name in found for m in _with_parents(name) if _module_file(m)}


def closure(module: str) -> set[str]:
    """Repo-relative files of `module` and everything it imports from `pipelines`, transitively."""
    todo, seen = [module], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(_imports(_module_file(name)) - seen)
    return {str(_module_file(m).relative_to(REPO)) for m in seen}


def _covered(file: str, deps: list[str]) -> bool:
    return any(file == d or file.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_code_deps_cover_its_imports(stage: str) -> None:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["do"]
    deps = [d for d in spec["deps"] if d.startswith("pipelines")]
    needed = closure(f"pipelines.{stage}") | closure("pipelines.config") | set(ENTRY)
    missing = sorted(f for f in needed if not _covered(f, deps))
    assert not missing, f"dvc.yaml stage {stage!r} lacks code deps {missing}"


def test_closure_follows_function_level_imports_and_skips_type_checking() -> None:
    files = closure("pipelines.validate")
    assert "pipelines/validate.py" in files and "pipelines/tableset.py" in files
    assert "pipelines/paths.py" not in closure("pipelines.keys")  # keys names paths only for typing


def test_every_stage_output_is_git_ignored_by_construction():
    """A failed first `dvc repro` of a new dataset must leave nothing `git add -A` would commit."""
    import subprocess

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = [
        (next(iter(o)) if isinstance(o, dict) else o).replace("${key}", "newds")
        for spec in stages.values()
        for section in ("outs", "metrics")
        for o in spec["do"].get(section, [])
    ]
    assert len(outs) >= 10
    files = [f"{o}/part-0.parquet" if not o.rsplit("/", 1)[-1].count(".") else o for o in outs]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *files], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    assert sorted(ignored) == sorted(files), sorted(set(files) - set(ignored))
