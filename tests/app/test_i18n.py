"""Both languages carry every string, with the same placeholders."""

import dataclasses
import re
import string
from pathlib import Path

import pytest

from ui.i18n import CHART_LABELS, CHOICE_LABELS, HABIT_LABELS, LANGUAGES, STRINGS, chart_labels, texts
from viz import ChartLabels
from viz.step_view import STEP_VIEW_STRING_KEYS


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_key():
    keys = set(STRINGS["en"])
    for language in LANGUAGES:
        assert set(STRINGS[language]) == keys, language


@pytest.mark.parametrize("key", sorted(STRINGS["en"]))
def test_placeholders_match_and_nothing_is_empty(key):
    english = STRINGS["en"][key]
    chinese = STRINGS["zh"][key]
    assert english.strip() and chinese.strip()
    assert _placeholders(english) == _placeholders(chinese)


def test_chinese_is_actually_translated():
    same = [k for k in STRINGS["en"] if STRINGS["en"][k] == STRINGS["zh"][k]]
    # Only symbols and names may stay the same: d_model, d_ff, formulas, the bilingual language label.
    assert set(same) <= {"language", "d_model", "d_ff", "col_dot", "col_scaled", "col_exp", "layer_norm_pre"} | {
        "compare_diff",
        "scaling_reference",
        "scaling_scaled",
        "habit_sep",
    }


def test_unknown_language_falls_back_to_english():
    assert texts("fr") is STRINGS["en"]


def test_every_key_is_used_by_the_code_and_every_key_used_is_defined():
    """A key is used where the code names it as a literal: in Python as "key", in the step
    view's JavaScript as t.key (its strings arrive as `STEP_VIEW_STRING_KEYS`). None is built
    at run time, so a key nobody uses, or one the code asks for but no language has, shows."""
    root = Path(__file__).resolve().parents[2]
    tables = root / "ui" / "i18n"
    python = [root / "app.py", *sorted((root / "ui").rglob("*.py")), *sorted((root / "viz").rglob("*.py"))]
    source = "\n".join(path.read_text(encoding="utf-8") for path in python if tables not in path.parents)
    script = "\n".join(p.read_text(encoding="utf-8") for p in (root / "ui" / "step_view_browser").glob("*.js"))
    keys = set(texts("en"))
    in_python = (
        set(re.findall(r"[\"']([a-z][a-z0-9_]*)[\"']", source))
        | {key for labels in CHOICE_LABELS.values() for key in labels.values()}
        | set(HABIT_LABELS.values())
        | set(CHART_LABELS.values())
    )
    in_script = set(re.findall(r"\b(?:t|strings)\.([a-z][a-z0-9_]*)", script))
    unused = sorted(keys - in_python - in_script)
    assert not unused, f"keys no code uses: {unused}"
    # Each string the step view is sent is drawn by its script (its charts' words come as ChartLabels).
    sent_unused = set(STEP_VIEW_STRING_KEYS) - in_script
    assert not sent_unused, sorted(sent_unused)
    # Every t["key"] the Python asks for exists (in both languages: see the test of their parity).
    asked = set(re.findall(r"\bt\[\"([a-z][a-z0-9_]*)\"\]", source))
    assert asked <= keys, sorted(asked - keys)
    assert in_script <= keys | {"length"}, sorted(in_script - keys)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_word_a_chart_draws_comes_from_the_language(language):
    """Each field of viz's ChartLabels has its key, so no chart keeps an English default on the
    中文 page; and the object carries exactly that language's strings."""
    assert set(CHART_LABELS) == {field.name for field in dataclasses.fields(ChartLabels)}
    labels = chart_labels(language)
    for field, key in CHART_LABELS.items():
        assert getattr(labels, field) == texts(language)[key]
