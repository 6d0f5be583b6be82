"""The tree is the architecture: no import cycles, modules of a readable size, one meaning per name.

The layer and independence contracts themselves are import-linter's (`.importlinter`,
run by `make test`); these are the rules it does not express.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("serving", "autoscaler", "loadtests")
MAX_LINES = 400
# Names every command-line module may define for itself.
CLI_NAMES = {"main", "build_parser", "parse_args", "cmd_run", "run"}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of a directed graph (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                out.append(comp)
    return out


def test_tarjan_finds_a_cycle_and_only_that():
    comps = strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert [c for c in comps if len(c) > 1] == [{"a", "b", "c"}]


@pytest.fixture(scope="module")
def import_graph() -> dict[str, set[str]]:
    g = grimp.build_graph(*PACKAGES)
    return {m: set(g.find_modules_directly_imported_by(m)) & g.modules for m in g.modules}


def test_no_import_cycles(import_graph):
    cycles = [sorted(c) for c in strongly_connected(import_graph) if len(c) > 1]
    assert not cycles, f"import cycles among the project's modules: {cycles}"


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_module_over_the_size_limit():
    long = {
        str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_public_names_are_defined_once():
    """A public class or function name means one thing across the project (CLI entry points excepted)."""
    where: dict[str, list[str]] = defaultdict(list)
    for p in _modules():
        for node in ast.parse(p.read_text("utf-8")).body:
            if (
                isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and not node.name.startswith("_")
                and node.name not in CLI_NAMES
            ):
                where[node.name].append(str(p.relative_to(ROOT)))
    twice = {name: files for name, files in where.items() if len(files) > 1}
    assert not twice, f"names defined in more than one module: {twice}"
