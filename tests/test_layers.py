"""The house's import rules, read from the source (every import, lazy ones included):
data flows one way (features <- extract <- train <- evaluate), the method in train/model/
imports nothing of the run engine, scoring reaches into train only through train.model and
the run folder's owner train.rundir, and no module imports itself round a circle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "extract", "train", "evaluate", "samples")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    for single in ("pipeline", "demo"):
        found[single] = ROOT / f"{single}.py"
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports: ``from a.b import c`` is ``a.b.c`` when that
    is a module, else ``a.b``."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("layer, forbidden", [
    ("features", {"extract", "train", "evaluate", "samples", "pipeline", "demo"}),
    ("extract", {"train", "evaluate", "samples", "pipeline", "demo"}),
    ("train", {"extract", "evaluate", "pipeline", "demo"}),
    ("evaluate", {"samples", "pipeline", "demo"}),
])
def test_data_flows_one_way(layer, forbidden):
    wrong = {(m, t) for m, targets in GRAPH.items() if _layer(m) == layer
             for t in targets if _layer(t) in forbidden}
    assert not wrong, f"imports against the flow: {sorted(wrong)}"


def test_the_method_imports_nothing_of_the_run_engine():
    wrong = {(m, t) for m, targets in GRAPH.items() if m.startswith("train.model")
             for t in targets if _layer(t) == "train" and not t.startswith("train.model")}
    assert not wrong, sorted(wrong)


def test_scoring_uses_only_the_model_the_run_folder_and_the_extract_stage():
    allowed = {"train.model", "train.rundir", "extract"}
    wrong = {(m, t) for m, targets in GRAPH.items() if _layer(m) == "evaluate"
             for t in targets if _layer(t) in ("train", "extract")
             and not any(t == a or t.startswith(a + ".") and a != "extract" for a in allowed)}
    assert not wrong, f"evaluate reaches into internals: {sorted(wrong)}"


def test_no_import_circle():
    """A circle through modules (package __init__ files, which only re-export, are not
    followed)."""
    edges = {m: {t for t in ts if not _is_package(t)} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
