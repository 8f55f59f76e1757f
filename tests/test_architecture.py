"""The package's shape, read from its source: the import graph of rnnq/ has no circle (imports
inside functions included), dependencies point down (cli -> api -> steps/validate ->
backends -> passes -> sim/frontend -> ir/numerics), the build folder and report modules import
nothing above the IR, the two backends do not import each other, and no module imports another
module's private name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rnnq"

#: Layers, bottom up: a module may import modules of its own layer or below.
LAYERS = [
    ("rnnq.version", "rnnq.resources", "rnnq.numerics", "rnnq.ir", "rnnq.progress"),
    ("rnnq.data", "rnnq.files", "rnnq.targets", "rnnq.boards", "rnnq.report", "rnnq.html_report",
     "rnnq.build_folder"),
    ("rnnq.frontend", "rnnq.sim"),
    ("rnnq.passes",),
    ("rnnq.backends",),
    ("rnnq.steps", "rnnq.steps_tflite", "rnnq.validation", "rnnq.diagnose"),
    ("rnnq.api",),
    ("rnnq.cli",),
    ("rnnq",),  # the package: the Python API's façade over rnnq.api (nothing imports it)
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every rnnq import in module `name`,
    wherever it stands (top level or inside a function). `from rnnq.sim import kernels` counts
    as importing rnnq.sim.kernels."""
    tree = ast.parse(MODULES[name].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("rnnq")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("rnnq"):
            subs = [a.name for a in node.names if f"{node.module}.{a.name}" in MODULES]
            names = [a.name for a in node.names if a.name not in subs]
            found += [(f"{node.module}.{s}", [], node.lineno) for s in subs]
            if names:
                found.append((node.module, names, node.lineno))
    return found


GRAPH = {m: sorted({dep for dep, _, _ in _imports(m) if dep != m}) for m in MODULES}


def _layer(module: str) -> int:
    best, level = -1, -1
    for k, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, level = len(p), k
    return level


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if _layer(m) < 0] == []


def test_no_import_circle() -> None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in GRAPH[m]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep in GRAPH and dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_dependencies_point_down() -> None:
    up = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
          for m, deps in GRAPH.items() for d in deps if _layer(d) > _layer(m)]
    assert up == []


@pytest.mark.parametrize("module", ["rnnq.build_folder", "rnnq.report", "rnnq.html_report"])
def test_folder_and_report_import_nothing_above_the_ir(module: str) -> None:
    allowed = ("rnnq.version", "rnnq.ir", "rnnq.numerics", "rnnq.report")  # html: the report
    above = [d for d in GRAPH[module]
             if not any(d == a or d.startswith(a + ".") for a in allowed)]
    assert above == []


def test_backends_are_peers() -> None:
    """Neither backend imports the other: what both need lives below them."""
    cross = [f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
             for a, b in (("c", "tflite"), ("tflite", "c"))
             if m.startswith(f"rnnq.backends.{a}") and d.startswith(f"rnnq.backends.{b}")]
    assert cross == []


def test_no_private_name_imported_across_modules() -> None:
    private = [f"{m}:{line} imports {n} from {dep}" for m in MODULES
               for dep, names, line in _imports(m) for n in names
               if n.startswith("_") and not n.endswith("__")]
    assert private == []


def test_the_graph_is_read() -> None:
    """The checks above see real edges (a parser that found none would pass them all)."""
    assert "rnnq.backends.c.emit" in GRAPH["rnnq.steps"]
    assert "rnnq.sim.litert.interpreter" in GRAPH["rnnq.backends.tflite.quantize"]
    assert sum(len(d) for d in GRAPH.values()) > 100
