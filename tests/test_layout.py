"""Imports point one way: the app's packages and the shared tools never reach into tests/, and tests/
never into bench/. What both need (the server, Chromium, the websocket student) lives in harness/."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE_TESTS = ("app.py", "bench", "encoder", "harness", "ui", "viz")


def _modules(*names: str) -> list[Path]:
    paths = []
    for name in names:
        path = ROOT / name
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return paths


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (in a function, under TYPE_CHECKING...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _reaching(paths: list[Path], package: str) -> dict[str, list[str]]:
    found = {}
    for path in paths:
        into = sorted(name for name in _imported(path) if name == package or name.startswith(f"{package}."))
        if into:
            found[str(path.relative_to(ROOT))] = into
    return found


@pytest.mark.parametrize("name", OUTSIDE_TESTS)
def test_nothing_outside_tests_imports_from_tests(name: str):
    paths = _modules(name)
    assert paths, f"{name} has no Python files"
    assert _reaching(paths, "tests") == {}


def test_tests_do_not_import_the_benchmarks():
    assert _reaching(_modules("tests"), "bench") == {}
