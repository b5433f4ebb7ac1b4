"""The README's Quick start is what CI runs, and the caps are documented where users look."""

import re
from pathlib import Path

from encoder import LIMITS

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
