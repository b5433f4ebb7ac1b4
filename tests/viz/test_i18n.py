"""Both languages carry every string, with the same placeholders."""

import string

import pytest

from viz.i18n import LANGUAGES, STRINGS, texts


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
    assert set(same) <= {"language", "d_model", "d_ff", "col_dot", "col_scaled", "col_exp", "norm_pre"} | {
        "cmp_diff",
        "sc_reference",
        "sc_scaled",
    }


def test_unknown_language_falls_back_to_english():
    assert texts("fr") is STRINGS["en"]
