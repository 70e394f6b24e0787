"""The import graph of ibjax and experiments has no circle (function-level imports included)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ibjax", "experiments")


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _imports(path: Path) -> set:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            for a in node.names:  # "from ibjax import edge" names a module when the file exists
                sub = f"{node.module}.{a.name}"
                out.add(sub if (ROOT / Path(*sub.split("."))).with_suffix(".py").is_file() else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
    return out - set(PACKAGES)  # a package's __init__ is imported first by every child: not an edge


def _graph() -> dict:
    return {_module(p): _imports(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _cycles(graph: dict) -> list:
    state, found = {}, []

    def visit(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if v == u:
                continue
            if state.get(v) == 1:
                found.append(stack[stack.index(v) :] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    return found


def test_the_cycle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_circle():
    graph = _graph()
    assert "ibjax.adapters" in graph["ibjax"]  # the package loads the built-in estimator table
    assert "ibjax.adapters" not in graph["ibjax.registry"]  # the built-in table imports the registry, not back
    assert "ibjax.evaluate" not in graph["experiments._harness"]  # the experiments do not import the CLI
    assert _cycles(graph) == []
