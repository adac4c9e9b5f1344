"""The layer contract: arrows point one way, no import circles, and one namespace (``onnxpipe.*``).

Read from the source with ``ast`` (imports inside functions count too: a lazy import is still an
arrow), so it holds for code that is never run by the rest of the suite.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("models", "converters", "validation", "pipeline")
#: What each package may import from onnxpipe (besides itself). ``models`` is the bottom layer.
ALLOWED = {
    "models": set(),
    "converters": {"models"},
    "validation": {"models"},
    "pipeline": {"models", "converters", "validation"},
}
#: Modules a package must not import even though their package is allowed (validation never trains).
FORBIDDEN_MODULES = {"validation": {"onnxpipe.models.training", "onnxpipe.models.distributed"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "onnxpipe." + ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute names, relative imports resolved), with line numbers."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for module, path in sources.items():
        for _, target in _imports(path, module):
            if target in sources and target != module:
                graph[module].add(target)
    return graph


def test_arrows_point_one_way():
    wrong = []
    for module, path in _sources().items():
        layer = module.split(".")[1]
        for line, target in _imports(path, module):
            parts = target.split(".")
            if parts[0] != "onnxpipe" or len(parts) < 2 or parts[1] == layer:
                continue
            if parts[1] not in ALLOWED[layer] or any(
                target == f or target.startswith(f + ".") for f in FORBIDDEN_MODULES.get(layer, ())
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(set(wrong)))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
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
    assert _cycles(_graph()) == []


def test_the_contract_catches_a_circle_and_a_backward_arrow():
    # The checks themselves can fail: a planted circle and a planted backward arrow are seen.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert not ALLOWED["converters"] & {"validation", "pipeline"}
    assert not ALLOWED["validation"] & {"converters", "pipeline"}


@pytest.mark.parametrize("folder", [*PACKAGES, "tests", "bench"])
def test_onnxpipe_is_imported_only_by_its_namespace(folder):
    bare = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, target in _imports(path, "x"):
            if target.split(".")[0] in PACKAGES:
                bare.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not bare, "import onnxpipe.<package>, never the bare folder name:\n" + "\n".join(bare)


def test_installed_onnxpipe_does_not_claim_the_top_level_names(tmp_path):
    # From a folder outside the repository: onnxpipe.* imports, `models` & co. do not exist.
    code = (
        "import importlib.util, onnxpipe.models.errors, onnxpipe.pipeline.cli\n"
        "print([n for n in ('models', 'pipeline', 'validation', 'converters') if importlib.util.find_spec(n)])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]"
