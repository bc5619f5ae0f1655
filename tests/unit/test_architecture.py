"""The shape of the code base, checked: the import graph has no cycle and the service never
imports training; the online pipeline's functions fit on a screen; the README's layout and
the documents the code cites match the tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("service", "training")
MAX_ONLINE_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in it (function-level imports too). As in
    import-linter, ``from a import b`` imports module ``a.b`` when there is one, else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            full = [f"{base}.{alias.name}" for alias in node.names]
            candidates = [c if c in known else base for c in full]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([node, *component]))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert "service.online.recommender" in graph  # the walk found the code
    assert cycles(graph) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_service_never_imports_training_or_tensorflow():
    graph = import_graph()
    into_training = {(m, t) for m, ts in graph.items() for t in ts if t.startswith("training")}
    assert {(m, t) for m, t in into_training if m.startswith("service")} == set()
    for name, path in modules().items():
        if name.startswith("service"):
            assert not re.search(
                r"^\s*(import|from) (tensorflow|keras|tf2onnx)", path.read_text(), re.M
            )


def test_online_and_api_code_reads_a_model_only_through_its_ports():
    for folder in ("online", "api"):
        for path in (ROOT / "service" / folder).rglob("*.py"):
            text = path.read_text()
            for internal in (".bundle.", ".encoder.", ".models[", "bundle.features("):
                assert internal not in text, f"{path.relative_to(ROOT)} reads {internal!r}"


def test_online_functions_fit_on_a_screen():
    for path in (ROOT / "service" / "online").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                assert lines <= MAX_ONLINE_FUNCTION_LINES, f"{where} has {lines} lines"


def layout() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^## Layout\n+```\n(.*?)```", readme, re.M | re.S)
    assert block, "README.md has no Layout block"
    return [line.split()[0] for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_layout_matches_the_tree():
    listed = layout()
    for entry in listed:
        if not entry.startswith(("service", "training", "tests", "docker", "docs")):
            continue  # a continuation line of a description
        assert (ROOT / entry.rstrip("/")).exists(), f"README Layout lists {entry}, not in the tree"
    for package in PACKAGES:
        for folder in sorted(p for p in (ROOT / package).iterdir() if (p / "__init__.py").exists()):
            assert f"{package}/{folder.name}/" in listed, f"{package}/{folder.name}/ not in Layout"


@pytest.mark.parametrize("package", PACKAGES)
def test_documents_the_code_cites_exist(package):
    for path in (ROOT / package).rglob("*.py"):
        text = path.read_text()
        assert "ARCHITECTURE.md" not in text, f"{path}: cite docs/architecture.md (in the repo)"
        for cited in re.findall(r"\bdocs/[\w./-]+\.md\b", text):
            assert (ROOT / cited).is_file(), f"{path.relative_to(ROOT)} cites {cited}"
