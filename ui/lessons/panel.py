"""A lesson on the page: its stop's text, and its question, asked before the answer is revealed.

Alone, the user predicts, presses Reveal and sees the answer in the step view (the softmax cell
or the head outlined) with its numbers. In a class the teacher's page drives the stops (the
lesson and the stop are settings, so students follow them as they follow any setting), each
following student answers on their own device in a fragment that checks for the reveal every
`QUESTION_POLL_S`, and the teacher's page counts the answers live every `COUNT_POLL_S`. Reveal
closes the question in the class store (`ui.classes`), publishes its right answer and the class's
answers, and shows them as bars on the projector.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
from collections.abc import Mapping
from typing import Any

import streamlit as st

from encoder import LIMITS, TraceArrays
from ui import classroom, compute, session, widgets
from ui.classes import ANSWERED, CLOSED, FULL
from ui.lessons.format import Lesson, LessonError, Question, lesson_names, read_lesson, shipped_lesson
from ui.lessons.questions import Asked, Mark, answer_value, ask, is_right, question_text, tally
from ui.settings import from_query_params
from viz import class_answers_figure, markdown_literal
from viz.step_view import STEPS

QUESTION_POLL_S = 1.0  # a following student's question checks for the reveal this often
COUNT_POLL_S = 0.5  # the teacher's "{n} answered" counts again this often
MAX_OPTION_BARS = 12  # a question with more options shows bars only for the answers given and the right one


UPLOADED = "mine"  # the name of a lesson file uploaded on the page (a link cannot open one)


def lesson_of(name: str) -> Lesson | None:
    """A lesson that ships, or the one uploaded on this page (or, for a class, on its teacher's)."""
    if name != UPLOADED:
        return shipped_lesson(name) if name in lesson_names() else None
    state = st.session_state
    if classroom.following():
        data = session.class_store().lesson_file(state.class_code)
    else:
        data = state.get("lesson_file_kept")
    if data is None:
        return None
    try:
        return _read(data)
    except LessonError:
        return None


@functools.lru_cache(maxsize=16)  # a class's pages read the teacher's file once, not on every run
def _read(data: bytes) -> Lesson:
    return read_lesson(UPLOADED, data)


def error_message(t: Mapping[str, str], error: LessonError, file: str) -> str:
    """A refused lesson file, said in the page's language, with its line."""
    args = dict(error.args_)
    if error.key == "lesson_error_page":  # a page value refused as a link's would be, for the same reason
        reason_args = {"param": args["param"], **args.pop("reason_args")}
        args["reason"] = t[args["reason"]].format(**reason_args)
    reason = t[error.key].format(line=error.line, **args)
    return t["lesson_error"].format(file=markdown_literal(file), reason=markdown_literal(reason))


def keep_file() -> None:
    """An uploaded lesson file, read: kept when it is a lesson, refused (with its line) when not."""
    state = st.session_state
    file = state.get("lesson_file")
    state.pop("lesson_file_error", None)
    if file is None:
        return
    data = file.getvalue()
    try:
        _read(data)
    except LessonError as error:
        state.lesson_file_error = (file.name, error)
        return
    state.lesson_file_kept = data


def question_id(lesson: Lesson, stop: int) -> str:
    """How a class names a stop's question ("attention:3"): its answers and its reveal are kept under it."""
    return f"{lesson.name}:{stop + 1}"


def open_link() -> None:
    """On a session's first run, a link's `lesson=` and `stop=` open that stop: its page, under
    whatever else the link sets. An unknown lesson is said once, and the page is on its own."""
    state = st.session_state
    if "lesson_opened" in state:
        return
    state.lesson_opened = True
    if not state.lesson:
        return
    lesson = lesson_of(state.lesson)
    if lesson is None:
        state.lesson_refused, state.lesson, state.lesson_stop = state.lesson, "", 0
        return
    stop = min(state.lesson_stop, len(lesson.stops) - 1)
    params = dict(lesson.stops[stop].page) | st.query_params.to_dict() | {"stop": str(stop + 1)}
    settings, _ = from_query_params(params, LIMITS.max_layers, LIMITS.max_heads)
    for name, value in dataclasses.asdict(settings).items():
        state[name] = value
    state.link_settings = settings  # the link's refused values stay on screen, as any link's do


def go(stop: int) -> None:
    """Move the lesson to `stop` (0-based): its page, over this page's own language and display."""
    state = st.session_state
    lesson = lesson_of(state.lesson)
    if lesson is None:
        return
    stop = max(0, min(stop, len(lesson.stops) - 1))
    params = dict(lesson.stops[stop].page) | {"lesson": lesson.name, "stop": str(stop + 1)}
    classroom.apply(from_query_params(params, LIMITS.max_layers, LIMITS.max_heads)[0])


def start(name: str) -> None:
    st.session_state.lesson = name
    go(0)
    _share_file()


def _share_file() -> None:
    """A teacher's uploaded lesson goes to the class store, where its students' pages read it."""
    state = st.session_state
    if classroom.teaching() and state.get("lesson") == UPLOADED and state.get("lesson_file_kept") is not None:
        session.class_store().share_lesson(state.class_code, state.class_secret, state.lesson_file_kept)


def end() -> None:
    st.session_state.lesson, st.session_state.lesson_stop = "", 0


def move_view(mark: Mark | None) -> None:
    """Show the revealed answer: the step view moves to the softmax weights (or the heads) it is in."""
    if mark is None:
        return
    state = st.session_state
    state.step = STEPS.index("heads" if mark.chart == "heads" else "weights")
    state.layer, state.head = mark.layer, mark.head
    if mark.query is not None:
        state.query = mark.query
    session.command_view()


def revealed_mark(trace_id: str) -> Mark | None:
    """The revealed answer the step view outlines for this run (ui.step_view), if any."""
    held = st.session_state.get("lesson_mark")
    return held[1] if held is not None and held[0] == trace_id else None


def sidebar_section() -> None:
    """Start a lesson (or end the one on), unless this page follows a class: the teacher drives it."""
    t = session.strings()
    state = st.session_state
    if classroom.following():
        return
    st.subheader(t["lesson"])
    if state.get("lesson_refused"):
        st.warning(t["lesson_unknown"].format(name=state.lesson_refused))
    if state.lesson:
        st.button(t["lesson_end"], on_click=end, width="stretch", key="lesson_end")
        return
    names = lesson_names() + ((UPLOADED,) if lesson_of(UPLOADED) is not None else ())
    lang = state.lang
    labels = {name: _lesson_label(name, t, lang) for name in names}
    name = st.selectbox(t["lesson_pick"], names, format_func=labels.__getitem__, key="lesson_pick")
    st.button(t["lesson_start"], on_click=start, args=(name,), width="stretch", key="lesson_start", type="primary")
    st.caption(t["lesson_start_help"])
    st.file_uploader(t["lesson_upload"], type=["toml"], key="lesson_file", help=t["lesson_upload_help"],
                     on_change=keep_file)  # fmt: skip
    if state.get("lesson_file_error"):
        st.error(error_message(t, state.lesson_file_error[1], state.lesson_file_error[0]))


def _lesson_label(name: str, t: Mapping[str, str], lang: str) -> str:
    title = lesson_of(name).title[lang]
    return t["lesson_yours"].format(title=title) if name == UPLOADED else title


def section(trace: TraceArrays, run: compute.Run, trace_id: str) -> None:
    """The lesson's stop above the step view: where it is, its text, its question."""
    state = st.session_state
    state.lesson_mark = None
    lesson = lesson_of(state.lesson) if state.get("lesson") else None
    if lesson is None:
        return
    _share_file()  # a class started after the lesson gets it too
    t = session.strings()
    lang = state.lang
    index = min(state.lesson_stop, len(lesson.stops) - 1)
    stop = lesson.stops[index]
    with st.container(border=True, key="lesson"):
        position = t["lesson_position"].format(stop=index + 1, total=len(lesson.stops))
        st.caption(f"{lesson.title[lang]} · {position}")
        st.subheader(stop.title[lang])
        st.markdown(stop.text[lang])
        if stop.question is not None:
            where = (lesson.name, index, trace_id)
            if classroom.following():
                st.fragment(_student_question, run_every=QUESTION_POLL_S)(stop.question, trace, run, where)
            elif classroom.teaching():
                _teacher_question(stop.question, trace, run, where)
            else:
                _alone_question(stop.question, trace, run, where)
        if not classroom.following():
            back, forward = st.columns(2)
            back.button(t["lesson_back"], on_click=go, args=(index - 1,), disabled=index == 0, key="lesson_back",
                        width="stretch")  # fmt: skip
            forward.button(t["lesson_next"], on_click=go, args=(index + 1,), disabled=index == len(lesson.stops) - 1,
                           key="lesson_next", width="stretch", type="primary")  # fmt: skip


def _asked(question: Question, trace: TraceArrays, run: compute.Run) -> Asked:
    """The question asked of this run; a direction question runs the model once more, without √d_k."""
    unscaled = None
    if question.kind == "direction":
        unscaled = compute.trace_of_tokens(run.key, run.device, tuple(trace.tokens), upload_data=run.upload_data,
                                           scale=False)  # fmt: skip
    return ask(question, trace, session.strings(), unscaled)


def _ask(asked: Asked, trace: TraceArrays) -> None:
    t = session.strings()
    text = question_text(asked, trace, st.session_state.lang, t, literal=markdown_literal)
    st.markdown(f"**{t['lesson_question']}** {text}")


def _control(asked: Asked, key: str, *, disabled: bool = False) -> Any:
    """The answer control, named "Your answer": options as radio buttons, an estimate on a slider,
    a number typed in."""
    label = session.strings()["lesson_your_answer"]
    if asked.kind == "estimate":
        return st.slider(label, 0.0, 1.0, 0.5, 0.05, key=key, disabled=disabled)
    if asked.numeric:
        return st.number_input(label, value=None, step=0.01, format="%.4f", key=key, disabled=disabled)
    labels = dict(asked.options)
    return st.radio(label, list(labels), index=None, format_func=lambda value: markdown_literal(labels[value]),
                    key=key, disabled=disabled, horizontal=len(labels) <= 8)  # fmt: skip


def _answer_key(where: tuple[str, int, str]) -> str:
    name, stop, _ = where
    return f"lesson_answer_{name}_{stop + 1}"


def _result(asked: Asked, trace: TraceArrays, given: str | None, *, judged: bool) -> None:
    """The revealed answer with its numbers, and (`judged`) whether `given` was right."""
    t = session.strings()
    if judged:
        if given is None:
            st.info(t["lesson_no_answer"])
        elif is_right(asked.right, asked.numeric, asked.question.tolerance, given):
            st.success(t["lesson_right"], icon="✅")
        else:
            st.info(t["lesson_wrong"])
        if given is not None:
            st.markdown(t["lesson_your"].format(answer=markdown_literal(asked.label(given))))
    details = {name: markdown_literal(value) for name, value in asked.details.items()}
    template = {
        "key": t["lesson_answer_key"],
        "head": t["lesson_answer_head"],
        "direction": t["lesson_answer_direction"],
    }.get(asked.kind, t["lesson_answer_number"])
    answer = markdown_literal(asked.label(asked.right[0]))
    tolerance = f"{asked.question.tolerance:g}"
    st.markdown(template.format(**details | {"answer": answer, "layer": asked.layer + 1, "tolerance": tolerance}))
    if asked.question.explain:
        st.caption(question_text(asked, trace, st.session_state.lang, t, "explain", literal=markdown_literal))


def _alone_question(question: Question, trace: TraceArrays, run: compute.Run, where: tuple[str, int, str]) -> None:
    state = st.session_state
    t = session.strings()
    asked = _asked(question, trace, run)
    _ask(asked, trace)
    qid = f"{where[0]}:{where[1] + 1}"
    revealed = qid in state.setdefault("lesson_revealed", set())
    raw = _control(asked, _answer_key(where), disabled=revealed)
    if not revealed:
        st.caption(t["lesson_predict"])
        st.button(t["lesson_reveal"], on_click=_reveal_alone, args=(qid, asked.mark), key="lesson_reveal")
        return
    state.lesson_mark = (where[2], asked.mark)
    _result(asked, trace, answer_value(asked, raw), judged=True)


def _reveal_alone(qid: str, mark: Mark | None) -> None:
    st.session_state.lesson_revealed.add(qid)
    move_view(mark)


def _published(raw: str | None) -> Mapping[str, Any] | None:
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _teacher_question(question: Question, trace: TraceArrays, run: compute.Run, where: tuple[str, int, str]) -> None:
    state = st.session_state
    t = session.strings()
    asked = _asked(question, trace, run)
    _ask(asked, trace)
    qid = f"{where[0]}:{where[1] + 1}"
    store = session.class_store()
    published = _published(store.revealed(state.class_code, qid))
    if published is None:
        st.fragment(_count, run_every=COUNT_POLL_S)(qid)
        st.button(t["lesson_reveal"], on_click=_reveal_class, args=(qid, asked), key="lesson_reveal", type="primary")
        return
    state.lesson_mark = (where[2], asked.mark)
    if "bars" in published:
        bars = [tuple(bar) for bar in published["bars"]]
    else:  # closed a moment ago on another page of this teacher's, its bars not yet published: the answers are final
        bars = _bars(asked, store.answers(state.class_code, qid))
    total = sum(count for _, count, _ in bars)
    figure = class_answers_figure(
        bars, title=t["lesson_class_answers"].format(n=total), count_label=t["lesson_answers_axis"],
        style=session.chart_style(session.settings()),
    )  # fmt: skip
    widgets.chart(figure, f"answers_{qid.replace(':', '_')}")
    _result(asked, trace, None, judged=False)
    lesson = lesson_of(where[0])
    st.download_button(
        t["lesson_csv"], data=_answers_csv(lesson), file_name=f"answers_{lesson.name}.csv", mime="text/csv",
        on_click="ignore", key="lesson_csv",
    )  # fmt: skip


def _count(qid: str) -> None:
    """The teacher's live count of the answers in."""
    n = session.class_store().answer_count(st.session_state.class_code, qid)
    st.markdown(session.strings()["lesson_answered"].format(n=n))


def _reveal_class(qid: str, asked: Asked) -> None:
    """Close the question first, so that no answer lands after the count; then publish the bars."""
    state = st.session_state
    store = session.class_store()
    judge = {"right": list(asked.right), "numeric": asked.numeric, "tolerance": asked.question.tolerance}
    if not store.reveal(state.class_code, state.class_secret, qid, json.dumps(judge)):
        return
    bars = _bars(asked, store.answers(state.class_code, qid))
    store.reveal(state.class_code, state.class_secret, qid, json.dumps(judge | {"bars": bars}, ensure_ascii=False))
    move_view(asked.mark)


def _bars(asked: Asked, answers: Mapping[str, str]) -> list[tuple[str, int, bool]]:
    """The class's answers as bars; a question with many options shows only those answered, and the right one."""
    bars = tally(asked, list(answers.values()))
    if len(asked.options) > MAX_OPTION_BARS:
        bars = [bar for bar in bars if bar[1] or bar[2]]
    return bars


def _answers_csv(lesson: Lesson) -> str:
    """Every revealed question's answer counts: stop, question (its title), answer, count, right."""
    state = st.session_state
    store = session.class_store()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["stop", "title", "answer", "count", "right"])
    for index, stop in enumerate(lesson.stops):
        published = _published(store.revealed(state.class_code, question_id(lesson, index)))
        for label, count, right in published.get("bars", []) if published else []:
            writer.writerow([index + 1, stop.title[state.lang], label, count, int(bool(right))])
    return buffer.getvalue()


def _student_question(question: Question, trace: TraceArrays, run: compute.Run, where: tuple[str, int, str]) -> None:
    """A following student's question: answer (and change it) until the reveal, then the result."""
    state = st.session_state
    t = session.strings()
    asked = _asked(question, trace, run)
    _ask(asked, trace)
    qid = f"{where[0]}:{where[1] + 1}"
    store = session.class_store()
    published = _published(store.revealed(state.class_code, qid))
    mine = store.answer_of(state.class_code, qid, classroom.page_id())
    if published is None:
        key = _answer_key(where)
        _control(asked, key)
        st.button(t["lesson_send"], on_click=_send, args=(qid, asked, key), key="lesson_send", type="primary")
        status = state.get("lesson_status")
        if status in (CLOSED, FULL, "unanswered"):
            st.warning(t[{CLOSED: "lesson_closed", FULL: "lesson_full", "unanswered": "lesson_pick_first"}[status]])
        if mine is not None:
            st.caption(t["lesson_sent"].format(answer=markdown_literal(asked.label(mine))))
        else:
            st.caption(t["lesson_wait"])
        return
    state.lesson_mark = (where[2], asked.mark)
    # Judged against what the teacher's page published: the same run, computed there.
    judged = dataclasses.replace(asked, right=tuple(str(value) for value in published.get("right", asked.right)))
    _result(judged, trace, mine, judged=True)


def _send(qid: str, asked: Asked, key: str) -> None:
    state = st.session_state
    value = answer_value(asked, state.get(key))
    if value is None:
        state.lesson_status = "unanswered"
        return
    state.lesson_status = session.class_store().answer(state.class_code, classroom.page_id(), qid, value)
    if state.lesson_status == ANSWERED:
        state.lesson_status = None
