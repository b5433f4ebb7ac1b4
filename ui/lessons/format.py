"""A lesson file, read and checked. Pure Python, no Streamlit.

A lesson is one TOML file (UTF-8, at most `MAX_FILE_BYTES`): a title, the page it starts from,
and its stops in order. Every text is given in English and 中文 (`en`, `zh`); a page is written
with the link's names and values (README, "Links"; layers, heads, query tokens and steps count
from 1), and a stop's page is laid over the lesson's::

    title = { en = "Self-attention on 我爱你", zh = "我爱你上的自注意力" }
    page = { text = "我爱你", d_model = 64, heads = 4, layers = 2 }

    [[stop]]
    title = { en = "The softmax", zh = "softmax" }
    text = { en = "Each row of weights ...", zh = "每一行权重……" }
    page = { step = 4, layer = 1, head = 2, query = 2 }

    [stop.question]                 # optional: one question, asked before the reveal
    kind = "key"                    # key, head, number, estimate or direction
    text = { en = "Which key will {query} weigh most?", zh = "{query} 最看重哪个键？" }

A question's fields (each of layer, head, query defaults to the stop's page):

- `key`: which key the query weighs most (`layer`, `head`, `query`); the answer is the row's argmax.
- `head`: which head of `layer` follows `habit` (previous, next, self, first, sep, broad) most.
- `number`: a number typed in; `quantity` is `row_sum` (a row of weights added up), `weight` (the
  weight `query` gives `key`) or `sqrt_d_k`; right within `tolerance` (default 0.01).
- `estimate`: a number on a slider from 0 to 1: `quantity` `weight` (of `key`, by default the
  query itself) or `row_sum`; right within `tolerance` (default 0.1).
- `direction`: whether the query's largest weight grows or shrinks without the division by
  √d_k (`change = "no_scaling"`); answered by running both.

A question's text may name `{layer}`, `{head}`, `{query}` and `{key}` (the tokens, from the live
trace), and `{habit}`; `explain` (optional, en and zh) is shown with the answer. A file that
breaks any of this is refused with a `LessonError` that names the line.
"""

from __future__ import annotations

import functools
import re
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encoder import LIMITS
from encoder.experiments import HABITS
from ui.settings import LESSON_NAME, LINK_NAMES, Settings, from_query_params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with tomli, the library tomllib came from
    import tomli as tomllib

LANGUAGES = ("en", "zh")
KINDS = ("key", "head", "number", "estimate", "direction")
QUANTITIES = {"number": ("row_sum", "weight", "sqrt_d_k"), "estimate": ("weight", "row_sum")}
CHANGES = ("no_scaling",)
DEFAULT_TOLERANCE = {"number": 0.01, "estimate": 0.1}
PLACEHOLDERS = ("layer", "head", "query", "key", "habit")
MAX_FILE_BYTES = 64 * 1024
MAX_STOPS = 50
MAX_TEXT_CHARS = 4000
LESSON_FIELDS = ("title", "page", "stop")
STOP_FIELDS = ("title", "text", "page", "question")
QUESTION_FIELDS = (
    *("kind", "text", "explain", "layer", "head", "query", "key", "habit", "quantity", "tolerance", "change"),
)
# What a page may set: the link's names of what a class follows, less the lesson's own place in it.
PAGE_EXCLUDED = ("lang", "palette", "wscale", "img", "present", "cpu", "lesson", "stop", "class", "teach")


class LessonError(ValueError):
    """A lesson file the page cannot use: `key` names the message (ui.i18n, `lesson_error_*`), `line`
    the line of the file it is about (1-based), `args` fill the message."""

    def __init__(self, key: str, line: int, **args: Any) -> None:
        super().__init__(f"line {line}: {key} {args}")
        self.key, self.line, self.args_ = key, line, args


@dataclass(frozen=True)
class Question:
    """One question; layer, head, query and key are 0-based, fitted to the live trace when asked."""

    kind: str
    text: Mapping[str, str]
    layer: int = 0
    head: int = 0
    query: int = 0
    key: int | None = None
    habit: str = "previous"
    quantity: str = ""
    tolerance: float = 0.0
    change: str = "no_scaling"
    explain: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stop:
    title: Mapping[str, str]
    text: Mapping[str, str]
    page: Mapping[str, str]  # the page's link parameters: the lesson's, with the stop's over them
    question: Question | None


@dataclass(frozen=True)
class Lesson:
    name: str
    title: Mapping[str, str]
    stops: tuple[Stop, ...]

    @property
    def questions(self) -> int:
        return sum(stop.question is not None for stop in self.stops)


class _Lines:
    """Where things are in the file's text: tomllib gives values, not lines, so a field's line is
    found by its name within its stop's block."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        header = re.compile(r"\s*\[\[\s*stop\s*\]\]")
        self.stops = [i for i, line in enumerate(self.lines) if header.match(line)]

    def _block(self, stop: int | None) -> tuple[int, int]:
        if stop is None:
            return 0, self.stops[0] if self.stops else len(self.lines)
        start = self.stops[stop] if stop < len(self.stops) else 0
        end = self.stops[stop + 1] if stop + 1 < len(self.stops) else len(self.lines)
        return start, end

    def of(self, stop: int | None, name: str, *, question: bool = False) -> int:
        """The 1-based line of field `name` of the lesson (stop None), of a stop, or of its question."""
        start, end = self._block(stop)
        if question:
            section = re.compile(r"\s*\[\s*stop\s*\.\s*question\s*\]")
            start = next((i for i in range(start, end) if section.match(self.lines[i])), start)
            if name == "question":
                return start + 1
        pattern = re.compile(rf"\s*(question\s*\.\s*)?{re.escape(name)}\s*[.=]")
        found = next((i for i in range(start, end) if pattern.match(self.lines[i])), start)
        return found + 1


def read_lesson(name: str, data: bytes) -> Lesson:
    """A lesson from a file's bytes; raises LessonError naming the line when the file breaks the format."""
    if len(data) > MAX_FILE_BYTES:
        raise LessonError("lesson_error_size", 1, max=MAX_FILE_BYTES // 1024)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LessonError("lesson_error_encoding", data[: error.start].count(b"\n") + 1) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = int(match.group(1)) if (match := re.search(r"line (\d+)", str(error))) else 1
        detail = re.sub(r"\s*\(at .*\)$", "", str(error))
        raise LessonError("lesson_error_toml", line, detail=detail) from None
    return _Reader(text).lesson(name, raw)


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines = _Lines(text)

    def fields(self, table: Mapping[str, Any], allowed: tuple[str, ...], stop: int | None, question: bool = False):
        for name in table:
            if name not in allowed:
                line = self.lines.of(stop, name, question=question)
                raise LessonError("lesson_error_unknown", line, field=name, choices=", ".join(allowed))

    def texts(self, table: Mapping[str, Any], name: str, stop: int | None, *, question: bool = False,
              required: bool = True) -> dict[str, str]:  # fmt: skip
        """An `{en = ..., zh = ...}` table of texts, both languages given."""
        line = self.lines.of(stop, name, question=question)
        value = table.get(name)
        if value is None and not required:
            return {}
        if value is None:
            raise LessonError("lesson_error_missing", self.lines.of(stop, "question" if question else "stop",
                                                                    question=question), field=name)  # fmt: skip
        if not isinstance(value, Mapping) or set(value) != set(LANGUAGES):
            raise LessonError("lesson_error_languages", line, field=name)
        for text in value.values():
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
                raise LessonError("lesson_error_text", line, field=name, max=MAX_TEXT_CHARS)
        return {lang: value[lang].strip() for lang in LANGUAGES}

    def page(self, table: Mapping[str, Any], stop: int | None) -> dict[str, str]:
        value = table.get("page", {})
        line = self.lines.of(stop, "page")
        if not isinstance(value, Mapping):
            raise LessonError("lesson_error_type", line, field="page", expected="{ name = value, ... }")
        names = sorted({LINK_NAMES.get(f, f) for f in Settings.__dataclass_fields__} - set(PAGE_EXCLUDED))
        page = {}
        for name, item in value.items():
            if name not in names:
                raise LessonError("lesson_error_unknown", line, field=f"page.{name}", choices=", ".join(names))
            if isinstance(item, bool):
                item = int(item)
            if not isinstance(item, (str, int, float)):
                raise LessonError("lesson_error_type", line, field=f"page.{name}", expected="text or a number")
            page[name] = str(item)
        return page

    def check_page(self, page: Mapping[str, str], stop: int) -> None:
        """The page as a link would open it: a value a link would refuse is refused here too."""
        _, notices = from_query_params(page, LIMITS.max_layers, LIMITS.max_heads)
        for notice in notices:
            raise LessonError(
                "lesson_error_page", self.lines.of(stop, "page"), param=notice.param, value=notice.value,
                reason=notice.reason, reason_args=notice.reason_args,
            )  # fmt: skip

    def number(self, table, name, stop, *, low: float, high: float, whole: bool = True) -> float | int | None:
        value = table.get(name)
        if value is None:
            return None
        line = self.lines.of(stop, name, question=True)
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise LessonError("lesson_error_type", line, field=name, expected="a whole number" if whole else "a number")
        if not low <= value <= high:
            raise LessonError("lesson_error_range", line, field=name, value=value, low=low, high=high)
        return value

    def choice(self, table, name, choices: tuple[str, ...], stop: int, default: str | None = None) -> str:
        value = table.get(name, default)
        line = self.lines.of(stop, name, question=True)
        if value is None:
            raise LessonError("lesson_error_missing", self.lines.of(stop, "question", question=True), field=name)
        if value not in choices:
            choices_text = ", ".join(choices)
            raise LessonError("lesson_error_choice", line, field=name, value=str(value)[:40], choices=choices_text)
        return value

    def question(self, table: Any, page: Mapping[str, str], stop: int) -> Question:
        if not isinstance(table, Mapping):
            line = self.lines.of(stop, "question")
            raise LessonError("lesson_error_type", line, field="question", expected="a table")
        self.fields(table, QUESTION_FIELDS, stop, question=True)
        kind = self.choice(table, "kind", KINDS, stop)
        text = self.texts(table, "text", stop, question=True)
        explain = self.texts(table, "explain", stop, question=True, required=False)
        for lang in LANGUAGES:
            for field_name, body in (("text", text[lang]), ("explain", explain.get(lang, ""))):
                names = {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}
                if names - set(PLACEHOLDERS):
                    raise LessonError(
                        "lesson_error_placeholder", self.lines.of(stop, field_name, question=True),
                        field=field_name, name=sorted(names - set(PLACEHOLDERS))[0], choices=", ".join(PLACEHOLDERS),
                    )  # fmt: skip

        def place(name: str) -> int:  # 1-based in the file; the stop's page's by default
            value = self.number(table, name, stop, low=1, high=10_000)
            return (int(page.get(name, 1)) if value is None else value) - 1

        key = self.number(table, "key", stop, low=1, high=10_000)
        quantity = ""
        if kind in QUANTITIES:
            quantity = self.choice(table, "quantity", QUANTITIES[kind], stop, default=QUANTITIES[kind][0])
        tolerance = self.number(table, "tolerance", stop, low=0, high=1000, whole=False)
        return Question(
            kind=kind,
            text=text,
            layer=place("layer"),
            head=place("head"),
            query=place("query"),
            key=None if key is None else key - 1,
            habit=self.choice(table, "habit", HABITS, stop, default="previous"),
            quantity=quantity,
            tolerance=float(DEFAULT_TOLERANCE.get(kind, 0.0) if tolerance is None else tolerance),
            change=self.choice(table, "change", CHANGES, stop, default=CHANGES[0]),
            explain=explain,
        )

    def lesson(self, name: str, raw: Mapping[str, Any]) -> Lesson:
        self.fields(raw, LESSON_FIELDS, None)
        title = self.texts(raw, "title", None)
        base = self.page(raw, None)
        stops_raw = raw.get("stop")
        if not isinstance(stops_raw, list) or not stops_raw:
            raise LessonError("lesson_error_no_stops", len(self.lines.lines) or 1)
        if len(stops_raw) > MAX_STOPS:
            raise LessonError("lesson_error_stops", self.lines.of(MAX_STOPS, "stop"), max=MAX_STOPS)
        stops = []
        for index, table in enumerate(stops_raw):
            self.fields(table, STOP_FIELDS, index)
            page = base | self.page(table, index)
            self.check_page(page, index)
            question = table.get("question")
            stops.append(
                Stop(
                    title=self.texts(table, "title", index),
                    text=self.texts(table, "text", index),
                    page=page,
                    question=None if question is None else self.question(question, page, index),
                )
            )
        return Lesson(name, title, tuple(stops))


FOLDER = Path(__file__).parent


def lesson_names() -> tuple[str, ...]:
    """The lessons that ship: the `.toml` files beside this module, by name."""
    return tuple(sorted(path.stem for path in FOLDER.glob("*.toml") if LESSON_NAME.fullmatch(path.stem)))


@functools.cache  # the files ship with the app: read once per process
def shipped_lesson(name: str) -> Lesson:
    """A lesson that ships, by name (one of `lesson_names()`)."""
    if name not in lesson_names():
        raise KeyError(name)
    return read_lesson(name, (FOLDER / f"{name}.toml").read_bytes())
