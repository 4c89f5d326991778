"""The package's rooms: imports go one way (no circles, lazy imports included), library code outside a
method's folder imports no method, and importing avgen changes nothing in the process."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"


def import_graph() -> dict[str, set[str]]:
    """{module: avgen modules it imports anywhere in its file (function-level imports included)}."""
    modules = {}
    for path in (SRC / "avgen").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            graph[m] |= {n for n in names if n in modules and n != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert cycles(import_graph()) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail


def test_no_file_outside_a_method_folder_imports_a_method():
    """Methods are found through configs and the registry; library code imports none of them."""
    methods = {p.name for p in (SRC / "avgen" / "methods").iterdir() if (p / "__init__.py").is_file()}
    offenders = [
        f"{m} -> {n}"
        for m, imported in import_graph().items()
        if not m.startswith("avgen.methods.")
        for n in imported
        if n.startswith("avgen.methods.") and n.split(".")[2] in methods
    ]
    assert offenders == []


def test_importing_avgen_has_no_side_effects():
    """numba's cache is configured where a command starts (cli/main.py), not on `import avgen`."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    code = "import os, avgen, avgen.methods.base, avgen.suite; print(os.environ.get('NUMBA_CACHE_DIR'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "None"
