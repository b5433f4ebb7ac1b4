"""What each layer of the project may import: `encoder` is the model and nothing of the page, and
no two modules of the project import each other, however indirectly."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import encoder

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("encoder", "viz", "ui")


def _modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name, found on disk."""
    found = {}
    for package in PACKAGES:
        folder = ROOT / package
        found[package] = folder / "__init__.py"
        for path in folder.rglob("*.py"):
            if path.name != "__init__.py":
                found[".".join(path.relative_to(ROOT).with_suffix("").parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that `name` imports anywhere in its file: at the top, inside a
    function, under `if TYPE_CHECKING` (an edge all the same: it is a dependency a reader follows)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}  # `from encoder import trace`
    return {target for target in targets if target in modules and target != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_of_the_project_imports_itself_back():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    graph = {"encoder.a": {"encoder.b"}, "encoder.b": {"encoder.a"}}
    assert _cycle(graph) == ["encoder.a", "encoder.b", "encoder.a"]
    path = tmp_path / "b.py"
    path.write_text("def later():\n    from encoder.a import x\n", encoding="utf-8")
    assert _imports("encoder.b", path, {"encoder.a": path, "encoder.b": path}) == {"encoder.a"}


def test_encoder_imports_neither_streamlit_nor_plotly():
    names = [f"encoder.{module.name}" for module in pkgutil.iter_modules(encoder.__path__) if module.name != "__main__"]
    assert "encoder.training" in names and "encoder.experiments" in names
    code = (
        f"import sys, importlib; [importlib.import_module(name) for name in {names!r}]; "
        "loaded = [m for m in ('streamlit', 'plotly') if m in sys.modules]; assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
