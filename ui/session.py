"""The session: the link that opens it, the settings it holds, and the picks fitted to a model.

Every setting lives in `st.session_state` under its field name (`ui.settings.Settings`), and in
the link under its link name (`ui.settings.link_name`), so a copied address reopens the same page.
"""

from __future__ import annotations

import dataclasses
import os
import secrets

import streamlit as st

from encoder import LIMITS
from ui.classes import ClassStore, class_store_for
from ui.i18n import CHOICE_LABELS, LANGUAGES, chart_labels, texts
from ui.settings import (
    CHOICES,
    Settings,
    from_query_params,
    head_options,
    to_query_params,
)
from viz import ChartLabels, ChartStyle
from viz.step_view import VIEW_FIELDS, View

BASE_FONT = 14  # chart font size in pixels: readable on a projector


PRESENTATION_FONT = 22  # presentation mode: readable from the back of a classroom


def strings() -> dict[str, str]:
    """The page's strings in the session's language: how every section gets its words."""
    return texts(st.session_state.lang)


def labels() -> ChartLabels:
    """The words the charts draw, in the session's language: how every figure gets them."""
    return chart_labels(st.session_state.lang)


def settings() -> Settings:
    state = st.session_state
    _untranslate(state)
    return Settings(**{f.name: state[f.name] for f in dataclasses.fields(Settings)})


def _untranslate(state) -> None:
    """Turn a radio's label back into its option. Streamlit keeps a radio's value as its label:
    after a change of language the browser still holds the old language's label, and a run of a
    fragment (which does not redraw the sidebar) hands it back as the value, e.g. palette "默认"."""
    for name, labels in CHOICE_LABELS.items():
        value = state.get(name)
        if value in CHOICES[name]:
            continue
        for lang in LANGUAGES:
            t = texts(lang)
            option = next((option for option, key in labels.items() if t[key] == value), None)
            if option is not None:
                state[name] = option
                break


def start() -> None:
    """On a session's first run, the link decides every widget's starting value."""
    if "link_settings" in st.session_state:
        return
    settings, notices = from_query_params(st.query_params.to_dict(), LIMITS.max_layers, LIMITS.max_heads)
    for name, value in dataclasses.asdict(settings).items():
        st.session_state[name] = value
    st.session_state.link_settings = settings
    st.session_state.link_notices = notices


@st.cache_resource
def class_store() -> ClassStore:
    """The classes every session sees (ui.classes): in Redis when `REDIS_URL` is set, so that every
    app process behind a load balancer sees them, else in this process's memory."""
    return class_store_for(os.environ.get("REDIS_URL"))


TEACHER_TAB = "teacher"  # in the teacher's own address bar: this tab teaches (ui.classroom.join)


def sync_link(settings: Settings) -> None:
    """Write the settings into the link, once they have settled in a run; in a class, keep its
    code there, and on the teacher's page publish them to the students."""
    params = to_query_params(settings)
    state = st.session_state
    code = state.get("class_code")
    if code is not None:
        if state.get("class_secret"):
            class_store().publish(code, state.class_secret, params)
            params = params | {TEACHER_TAB: "1"}  # this tab is the teacher's (its browser's cookie has the secret)
        params = params | {"class": code}
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def fit_heads() -> None:
    """After d_model changes, keep the nearest head count that still divides it."""
    state = st.session_state
    allowed = head_options(state.d_model, LIMITS.max_heads)
    if state.n_heads not in allowed:
        state.n_heads = max(h for h in allowed if h <= state.n_heads)


def set_text(text: str) -> None:
    st.session_state.text = text


def keep_upload() -> None:
    """Keep the uploaded file's name and bytes beyond its uploader, which Streamlit forgets
    while another model is chosen; removing the file from the uploader forgets it here too."""
    file = st.session_state.upload_file
    if file is None:
        st.session_state.pop("upload_kept", None)
    else:
        st.session_state.upload_kept = (file.name, file.getvalue())


def clamp(name: str, size: int, *, notice: bool = False) -> None:
    """Fit a 0-based pick to `size` choices. With `notice`, a value past the end that came from
    the link as opened (nothing changed since) gets the notice any refused link value gets:
    only now, with the model or the sentence known, can it be checked."""
    value = st.session_state[name]
    if value < size:
        return
    from_link = notice and settings() == st.session_state.link_settings
    st.session_state[name] = size - 1
    if from_link:
        t = strings()
        reason = t["reason_range"].format(low=1, high=size)
        st.warning(t["notice_param"].format(param=name, value=value + 1, reason=reason, default=size))


def font_size(settings: Settings) -> int:
    return PRESENTATION_FONT if settings.present else BASE_FONT


def chart_style(settings: Settings) -> ChartStyle:
    """The palette and font size every chart of the page is drawn with."""
    return ChartStyle(palette=settings.palette, font_size=font_size(settings))


def command_view() -> None:
    """Move the browser's step view to this session's layer, head, query and step: a new
    `View.revision`, which the browser takes as the server's order to give up its own view (a
    link, a class's teacher, a lesson's reveal). A session's revisions start at a random number, so
    that a browser which reconnects to a new session (its app process crashed) never mistakes the
    new session's first order for one it followed already."""
    state = st.session_state
    old = state.get("commanded_view")
    revision = old.revision + 1 if old is not None else first_revision()
    state.commanded_view = View(*(state[name] for name in VIEW_FIELDS), revision=revision)


def first_revision() -> int:
    return secrets.randbits(40)  # a whole number JavaScript holds exactly
