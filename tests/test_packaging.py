"""The README's Quick start is what CI runs, and the caps and link parameters are documented where users look."""

import dataclasses
import fnmatch
import re
from pathlib import Path

import pytest

from encoder import LIMITS
from ui.settings import Settings, link_name

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.DOTALL)
    assert block, "the Quick start has no code block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands_one_of_which_runs_the_tests():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    assert "pytest" in commands[1] and "pytest" not in commands[0]


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _quick_start_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_states_the_caps_that_the_code_enforces():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    caps = (
        f"{LIMITS.max_tokens} tokens, d_model {LIMITS.max_d_model}, {LIMITS.max_heads} heads, "
        f"{LIMITS.max_layers} layers, d_ff {LIMITS.max_d_ff}"
    )
    assert caps in readme


def test_the_package_data_ships_every_file_the_step_view_reads():
    """The step view's and the generation's elements are read from files at import: an installed
    package without one of them fails on its first page."""
    tomllib = pytest.importorskip("tomllib")
    from ui.step_view import BROWSER_DIR, BROWSER_FILES

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = patterns["package-data"]["ui"]
    ui = ROOT / "ui"
    read = [ui / "step_view.css", *(BROWSER_DIR / name for name in BROWSER_FILES)]
    from ui.generation import BROWSER_FILES as GENERATION_FILES

    read += [ui / "generation.css", *GENERATION_FILES]  # ui/generation.py's element
    for path in read:
        relative = path.relative_to(ui).as_posix()
        assert any(fnmatch.fnmatchcase(relative, pattern) for pattern in patterns), relative


def test_the_step_views_module_is_its_files_in_order_each_with_one_job():
    """Every browser file is joined (in `BROWSER_FILES`' order), says its one job first, stays
    short, and writes none of the constants it shares with Python: those come in the header."""
    from ui.step_view import BROWSER_DIR, BROWSER_FILES, browser_module
    from viz.step_view import MAGIC, MATRIX_CHARTS, STEP_ARRAYS, STEPS, VIEW_FIELDS, WHERE

    assert sorted(BROWSER_FILES) == sorted(path.name for path in BROWSER_DIR.glob("*.js"))
    module = browser_module()
    assert module.startswith(f'const PAYLOAD_MAGIC = "{MAGIC.decode()}";') and module.count(MAGIC.decode()) == 1
    shared = [", ".join(f'"{name}"' for name in names) for names in (STEPS, VIEW_FIELDS, STEP_ARRAYS, MATRIX_CHARTS)]
    for name in BROWSER_FILES:
        text = (BROWSER_DIR / name).read_text(encoding="utf-8")
        assert text.startswith("// "), f"{name} says its one job first"
        assert text in module
        for literal in [*shared, f'"{WHERE}"', "REPORT_DELAY_MS"]:
            assert literal not in text, f"{name} writes {literal} itself"


def test_readme_names_every_link_parameter():
    """The README's table of link parameters is how a teacher writes a link by hand."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Links", 1)[1].split("\n## ", 1)[0]
    missing = [link_name(f.name) for f in dataclasses.fields(Settings) if f"`{link_name(f.name)}`" not in table]
    assert not missing, f"the README's Links table does not name {missing}"
