"""Follow the teacher: "Start a class" makes a class whose students' link (and QR code) the page
shows large; a student who opens it follows the teacher's page live (sentence, model and shape,
layer, head, query, step, experiment) until they choose to explore on their own.

The teacher's page publishes its settings whenever they settle (`session.sync_link`). A
following student's step view checks the class every `POLL_S` (its fragment's `run_every`): a
change of layer, head, query or step moves it there, by the server's command
(`View.revision`, as a link moves it), in a run of that fragment alone; any other
change reruns the page with the teacher's settings.
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import json
import secrets
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit

import segno
import streamlit as st

from encoder import LIMITS
from ui import session
from ui.classes import CODE_PATTERN, normal_code
from ui.settings import Settings, from_query_params
from viz.step_view import VIEW_FIELDS

POLL_S = 0.6  # a following student's step view checks the class this often (ui.step_view)
TEACHER_COOKIE = "avi_teach"  # the teacher's browser keeps "CODE.SECRET" here (remember_teacher)
TEACHER_COOKIE_S = 12 * 3600  # a class ends after 4 hours with nobody in it; a lesson is shorter
STATUS_POLL_S = 5.0  # the sidebar's status (and the teacher's count of followers) this often
TEACHER_REPORT_MS = 100  # the teacher's step view reports its view this soon after a click (else 400 ms)
# What each student keeps for themselves: their language, their display, their device.
OWN = ("lang", "palette", "weight_scale", "image_format", "present", "cpu")
FOLLOWED = tuple(f.name for f in dataclasses.fields(Settings) if f.name not in OWN)


def join() -> None:
    """On a session's first run, a link's `class=` makes it a student of that class (`teach=`, the
    teacher's secret, makes it the teacher again). Then, while following, apply the teacher's latest."""
    state = st.session_state
    if "class_code" not in state:
        state.class_code, state.class_secret, state.class_following = None, None, False
        raw = st.query_params.get("class")
        if raw:
            code = normal_code(raw)
            snapshot = session.class_store().peek(code) if CODE_PATTERN.fullmatch(code) else None
            if snapshot is None:
                state.class_refused = raw[:40]
            elif session.class_store().is_teacher(code, secret := _teacher_secret(code)):
                state.class_code, state.class_secret = code, secret
            else:
                state.class_code, state.class_following = code, True
    if state.class_following:
        snapshot = session.class_store().follow(state.class_code, page_id())
        if snapshot is None:
            state.class_following, state.class_refused, state.class_code = False, state.class_code, None
        elif snapshot.revision != state.get("class_applied"):
            apply(teacher_settings(snapshot.params))
            state.class_applied = snapshot.revision


def _teacher_secret(code: str) -> str:
    """The teacher's secret for `code`: the teacher link's `teach=`; or, in the teacher's own tab
    (its link says `teacher=1`), the cookie the teacher's browser keeps (`remember_teacher`), so that
    a teacher whose app process died reconnects to another as the teacher, not as a student of their
    own class. The students' link in another tab of the same browser stays a student's. Checked by
    the caller: `teacher=1` alone, copied off a projector, makes nobody a teacher."""
    given = st.query_params.get("teach")
    if given:
        return given
    if st.query_params.get(session.TEACHER_TAB) != "1":
        return ""
    kept = st.context.cookies.get(TEACHER_COOKIE, "")
    kept_code, _, secret = kept.partition(".")
    return secret if kept_code == code else ""


def remember_teacher() -> None:
    """Keep the teacher's secret in the teacher's own browser, never in the address bar a projector
    shows: a cookie for this site only, read back by `_teacher_secret` when a new session starts."""
    state = st.session_state
    if not state.get("class_secret") or state.get("class_cookie") == state.class_code:
        return
    state.class_cookie = state.class_code
    # Both parts come from the class store, never from what a user typed: the code matches CODE_PATTERN,
    # and the secret is the store's own token_urlsafe (a link's `teach=` is kept only once the store
    # has confirmed it). json.dumps makes them one JavaScript string either way.
    value = f"{state.class_code}.{state.class_secret}"
    cookie = f"{TEACHER_COOKIE}={value}; path=/; max-age={TEACHER_COOKIE_S}; samesite=strict"
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True)


def following() -> bool:
    return bool(st.session_state.get("class_following"))


def teaching() -> bool:
    return bool(st.session_state.get("class_secret"))


def check_in(*, in_step_view: bool) -> None:
    """A following student's look at the class. A change of the teacher's layer, head, query or
    step moves this page's step view from within the step view's own fragment (`in_step_view`),
    which is all a head change costs; any other change reruns the page with the teacher's settings."""
    state = st.session_state
    if not following():
        return
    snapshot = session.class_store().follow(state.class_code, page_id())
    if snapshot is None:  # the class has ended: the page's run says so (join)
        st.rerun(scope="app")
    if snapshot.revision == state.get("class_applied"):
        return
    settings = teacher_settings(snapshot.params)
    current = session.settings()
    changed = {name for name in FOLLOWED if getattr(current, name) != getattr(settings, name)}
    if changed - set(VIEW_FIELDS):
        st.rerun(scope="app")
    if changed and not in_step_view:
        return  # the step view's own check-in moves it
    apply(settings)
    state.class_applied = snapshot.revision


def teacher_settings(params: Mapping[str, str]) -> Settings:
    """The teacher's published link, read as any link is."""
    return from_query_params(params, LIMITS.max_layers, LIMITS.max_heads)[0]


def apply(settings: Settings) -> None:
    """The teacher's settings into this session, but for what each student keeps (`OWN`). Only what
    differs is written: in a run that has drawn the sidebar already (a student who joined while the
    teacher moved the head), writing an unchanged widget's value would raise, and there is no need."""
    state = st.session_state
    for name in FOLLOWED:
        value = getattr(settings, name)
        if name not in state or state[name] != value:
            state[name] = value
    session.command_view()  # the step view follows as it follows a link


def page_id() -> str:
    """This page's name among the class's followers (counted, never shown)."""
    state = st.session_state
    if "class_follower" not in state:
        state.class_follower = secrets.token_hex(8)
    return state.class_follower


def students_link(code: str) -> str:
    return f"{_base_url()}/?{urlencode({'class': code}, quote_via=quote)}"


def only_this_machine(link: str) -> bool:
    """Whether `link` names this computer alone (localhost, 127.0.0.1, ::1): no student's device can open it."""
    host = urlsplit(link).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def teacher_link(code: str, secret: str) -> str:
    return f"{_base_url()}/?{urlencode({'class': code, 'teach': secret}, quote_via=quote)}"


def _base_url() -> str:
    url = st.context.url or ""
    return url.split("?", 1)[0].rstrip("/")


def start_class() -> None:
    code, secret = session.class_store().create()
    state = st.session_state
    state.class_code, state.class_secret, state.class_following = code, secret, False
    state.pop("class_refused", None)


def toggle_following() -> None:
    state = st.session_state
    state.class_following = not state.class_following
    state.class_applied = None  # following again: take the teacher's settings at once
    if not state.class_following:
        session.class_store().leave(state.class_code, page_id())


def sidebar_section() -> None:
    """The sidebar's class controls: start one, or, in one, the follower count or the follow switch."""
    t = session.strings()
    state = st.session_state
    st.subheader(t["class"])
    if state.get("class_refused"):
        st.warning(t["class_unknown"].format(code=state.class_refused))
    if state.class_code is None:
        st.button(t["class_start"], on_click=start_class, width="stretch", key="class_start")
        st.caption(t["class_start_help"])
    elif state.class_secret:
        teacher_status()
        with st.expander(t["class_teacher_link"]):
            st.caption(t["class_teacher_link_help"])
            st.code(teacher_link(state.class_code, state.class_secret), language=None, wrap_lines=True)
    elif state.class_following:
        student_status()  # checks the class every POLL_S, only while following
        st.button(t["class_explore"], on_click=toggle_following, width="stretch", key="class_toggle")
    else:
        st.markdown(t["class_exploring"].format(code=state.class_code))
        st.button(t["class_follow"], on_click=toggle_following, width="stretch", key="class_toggle")


@st.fragment(run_every=STATUS_POLL_S)
def teacher_status() -> None:
    t = session.strings()
    snapshot = session.class_store().peek(st.session_state.class_code)
    followers = 0 if snapshot is None else snapshot.followers
    st.markdown(t["class_teaching"].format(code=st.session_state.class_code, n=followers))


@st.fragment(run_every=STATUS_POLL_S)
def student_status() -> None:
    """While following: how many follow, and a check-in for what the step view does not follow itself
    (a new sentence or model when the page has no step view, say)."""
    t = session.strings()
    state = st.session_state
    if not following():  # the button to explore was pressed: the page reruns without this
        return
    check_in(in_step_view=False)
    snapshot = session.class_store().peek(state.class_code)
    followers = 0 if snapshot is None else snapshot.followers
    st.markdown(t["class_following"].format(code=state.class_code, n=followers))


def join_box() -> None:
    """On the teacher's page, the students' link in type a class can read off the projector, and its QR
    code; on a following student's, a line that says so."""
    state = st.session_state
    t = session.strings()
    if state.get("class_following"):
        st.info(t["class_banner"].format(code=state.class_code), icon="👩‍🏫")
    if not state.get("class_secret"):
        return
    remember_teacher()
    link = students_link(state.class_code)
    with st.expander(t["class_join"], expanded=True):
        left, right = st.columns([3, 1])
        left.markdown(t["class_join_text"])
        left.markdown(f"## `{link}`")
        left.markdown(t["class_code"].format(code=state.class_code))
        if only_this_machine(link):
            left.warning(t["class_loopback"])
        right.image(_qr_png(link), caption=t["class_qr"], width=220)


@st.cache_resource(max_entries=64, show_spinner=False)
def _qr_png(link: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()
