"""The classroom load client (harness/student.py, which bench/classroom.py times) against the real
server and real Chromium: it must speak as the browser does, or the bench's figures measure something
else. Then a small class plays the lesson (harness/lesson.py): no errors and the right content, never
timings (those are the bench's)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocket, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from harness.chromium import app_context
from harness.lesson import HEAD_CHANGES, PHASES, TEACHER_LINK, Report, classroom
from harness.page import no_rerun, open_app, rerun, shown_view, view_text, wait_for_app, wait_for_report
from harness.runs import watch_runs
from harness.student import STEP_VIEW_KEY, ScriptRun, Student
from tests.e2e.pages import start_class
from ui.classroom import STATUS_POLL_S
from ui.i18n import texts

STUDENTS = 5
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the client's coroutine in a thread of its own: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _first_run(frames: list[bytes]) -> ScriptRun:
    """The browser's first run: the messages it received up to the first `script_finished`."""
    messages = []
    for frame in frames:
        message = ForwardMsg()
        message.ParseFromString(frame)
        messages.append(message)
        if message.WhichOneof("type") == "script_finished":
            return ScriptRun(0.0, messages, message.script_finished)
    raise AssertionError(f"the browser's first run never finished ({len(messages)} messages)")


def test_the_load_client_speaks_as_the_browser_does(page: Page, app_url: str):
    received: list[bytes] = []
    sent: list[bytes] = []

    def watch(websocket: WebSocket) -> None:
        websocket.on("framereceived", lambda frame: received.append(frame) if isinstance(frame, bytes) else None)
        websocket.on("framesent", lambda frame: sent.append(frame) if isinstance(frame, bytes) else None)

    page.on("websocket", watch)
    open_app(page, TEACHER_LINK, step_view=True)
    browser_run = _first_run(received)

    async def client() -> tuple[Student, ScriptRun, ScriptRun]:
        student, run = await Student.open(app_url, TEACHER_LINK)
        head = await student.change_head(2)
        await student.close()
        return student, run, head

    student, client_run, client_head = _run(client())
    # The same page: every element, in order, and the same step view (its payload, byte for byte,
    # is built from the same cached trace).
    assert client_run.elements() == browser_run.elements()
    assert "bidi_component" in client_run.elements() and not client_run.exceptions

    # A head change in the browser: the step view reports its view in a rerun of its fragment,
    # as the client's change_head does, with the same widget and fragment.
    marker = len(sent)
    heads = page.get_by_test_id("step-view").get_by_role("radiogroup", name="Head", exact=True)
    with no_rerun(page) as mark:
        heads.get_by_role("radio").nth(2).click()
    wait_for_report(page, mark)
    reports = [message for message in map(_back, sent[marker:]) if message.rerun_script.fragment_id]
    assert reports, "the browser sent no report of its view"
    report = reports[-1].rerun_script
    widgets = {widget.id: widget for widget in report.widget_states.widgets}
    assert report.fragment_id == student.fragment_of[STEP_VIEW_KEY]
    assert student.widget_ids[STEP_VIEW_KEY] in widgets
    assert '"head":2' in widgets[student.widget_ids[STEP_VIEW_KEY]].json_value
    # What the server answers the client: the link now names head 3 (1-based), as the browser's does.
    assert parse_qs(client_head.query_string() or "")["head"] == ["3"]
    assert client_head.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
    assert parse_qs(page.evaluate("location.search")[1:])["head"] == ["3"]


def _back(frame: bytes) -> BackMsg:
    message = BackMsg()
    message.ParseFromString(frame)
    return message


def test_a_small_class_plays_the_lesson_without_an_error(app_url: str):
    report: Report = _run(classroom(app_url, STUDENTS, seed=1))
    assert report.errors == []
    expected = {"open": STUDENTS, "head": STUDENTS * HEAD_CHANGES, "sentence": STUDENTS, "new shape": STUDENTS}
    assert {phase: len(report.seconds[phase]) for phase in PHASES} == expected


# --- follow the teacher -----------------------------------------------------------------------


def _head_picker(page: Page, label: str = "Head"):
    return page.get_by_test_id("step-view").get_by_role("radiogroup", name=label, exact=True)


def _teacher_shows_head(teacher: Page, t: dict[str, str], head: int) -> None:
    """Click a head on the teacher's page and wait until its report has reached the server (the
    teacher's link then names the head). Not `no_rerun`: the follower count's timer runs anyway."""
    _head_picker(teacher, t["head"]).get_by_role("radio", name=str(head), exact=True).click()
    teacher.wait_for_function(
        "head => new URLSearchParams(location.search).get('head') === head", arg=str(head), timeout=10_000
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_student_follows_the_teacher_breaks_away_and_rejoins(browser_context: BrowserContext, lang: str):
    t = texts(lang)
    teacher, student = browser_context.new_page(), browser_context.new_page()
    try:
        open_app(teacher, {"lang": lang, "text": "the cat sat on the mat", "heads": 4}, step_view=True)
        link = start_class(teacher, t)
        watch_runs(student)
        student.goto(link + f"&lang={lang}")
        wait_for_app(student, step_view=True)
        # The student's page shows the teacher's sentence and shape, in the student's own language.
        code = parse_qs(link.split("?", 1)[1])["class"][0]
        expect(student.get_by_text(t["class_banner"].format(code=code), exact=True)).to_be_visible()
        expect(student.get_by_test_id("step-view")).to_have_attribute("data-ready", view_text(1, 1, 1, 1))
        assert "the" in student.get_by_test_id("stCode").first.text_content()

        # The teacher changes the head: the student's step view follows within a couple of seconds.
        _teacher_shows_head(teacher, t, 3)
        expect(student.get_by_test_id("step-view")).to_have_attribute(
            "data-ready", view_text(1, 3, 1, 1), timeout=5_000
        )
        # ... and the teacher's count says one student follows.
        count = t["class_teaching"].split("·")[1].strip().replace("{n}", "1")
        expect(teacher.get_by_text(count)).to_be_visible(timeout=3_000 + 2_000 * STATUS_POLL_S)

        # The student explores on their own: the teacher's next change no longer moves their page.
        with rerun(student):
            student.get_by_role("button", name=t["class_explore"], exact=True).click()
        _teacher_shows_head(teacher, t, 4)
        student.wait_for_timeout(2_000)
        assert shown_view(student) == view_text(1, 3, 1, 1)

        # Following again takes the teacher's page as it is now.
        student.get_by_role("button", name=t["class_follow"], exact=True).click()
        expect(student.get_by_test_id("step-view")).to_have_attribute(
            "data-ready", view_text(1, 4, 1, 1), timeout=5_000
        )
    finally:
        teacher.close()
        student.close()


def test_a_students_page_cannot_drive_the_class(browser_context: BrowserContext):
    t = texts("en")
    teacher, student = browser_context.new_page(), browser_context.new_page()
    try:
        open_app(teacher, {"text": "我爱你", "heads": 4}, step_view=True)
        link = start_class(teacher, t)
        watch_runs(student)
        student.goto(link)
        wait_for_app(student, step_view=True)
        # The student explores and changes the head: the teacher's page does not move.
        with rerun(student):
            student.get_by_role("button", name=t["class_explore"], exact=True).click()
        with no_rerun(student) as mark:
            _head_picker(student).get_by_role("radio", name="2", exact=True).click()
        wait_for_report(student, mark)
        teacher.wait_for_timeout(1_500)
        assert shown_view(teacher) == view_text(1, 1, 1, 1)
        # A made-up teacher secret in a link makes a student, not a teacher.
        forged = browser_context.new_page()
        watch_runs(forged)
        forged.goto(link + "&teach=guessed")
        wait_for_app(forged, step_view=True)
        expect(forged.get_by_role("button", name=t["class_explore"], exact=True)).to_be_visible()
        forged.close()
    finally:
        teacher.close()
        student.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_unknown_class_code_gets_a_message_and_the_page_works(page: Page, lang: str):
    t = texts(lang)
    open_app(page, {"class": "NOSUCH99", "lang": lang}, step_view=True)
    expect(page.get_by_text(t["class_unknown"].format(code="NOSUCH99"))).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


# --- several app processes -------------------------------------------------------------------


def test_a_class_started_through_nginx_is_followed_on_both_processes(browser: Browser, processes):
    """The teacher through nginx, as `serve` is opened (a cookie keeps the browser on one process,
    which ever it is); a student on each app process: the class is known on both through Redis."""
    proxy, apps = processes
    t = texts("en")
    contexts = [app_context(browser, url) for url in (proxy, *apps)]
    try:
        teacher, *students = (context.new_page() for context in contexts)
        open_app(teacher, {"text": "the cat sat", "heads": 4}, step_view=True)
        assert "avi_route" in {cookie["name"] for cookie in teacher.context.cookies()}
        code = parse_qs(start_class(teacher, t).split("?", 1)[1])["class"][0]
        for student in students:
            watch_runs(student)
            student.goto(f"/?class={code}")
            wait_for_app(student, step_view=True)
            expect(student.get_by_role("button", name=t["class_explore"], exact=True)).to_be_visible()
            assert "cat" in student.get_by_test_id("stCode").first.text_content()
        _teacher_shows_head(teacher, t, 2)
        for student in students:
            expect(student.get_by_test_id("step-view")).to_have_attribute(
                "data-ready", view_text(1, 2, 1, 1), timeout=5_000
            )
    finally:
        for context in contexts:
            context.close()
