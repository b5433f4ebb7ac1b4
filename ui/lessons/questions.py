"""A lesson's question asked of the live trace: its options, and its right answer, always the model's
own number whatever the sentence or the weights. Pure Python and numpy, no Streamlit.

An answer travels as a short string (`value`): an option's value for the questions that offer
options (a token's or a head's position, "grow"), a number's text for the others. That string is
what a class stores per student and what a reveal publishes, so a student's device judges its own
answer the way the teacher's page would (`is_right`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from encoder import HABITS, TraceArrays, head_habits
from ui.i18n import HABIT_LABELS
from ui.lessons.format import Question
from viz import number_text

TIE = 1e-6  # weights (or habit scores) this close to the largest are as right as the largest
SAME = 1e-4  # a largest weight that moves less than this without √d_k neither grows nor shrinks
MAX_ANSWER_CHARS = 24  # an answer's string, as a class stores it
DIRECTIONS = {"grow": "lesson_grow", "shrink": "lesson_shrink", "same": "lesson_same"}  # option -> its label's key
MAX_BARS = 20  # the class's answers to a number, as bars: the most common values


@dataclass(frozen=True)
class Mark:
    """What the step view outlines when the answer is revealed: a cell of the softmax weights
    (`key` None: the query's whole row), or a head's thumbnail in the strip (`chart` "heads")."""

    chart: str
    layer: int
    head: int
    query: int | None = None
    key: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Asked:
    """A question fitted to one trace: where it looks (0-based), its options, its right answer(s)."""

    question: Question
    layer: int
    head: int
    query: int
    key: int
    options: tuple[tuple[str, str], ...]  # (value, label); empty for a number
    right: tuple[str, ...]  # every value that is right (a tie is right either way)
    number: float | None  # the number a `number` or `estimate` question asks for
    mark: Mark | None
    details: Mapping[str, str] = field(default_factory=dict)  # what the reveal says, formatted

    @property
    def kind(self) -> str:
        return self.question.kind

    @property
    def numeric(self) -> bool:
        return self.kind in ("number", "estimate")

    def label(self, value: str) -> str:
        """How an answer's value reads on the page: an option's label, or the number."""
        return dict(self.options).get(value, value)


def ask(question: Question, trace: TraceArrays, t: Mapping[str, str], unscaled: TraceArrays | None = None) -> Asked:
    """The question fitted to `trace`: a place past the model's layers or heads, or past the
    sentence's tokens, is the last one. `unscaled` is the same run without the division by √d_k,
    which a `direction` question needs."""
    config = trace.config
    n = len(trace.tokens)
    layer = min(question.layer, config.n_layers - 1)
    head = min(question.head, config.n_heads - 1)
    query = min(question.query, n - 1)
    key = min(query if question.key is None else question.key, n - 1)
    row = trace.weights[layer, head, query].astype(np.float64)  # (n,) the query's weights
    tokens = [f"{i + 1} · {token}" for i, token in enumerate(trace.tokens)]
    kind = question.kind
    if kind == "key":
        best = float(row.max())
        right = tuple(str(k) for k in range(n) if best - row[k] <= TIE)
        first = int(right[0])
        mark = Mark("weights", layer, head, query, first, number_text(best, 4))
        details = {"weight": number_text(best, 4), "answer": tokens[first]}
        return Asked(question, layer, head, query, key, _options(tokens), right, None, mark, details)
    if kind == "head":
        habit = HABITS.index(question.habit)
        scores = head_habits(trace.weights, trace.tokens)[layer, :, habit]  # (heads,)
        best = float(scores.max())
        right = tuple(str(h) for h in range(config.n_heads) if best - scores[h] <= TIE)
        first = int(right[0])
        heads = [f"{t['head']} {h + 1}" for h in range(config.n_heads)]
        mark = Mark("heads", layer, first, label=number_text(best, 2))
        details = {"score": number_text(best, 2), "answer": heads[first], "habit": t[HABIT_LABELS[question.habit]]}
        return Asked(question, layer, head, query, key, _options(heads), right, None, mark, details)
    if kind == "direction":
        if unscaled is None:
            raise ValueError("a direction question needs the run without the division by √d_k")
        with_scaling = float(row.max())
        without = float(unscaled.weights[layer, head, query].astype(np.float64).max())
        change = "same" if abs(without - with_scaling) < SAME else "grow" if without > with_scaling else "shrink"
        options = tuple((value, t[key]) for value, key in DIRECTIONS.items())
        best = int(row.argmax())
        mark = Mark("weights", layer, head, query, best, number_text(with_scaling, 4))
        details = {"with": number_text(with_scaling, 4), "without": number_text(without, 4)}
        return Asked(question, layer, head, query, key, options, (change,), None, mark, details)
    quantity = question.quantity
    if quantity == "row_sum":
        number, mark = float(row.sum()), Mark("weights", layer, head, query, None)
    elif quantity == "weight":
        number, mark = float(row[key]), Mark("weights", layer, head, query, key)
    else:  # sqrt_d_k
        number, mark = math.sqrt(config.d_head), None
    text = number_text(number, 4)
    if mark is not None:
        mark = Mark(mark.chart, mark.layer, mark.head, mark.query, mark.key, text)
    return Asked(question, layer, head, query, key, (), (text,), number, mark, {"answer": text})


def _options(labels: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((str(i), label) for i, label in enumerate(labels))


def question_text(
    asked: Asked,
    trace: TraceArrays,
    lang: str,
    t: Mapping[str, str],
    field_name: str = "text",
    *,
    literal: Callable[[str], str] = str,
) -> str:
    """The question (or its `explain`) in `lang`, its places filled from the trace; the tokens
    through `literal` (Markdown's escaping, where the page shows it as Markdown)."""
    body = getattr(asked.question, field_name).get(lang, "")
    return body.format(
        layer=asked.layer + 1,
        head=asked.head + 1,
        query=literal(trace.tokens[asked.query]),
        key=literal(trace.tokens[asked.key]),
        habit=t[HABIT_LABELS[asked.question.habit]],
    )


def parse_number(raw: str) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def answer_value(asked: Asked, raw: object) -> str | None:
    """A student's answer as the class stores it, or None for one that is not an answer to this
    question (an option it does not offer, a number that is not one)."""
    if asked.numeric:
        number = parse_number(str(raw)) if raw is not None else None
        return None if number is None else number_text(number, 4)[:MAX_ANSWER_CHARS]
    return str(raw) if str(raw) in dict(asked.options) else None


def is_right(right: Sequence[str], numeric: bool, tolerance: float, given: str | None) -> bool:
    """Whether `given` (a stored answer) is right: one of the right values, or for a number, within
    `tolerance` of it. Takes the reveal's published fields, so a student's device judges alone."""
    if given is None:
        return False
    if not numeric:
        return given in right
    number, target = parse_number(given), parse_number(right[0])
    return number is not None and target is not None and abs(number - target) <= tolerance + 1e-9


def tally(asked: Asked, answers: Sequence[str]) -> list[tuple[str, int, bool]]:
    """The class's answers as bars: (label, count, right). Every option has its bar, none answered
    included; a number's answers are one bar per value given (the most common `MAX_BARS`)."""
    counts = Counter(answers)
    if not asked.numeric:
        return [(label, counts.get(value, 0), value in asked.right) for value, label in asked.options]
    common = sorted(counts.most_common(MAX_BARS), key=lambda item: parse_number(item[0]) or 0.0)
    return [(value, count, is_right(asked.right, True, asked.question.tolerance, value)) for value, count in common]
