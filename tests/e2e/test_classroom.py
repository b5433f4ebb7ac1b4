"""The classroom load client (bench/classroom.py) against the real server and real Chromium: it
must speak as the browser does, or its figures measure something else. Then a small class plays
the lesson: no errors and the right content, never timings (those are the bench's)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qs

from playwright.sync_api import Page, WebSocket
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.classroom import HEAD_CHANGES, INSPECTOR_KEY, PHASES, TEACHER_LINK, Report, Run, Student, classroom
from tests.e2e.e2e_harness import no_rerun, open_app, wait_for_report

STUDENTS = 5
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the client's coroutine in a thread of its own: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _first_run(frames: list[bytes]) -> Run:
    """The browser's first run: the messages it received up to the first `script_finished`."""
    messages = []
    for frame in frames:
        message = ForwardMsg()
        message.ParseFromString(frame)
        messages.append(message)
        if message.WhichOneof("type") == "script_finished":
            return Run(0.0, messages, message.script_finished)
    raise AssertionError(f"the browser's first run never finished ({len(messages)} messages)")


def test_the_load_client_speaks_as_the_browser_does(page: Page, app_url: str):
    received: list[bytes] = []
    sent: list[bytes] = []

    def watch(websocket: WebSocket) -> None:
        websocket.on("framereceived", lambda frame: received.append(frame) if isinstance(frame, bytes) else None)
        websocket.on("framesent", lambda frame: sent.append(frame) if isinstance(frame, bytes) else None)

    page.on("websocket", watch)
    open_app(page, TEACHER_LINK, inspector=True)
    browser_run = _first_run(received)

    async def client() -> tuple[Student, Run, Run]:
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
    heads = page.get_by_test_id("attention-inspector").get_by_role("radiogroup", name="Head", exact=True)
    with no_rerun(page) as mark:
        heads.get_by_role("radio").nth(2).click()
    wait_for_report(page, mark)
    reports = [message for message in map(_back, sent[marker:]) if message.rerun_script.fragment_id]
    assert reports, "the browser sent no report of its view"
    report = reports[-1].rerun_script
    widgets = {widget.id: widget for widget in report.widget_states.widgets}
    assert report.fragment_id == student.fragment_of[INSPECTOR_KEY]
    assert student.widget_ids[INSPECTOR_KEY] in widgets
    assert '"head":2' in widgets[student.widget_ids[INSPECTOR_KEY]].json_value
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
