"""A class answers the default lesson's questions on its own devices, in the real app and real
Chromium: a teacher at the projector and three students (one on a phone with touch, in 中文) answer
stop 3 (which key 爱 weighs most) and stop 4 (√d_k), each before the reveal; the projector counts
them, Reveal shows the class's answers as bars, each student's page says whether they were right,
and the step view outlines the answer. The right answers are worked out here from an independent
trace (`trace_arrays`), never by the app's code. A student who joins late lands on the current
stop. Then the same through two app processes that share the class in Redis.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import parse_qs

import numpy as np
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from harness.chromium import app_context, screenshot_of
from harness.page import STEP_VIEW, cell_position, open_app, view_text, wait_for_app
from harness.runs import watch_runs
from tests.e2e.pages import LOVE, phone, start_class, trace_arrays
from ui.i18n import texts
from viz.lesson import RIGHT_MARK

LESSON_LINK = {"lesson": "attention", "stop": 3}  # the lesson's page: 我爱你, d_model 64, 4 heads, 2 layers, seed 0
D_MODEL, HEADS = 64, 4
KEY_STOP = (1, 2, 2)  # stop 3 asks which key 爱 weighs most in layer 1, head 2 (1-based: layer, head, query)
BARS = "bars => bars.data[0] && {counts: Array.from(bars.data[0].x), labels: Array.from(bars.data[0].y)}"


def lesson(page: Page) -> Locator:
    """The lesson's box above the step view (ui/lessons/panel.py, key "lesson")."""
    return page.locator(".st-key-lesson")


def right_key() -> int:
    """The key 爱 weighs most in layer 1, head 2, from a trace computed here (0-based)."""
    tokens, arrays = trace_arrays("我爱你", d_model=D_MODEL, n_heads=HEADS, n_layers=2, seed=0)
    assert tokens == LOVE
    layer, head, query = (i - 1 for i in KEY_STOP)
    row = arrays[f"layer{layer}.weights"][head, query]  # (n,) 爱's softmax weights
    assert sorted(row)[-1] - sorted(row)[-2] > 1e-3, "a near tie: the question would have two right answers"
    return int(np.argmax(row))


def option_label(key: int) -> str:
    return f"{key + 1} · {LOVE[key]}"  # as a key question names a token: its position, then the token


@contextmanager
def student_page(browser: Browser, base_url: str, link: str, lang: str, on_phone: bool) -> Iterator[Page]:
    """A student's own device (a phone with touch, or a laptop) opening the class's link in `lang`."""
    with ExitStack() as stack:
        if on_phone:
            page = stack.enter_context(phone(browser, base_url))
        else:
            context = stack.enter_context(_closing(app_context(browser, base_url)))
            page = context.new_page()
        watch_runs(page)
        page.goto(f"{link}&lang={lang}")
        wait_for_app(page, step_view=True)
        yield page


@contextmanager
def _closing(context: BrowserContext) -> Iterator[BrowserContext]:
    try:
        yield context
    finally:
        context.close()


def press(page: Page, name: str) -> None:
    """A tap on a phone, a click elsewhere: what a student does with the button or option `name`."""
    target = lesson(page).get_by_role("button", name=name, exact=True)
    target.tap() if _touch(page) else target.click()


def _touch(page: Page) -> bool:
    return bool(page.evaluate("() => navigator.maxTouchPoints > 0"))


def answer_option(page: Page, lang: str, label: str) -> None:
    t = texts(lang)
    option = lesson(page).get_by_role("radiogroup", name=t["lesson_your_answer"]).get_by_text(label, exact=True)
    option.tap() if _touch(page) else option.click()
    expect(lesson(page).get_by_role("radio", name=label, exact=True)).to_be_checked()
    _send(page, t, label)


def answer_number(page: Page, lang: str, number: str) -> None:
    t = texts(lang)
    field = lesson(page).get_by_label(t["lesson_your_answer"], exact=True)
    field.fill(number)
    field.press("Enter")  # a number input commits its value on Enter (or on leaving it)
    expect(field).to_have_value(f"{float(number):.4f}")
    _send(page, t, f"{float(number):.4f}")


def _send(page: Page, t: dict[str, str], shown: str) -> None:
    press(page, t["lesson_send"])
    expect(lesson(page).get_by_text(t["lesson_sent"].format(answer=shown))).to_be_visible()


def class_bars(teacher: Page) -> dict[str, int]:
    """The bars the projector shows after the reveal: label -> count, as Plotly drew them."""
    chart = lesson(teacher).locator(".js-plotly-plot")
    expect(chart).to_have_count(1)
    teacher.wait_for_function(f"div => ({BARS})(div)", arg=chart.element_handle())
    drawn = chart.evaluate(f"div => ({BARS})(div)")
    return dict(zip(drawn["labels"], drawn["counts"], strict=True))


def expect_count(teacher: Page, n: int) -> None:
    expect(lesson(teacher).get_by_text(texts("en")["lesson_answered"].format(n=n), exact=True)).to_be_visible()


def expect_verdict(page: Page, lang: str, right: bool, *, outlined: bool = True) -> None:
    """The student's page says whether they were right, and (`outlined`) the step view outlines the answer."""
    t = texts(lang)
    expect(lesson(page).get_by_text(t["lesson_right" if right else "lesson_wrong"], exact=True)).to_be_visible()
    expect(page.locator(f"{STEP_VIEW} rect.avi-answer")).to_have_count(2 if outlined else 0)  # outline and halo


def outlined_cell(page: Page) -> tuple[int, int]:
    """The softmax cell (row, column) the revealed answer's outline is drawn around, found by where
    the outline is on the page and where the chart's own axes put each cell."""
    outline = page.locator(f'{STEP_VIEW} [data-chart="weights"] rect.avi-outline.avi-answer')
    expect(outline).to_have_count(1)
    cells = {(r, c): cell_position(page, "weights", r, c) for r in range(len(LOVE)) for c in range(len(LOVE))}
    box = outline.bounding_box()  # after cell_position has scrolled the chart into view
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return min(cells, key=lambda cell: math.dist(centre, cells[cell]))


def test_a_class_answers_two_questions_and_sees_the_reveal(
    browser: Browser, browser_context: BrowserContext, app_url: str
):
    t = texts("en")
    key = right_key()
    wrong = (key + 1) % len(LOVE)
    teacher = browser_context.new_page()
    try:
        open_app(teacher, LESSON_LINK, step_view=True)
        link = start_class(teacher, t)
        students = (("en", False, key, "4"), ("zh", True, wrong, "4.0"), ("en", False, key, "16"))
        with ExitStack() as stack:
            pages = [stack.enter_context(student_page(browser, app_url, link, lang, on)) for lang, on, *_ in students]
            # Stop 3: every student sees the question on the teacher's stop, and answers before the reveal.
            for page, (lang, _, choice, _) in zip(pages, students, strict=True):
                where = texts(lang)["lesson_position"].format(stop=3, total=11)
                expect(lesson(page).get_by_text(where, exact=False)).to_be_visible()
                answer_option(page, lang, option_label(choice))
            expect_count(teacher, 3)
            teacher.get_by_role("button", name=t["lesson_reveal"], exact=True).click()
            bars = class_bars(teacher)
            expected = {(RIGHT_MARK if k == key else "") + option_label(k): 0 for k in range(len(LOVE))}
            expected[RIGHT_MARK + option_label(key)], expected[option_label(wrong)] = 2, 1
            assert bars == expected
            # The projector and every student's step view move to the softmax weights, 爱's row, the answer outlined.
            for page in (teacher, *pages):
                expect(page.locator(STEP_VIEW)).to_have_attribute("data-ready", view_text(*KEY_STOP, 4))
            assert outlined_cell(teacher) == (KEY_STOP[2] - 1, key)
            for page, (lang, _, choice, _) in zip(pages, students, strict=True):
                expect_verdict(page, lang, right=choice == key)
            screenshot_of(lesson(teacher), "lesson-teacher-en-reveal")
            screenshot_of(lesson(pages[1]), "lesson-student-zh-phone-reveal")

            # Stop 4: √d_k typed in. "4" and "4.0" are the same answer; 16 is d_k itself.
            teacher.get_by_role("button", name=t["lesson_next"], exact=True).click()
            for page, (lang, _, _, number) in zip(pages, students, strict=True):
                expect(lesson(page).get_by_label(texts(lang)["lesson_your_answer"], exact=True)).to_be_visible()
                answer_number(page, lang, number)
            expect_count(teacher, 3)
            teacher.get_by_role("button", name=t["lesson_reveal"], exact=True).click()
            sqrt_d_k = math.sqrt(D_MODEL / HEADS)
            shown = {float(label.removeprefix(RIGHT_MARK)): (count, label.startswith(RIGHT_MARK))
                     for label, count in class_bars(teacher).items()}  # fmt: skip
            assert shown == {sqrt_d_k: (2, True), 16.0: (1, False)}
            for page, (lang, _, _, number) in zip(pages, students, strict=True):
                expect_verdict(page, lang, right=float(number) == sqrt_d_k, outlined=False)  # √d_k: no cell

            # A student who joins now lands on the teacher's stop, revealed, with nothing to answer.
            with student_page(browser, app_url, link, "zh", False) as late:
                zh = texts("zh")
                expect(lesson(late).get_by_text(zh["lesson_position"].format(stop=4, total=11))).to_be_visible()
                expect(lesson(late).get_by_text(zh["lesson_no_answer"], exact=True)).to_be_visible()
                expect(lesson(late).get_by_role("button", name=zh["lesson_send"])).to_have_count(0)
    finally:
        teacher.close()


def test_a_class_on_two_processes_answers_through_redis(browser: Browser, processes):
    """The teacher on one app process, the students on the other: the answers, the count, the reveal
    and the verdicts all go through the class store in Redis."""
    _, (first, second) = processes
    t = texts("en")
    key = right_key()
    teacher_context = app_context(browser, first)
    try:
        teacher = teacher_context.new_page()
        open_app(teacher, LESSON_LINK, step_view=True)
        code = parse_qs(start_class(teacher, t).split("?", 1)[1])["class"][0]
        with ExitStack() as stack:
            pages = [stack.enter_context(student_page(browser, second, f"/?class={code}", "en", False)) for _ in "ab"]
            answers = (key, (key + 2) % len(LOVE))
            for page, choice in zip(pages, answers, strict=True):
                answer_option(page, "en", option_label(choice))
            expect_count(teacher, 2)
            teacher.get_by_role("button", name=t["lesson_reveal"], exact=True).click()
            bars = class_bars(teacher)
            assert bars[RIGHT_MARK + option_label(key)] == 1 and bars[option_label(answers[1])] == 1
            assert sum(bars.values()) == 2
            for page, choice in zip(pages, answers, strict=True):
                expect_verdict(page, "en", right=choice == key)
    finally:
        teacher_context.close()
