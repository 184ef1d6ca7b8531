"""The layering docs/architecture.md promises: no import cycle, stages never import each other,
small modules, and the table-set difference kept in one module."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines import STAGES
from tests.conftest import REPO
from tests.test_dvc_deps import _imports, _module_file

MAX_LINES = 400


def _modules() -> list[str]:
    out = []
    for f in sorted((REPO / "pipelines").rglob("*.py")):
        name = ".".join(f.relative_to(REPO).with_suffix("").parts)
        out.append(name.removesuffix(".__init__"))
    return out


def _graph() -> dict[str, set[str]]:
    """Module -> the pipelines modules it imports (a package's own parents left out)."""
    graph = {}
    for m in _modules():
        graph[m] = {d for d in _imports(_module_file(m)) if d != m and not m.startswith(d + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            comp.append(v)
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_stages_never_import_each_other() -> None:
    graph = _graph()
    stages = {f"pipelines.{s}" for s in STAGES}
    wrong = {s: sorted(graph[s] & stages) for s in stages if graph[s] & stages}
    assert not wrong, f"stage modules import other stages: {wrong}"


def test_no_module_over_the_size_limit() -> None:
    sizes = {f: len(f.read_text(encoding="utf-8").splitlines()) for f in (REPO / "pipelines").rglob("*.py")}
    big = {str(f.relative_to(REPO)): n for f, n in sizes.items() if n > MAX_LINES}
    assert not big, f"split these by concern: {big}"


def test_single_vs_several_tables_is_decided_in_the_table_set_module_only() -> None:
    """Only tableset.py looks at `source.tables` to tell one table from several."""
    pattern = re.compile(r"\w\.source\.tables\b")  # code (cfg.source.tables), not messages
    offenders = [
        str(f.relative_to(REPO))
        for f in (REPO / "pipelines").rglob("*.py")
        if f.name != "tableset.py" and pattern.search(Path(f).read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_no_engine_module_shadows_the_standard_library() -> None:
    """External runners run as scripts from pipelines/engines/, which is then first on sys.path:
    a module named like a stdlib one (select.py) breaks every import of it in the engine's env."""
    import sys

    shadowing = sorted(
        f.name for f in (REPO / "pipelines" / "engines").glob("*.py") if f.stem in sys.stdlib_module_names
    )
    assert not shadowing, f"rename these: {shadowing}"
