"""Every string the interface shows, in English and 中文.

One table per language (`ui.i18n.en`, `ui.i18n.zh`) with the same keys (a test checks that they match, placeholders
included), so a label cannot be translated in one language and forgotten in the other.
Strings with `{placeholders}` are filled with `str.format`; the app never formats user
text into Markdown or HTML, so nothing here needs escaping. The words the charts draw go to
viz's figure builders as one `ChartLabels` (`chart_labels`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Literal

from ui.i18n import en, zh
from viz import ChartLabels

Language = Literal["en", "zh"]
LANGUAGES: dict[str, str] = {"en": "English", "zh": "中文"}

STRINGS: dict[str, dict[str, str]] = {"en": en.STRINGS, "zh": zh.STRINGS}


def texts(language: str) -> dict[str, str]:
    """The string table for `language`, English for anything unknown."""
    return STRINGS.get(language, en.STRINGS)


# The label of each option of the radios whose options are translated, as literal keys of
# `texts` (a key built at run time could not be found by reading the code).
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "model": {
        "random": "model_random",
        "minilm": "model_minilm",
        "upload": "model_upload",
        "trained": "model_trained",
        "translation": "model_translation",
    },
    "train_task": {
        "previous": "task_previous",
        "reverse": "task_reverse",
        "sort": "task_sort",
        "induction": "task_induction",
        "translate": "task_translate",
    },
    "translation_weights": {"random": "translation_weights_random", "trained": "translation_weights_trained"},
    "attention": {"encoder": "attention_encoder", "decoder": "attention_decoder", "cross": "attention_cross"},
    "positional": {"sinusoidal": "positional_sinusoidal", "learned": "positional_learned", "none": "positional_none"},
    "layer_norm": {"post": "layer_norm_post", "pre": "layer_norm_pre", "none": "layer_norm_none"},
    "palette": {"default": "palette_default", "colorblind": "palette_colorblind"},
    "weight_scale": {"fixed": "weight_scale_fixed", "fit": "weight_scale_fit"},
    "experiment": {
        "off": "experiment_off",
        "head_view": "experiment_head_view",
        "scaling": "experiment_scaling",
        "padding": "experiment_padding",
        "shuffle": "experiment_shuffle",
        "compare": "experiment_compare",
        "knockout": "experiment_knockout",
        "rollout": "experiment_rollout",
        "query_keys": "experiment_query_keys",
        "habits": "experiment_habits",
        "tokens": "experiment_tokens",
    },
}


# The label of each head habit (`encoder.HABITS`, and "mixed" for a head with none), as literal
# keys of `texts`.
HABIT_LABELS: dict[str, str] = {
    "previous": "habit_previous",
    "next": "habit_next",
    "self": "habit_self",
    "first": "habit_first",
    "sep": "habit_sep",
    "broad": "habit_broad",
    "mixed": "habit_mixed",
}


def option_label(t: Mapping[str, str], name: str) -> Callable[[str], str]:
    """The label, in `t`'s language, of each option of the radio `name` (a `format_func`)."""
    labels = CHOICE_LABELS[name]
    return lambda option: t[labels[option]]


# The key of `texts` for each field of viz's ChartLabels, the words every chart draws.
CHART_LABELS: dict[str, str] = {
    "token": "token_axis",
    "dimension": "dim_axis",
    "query": "query_axis",
    "key": "key_axis",
    "value": "value",
    "weight": "weight",
    "layer": "layer",
    "head": "head",
    "position": "position_axis",
    "cosine": "cosine",
    "mean_max_weight": "scaling_max_weight",
    "mean_entropy": "scaling_entropy",
    "scaled": "scaling_scaled",
    "unscaled": "scaling_unscaled",
    "uniform": "scaling_uniform",
    "score_variance": "scaling_variance_label",
    "proportional_to_d_k": "scaling_reference",
    "step": "chart_step",
    "loss": "chart_loss",
    "accuracy": "chart_accuracy",
}


@functools.cache
def chart_labels(language: str) -> ChartLabels:
    """The charts' words in `language` (English for anything unknown): one object for every figure."""
    t = texts(language)
    return ChartLabels(**{field: t[key] for field, key in CHART_LABELS.items()})
