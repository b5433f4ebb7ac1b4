"""Lesson files (ui.lessons.format): the default lesson reads, and a malformed file is refused with a
message, in either language, that names the line that is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ui.i18n import texts
from ui.lessons.format import KINDS, MAX_FILE_BYTES, LessonError, lesson_names, read_lesson, shipped_lesson
from ui.lessons.panel import error_message

GOOD = """\
title = { en = "A lesson", zh = "一课" }
page = { text = "我爱你", heads = 4 }

[[stop]]
title = { en = "One", zh = "一" }
text = { en = "First.", zh = "第一。" }
page = { step = 2 }

[[stop]]
title = { en = "Two", zh = "二" }
text = { en = "Second.", zh = "第二。" }
page = { step = 4, layer = 2, head = 3 }

[stop.question]
kind = "key"
query = 2
text = { en = "Which key does {query} weigh most?", zh = "{query} 最看重哪个键？" }
"""


def test_the_readmes_example_lesson_reads():
    """A teacher copies the README's example first: it must be a lesson, with its question."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```toml\n(.*?)```", readme, re.S)
    lesson = read_lesson("example", example.encode())
    assert [stop.question.kind for stop in lesson.stops] == ["key"] and lesson.stops[0].page["step"] == "4"


def test_the_default_lesson_walks_the_article_with_questions_of_every_kind():
    assert "attention" in lesson_names()
    lesson = shipped_lesson("attention")
    assert 9 <= len(lesson.stops) <= 13 and lesson.questions >= 6
    assert {stop.question.kind for stop in lesson.stops if stop.question} == set(KINDS)
    assert lesson.stops[0].page["text"] == "我爱你"
    steps = [int(stop.page.get("step", 1)) for stop in lesson.stops]
    assert steps[:5] == [1, 1, 2, 3, 4]  # tokens, Q/K/V, scores, scaling, softmax: the article's order
    assert any(stop.page.get("model") == "minilm" for stop in lesson.stops)
    assert lesson.stops[-1].page.get("experiment") == "scaling"
    for stop in lesson.stops:
        assert all(stop.title[lang] and stop.text[lang] for lang in ("en", "zh"))


def test_a_stops_page_lies_over_the_lessons_and_its_question_defaults_to_the_page():
    lesson = read_lesson("mine", GOOD.encode())
    assert [stop.page for stop in lesson.stops] == [
        {"text": "我爱你", "heads": "4", "step": "2"},
        {"text": "我爱你", "heads": "4", "step": "4", "layer": "2", "head": "3"},
    ]
    question = lesson.stops[1].question
    assert (question.kind, question.layer, question.head, question.query, question.key) == ("key", 1, 2, 1, None)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BROKEN = [
    # (what is wrong, the file, the error's key, the text on the line it must name)
    ("toml", GOOD.replace('kind = "key"', "kind = key"), "lesson_error_toml", "kind = key"),
    ("kind", GOOD.replace('kind = "key"', 'kind = "guess"'), "lesson_error_choice", 'kind = "guess"'),
    ("field", GOOD.replace("query = 2", "querry = 2"), "lesson_error_unknown", "querry = 2"),
    ("page value", GOOD.replace("head = 3 }", "head = 9 }"), "lesson_error_page", "head = 9"),
    ("page name", GOOD.replace("step = 2 }", "steps = 2 }"), "lesson_error_unknown", "steps = 2"),
    ("language", GOOD.replace('text = { en = "First.", zh = "第一。" }', 'text = { en = "First." }'),
     "lesson_error_languages", 'text = { en = "First." }'),
    ("placeholder", GOOD.replace("{query} weigh", "{token} weigh"), "lesson_error_placeholder", "{token} weigh"),
    ("range", GOOD.replace("query = 2", "query = 0"), "lesson_error_range", "query = 0"),
    ("type", GOOD.replace("query = 2", 'query = "2"'), "lesson_error_type", 'query = "2"'),
    ("stop field", GOOD.replace('page = { step = 2 }', 'page = { step = 2 }\nnote = "x"'), "lesson_error_unknown",
     'note = "x"'),
]  # fmt: skip


@pytest.mark.parametrize(("what", "text", "key", "line_text"), BROKEN, ids=[case[0] for case in BROKEN])
def test_a_malformed_lesson_is_refused_naming_its_line(what, text, key, line_text):
    with pytest.raises(LessonError) as caught:
        read_lesson("mine", text.encode())
    assert caught.value.key == key
    assert caught.value.line == _line_of(text, line_text)
    for lang in ("en", "zh"):
        message = error_message(texts(lang), caught.value, "my_lesson.toml")
        assert str(caught.value.line) in message and "my\\_lesson\\.toml" in message


@pytest.mark.parametrize(
    ("data", "key", "line"),
    [
        (b"\xff\xfe title", "lesson_error_encoding", 1),
        (b'title = { en = "a", zh = "b" }\n', "lesson_error_no_stops", 1),
        (b"# " + b"x" * MAX_FILE_BYTES, "lesson_error_size", 1),
        (b'title = { en = "a", zh = "b" }\n\n\n[[stop]]\ntitle = { en = "a", zh = "b" }\n', "lesson_error_missing", 4),
    ],
)
def test_files_that_are_not_lessons_at_all(data: bytes, key: str, line: int):
    with pytest.raises(LessonError) as caught:
        read_lesson("mine", data)
    assert (caught.value.key, caught.value.line) == (key, line)
    assert error_message(texts("zh"), caught.value, "x.toml").startswith("课程文件")
