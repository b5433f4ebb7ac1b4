"""The step view as one element in the page (Streamlit's Components v2), drawn in the browser.

A change of layer, head, query token or step never waits for the server: the browser holds
the run's trace (`viz.step_view` builds the payload, the files of `step_view_browser/` draw it)
and redraws at once. The server hears of the view afterwards, once the clicks stop (the `view`
state, in a rerun of this fragment alone that redraws nothing), so the link and the downloads
follow. A run over the payload's budget sends one layer's step arrays at a time, when the
browser asks (the `need` state).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import streamlit as st
from streamlit import config
from streamlit.components.v1 import declare_component

from encoder import TraceArrays, habit_names, head_habits
from ui import classroom, session
from ui.i18n import HABIT_LABELS, chart_labels, texts
from ui.lessons import panel
from ui.lessons.questions import Mark
from ui.settings import Settings
from viz import number_text
from viz.step_view import (
    MAGIC,
    REPORT_DELAY_MS,
    STEPS,
    VIEW_FIELDS,
    StepViewStyle,
    View,
    plan_layers,
    step_view_payload,
    step_view_strings,
)

HERE = Path(__file__).parent
PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"  # the plotly wheel ships plotly.min.js here
BROWSER_DIR = HERE / "step_view_browser"
# The element's browser files, one job each, joined in this order into one ES module (no build
# step): so their top-level names share one scope and must not collide. A file uses only what
# the files before it define, but for methods of StepView, which element.js (last) gathers.
BROWSER_FILES: tuple[str, ...] = (
    "heatmap.js",  # HeatmapChart: a Plotly figure drawn on a canvas
    "cells.js",  # its cells for the keyboard and a screen reader (the WAI-ARIA grid pattern)
    "payload.js",  # the binary payload read into its header and arrays
    "numbers.js",  # numbers and strings as the page prints them (numberText, fill)
    "dom.js",  # DOM and MathML helpers
    "formulas.js",  # the formula beside each step
    "view.js",  # the view: layer, head, query and step; the address bar, the report, the keys
    "picks.js",  # several tokens chosen at once, in the strip and the grid
    "figures.js",  # each step's figure filled in with the view's numbers
    "tiles.js",  # every head of a layer, and of every layer, as thumbnails
    "plotly.js",  # Plotly.js loaded once per page (the generation element shares it)
    "charts.js",  # drawing the charts, the linked hover, the clicks, the downloads
    "worked.js",  # the worked example
    "tables.js",  # each chart's numbers as a table
    "element.js",  # the element: StepView, built and drawn; the module's default export
)


def browser_module() -> str:
    """The element's module: `BROWSER_FILES` joined, after the one constant that a payload's header
    cannot carry (the magic the payload starts with, checked before the header is read)."""
    magic = f"const PAYLOAD_MAGIC = {json.dumps(MAGIC.decode('ascii'))}; // viz.step_view.MAGIC\n"
    return magic + "\n".join((BROWSER_DIR / name).read_text(encoding="utf-8") for name in BROWSER_FILES)


_mount = st.components.v2.component(
    "step_view",
    css=(HERE / "step_view.css").read_text(encoding="utf-8"),
    js=browser_module(),
    # Not in a shadow root: every rule is under .avi, and tests and the bench find the element
    # with document.querySelector.
    isolate_styles=False,
)


@functools.cache  # the folder and the server's base path are fixed for the process
def plotly_url() -> str:
    """Where the browser loads Plotly.js: the copy inside the installed `plotly` package,
    served by Streamlit's static route for component folders (offline; cached by the browser)."""
    folder = declare_component("plotly_js", path=str(PLOTLY_DIR))
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"{'/' + base if base else ''}/component/{folder.name}/plotly.min.js"


def habit_captions(weights: np.ndarray, tokens: list[str], t: dict[str, str]) -> list[list[str]]:
    """(layers, heads) each head's habit with its score, as the thumbnails of the heads caption
    them ("previous 0.93"); a head with no single habit is "mixed", without a score."""
    scores = head_habits(weights, tokens)  # (layers, heads, habits)
    names = habit_names(scores)  # (layers, heads)
    best = scores.max(axis=-1)  # (layers, heads)
    return [
        [
            t[HABIT_LABELS[name]] if name == "mixed" else f"{t[HABIT_LABELS[name]]} {number_text(float(score), 2)}"
            for name, score in zip(layer_names, layer_best, strict=True)
        ]
        for layer_names, layer_best in zip(names, best, strict=True)
    ]


@st.cache_resource(max_entries=8, show_spinner=False)  # at most 8 MB each, or about 17 MB for the largest runs
def payload(
    _trace: TraceArrays,
    trace_id: str,
    lang: str,
    layers: tuple[int, ...],
    include_base: bool,
    lazy: bool,
    view: View,
    style: StepViewStyle,
    url: str,
    report_ms: int,
    mark: Mark | None,
) -> bytes:
    """One run's payload, built once per (trace, language, style, layers) and then re-sent as it
    is (Streamlit then sends the browser a reference to the message it already holds)."""
    config_ = _trace.config
    t = texts(lang)
    strings = step_view_strings(t, config_.d_model, config_.d_head)
    return step_view_payload(
        trace_id=trace_id,
        tokens=_trace.tokens,
        arrays=_trace.arrays,
        n_layers=config_.n_layers,
        n_heads=config_.n_heads,
        d_model=config_.d_model,
        layers=layers,
        include_base=include_base,
        lazy=lazy,
        view=view,
        strings=strings,
        labels=chart_labels(lang),
        style=style,
        plotly_url=url,
        report_ms=report_ms,
        tile_labels=None if _trace.key_tokens is not None else habit_captions(_trace.weights, _trace.tokens, t),
        mark=None if mark is None else dataclasses.asdict(mark),
        key_tokens=_trace.key_tokens,
    )


def commanded_view() -> View:
    """The view the server set (the link's): what a new element starts at. Its `revision` is what
    a later command from the server would raise, to move a browser off its own view."""
    state = st.session_state
    if "commanded_view" not in state:
        state.commanded_view = View(*(state[name] for name in VIEW_FIELDS), revision=session.first_revision())
    return state.commanded_view


def _browser_view() -> None:
    """The view the browser reports: into the settings, so the link says it. Checked like a link's
    values (whole numbers, at least 0); ranges are fitted when the page next draws."""
    reported = _component_state().get("view")
    if not isinstance(reported, Mapping):
        return
    for name in VIEW_FIELDS:
        value = reported.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10_000:
            st.session_state[name] = value


def _component_state() -> Mapping[str, Any]:
    state = st.session_state.get("step_view")
    return state if isinstance(state, Mapping) else {}


def _nothing() -> None:
    """A layer asked for: the fragment's rerun builds the payload with it."""


def show(trace: TraceArrays, trace_id: str, lang: str, style: StepViewStyle) -> None:
    """Mount the step view with this run's payload (or the layer the browser asked for)."""
    n_layers = trace.config.n_layers
    commanded = commanded_view()
    every = plan_layers(trace.arrays, n_layers, wanted=0)
    lazy = len(every) < n_layers
    layers, include_base = every, True
    if lazy:
        need = _component_state().get("need")
        first = st.session_state.get("step_view_first")
        if first is None or first[0] != trace_id:  # a new run: the layer on screen now comes with it
            first = (trace_id, min(st.session_state.layer, n_layers - 1))
            st.session_state.step_view_first = first
        layers = (first[1],)
        if isinstance(need, Mapping) and need.get("trace") == trace_id and isinstance(need.get("layer"), int):
            layers = (min(max(need["layer"], 0), n_layers - 1),)
            include_base = bool(need.get("base"))
    report_ms = classroom.TEACHER_REPORT_MS if classroom.teaching() else REPORT_DELAY_MS
    mark = panel.revealed_mark(trace_id)
    key = (trace_id, lang, layers, include_base, lazy, commanded, style, plotly_url(), report_ms, mark)
    # Most runs here (a view report, a class's check-in) ask for the payload the session already
    # holds: compared as a tuple, without the cache's hashing of its arguments.
    held = st.session_state.get("step_view_payload")
    if held is None or held[0] != key:
        held = (key, payload(trace, *key))
        st.session_state.step_view_payload = held
    _mount(key="step_view", data=held[1], on_view_change=_browser_view, on_need_change=_nothing)


def view_style(settings: Settings) -> StepViewStyle:
    """The display settings the step view draws with."""
    return StepViewStyle(
        chart=session.chart_style(settings),
        fit_weights=settings.weight_scale == "fit",
        present=bool(settings.present),
        image_format=settings.image_format,
    )


def section(trace: TraceArrays, trace_id: str) -> None:
    """The step view, drawn in the browser (ui.step_view): a change of layer, head, query or step
    never comes back here but to report the view for the link, which reruns this fragment alone.
    On a page that follows a class, the fragment also runs every `classroom.POLL_S` to follow
    the teacher's view."""
    every = classroom.POLL_S if classroom.following() else None
    st.fragment(_section, run_every=every)(trace, trace_id)


def _section(trace: TraceArrays, trace_id: str) -> None:
    classroom.check_in(in_step_view=True)
    config = trace.config
    for name, size in (("layer", config.n_layers), ("head", config.n_heads), ("query", len(trace.tokens))):
        session.clamp(name, size, notice=True)
    session.clamp("step", len(STEPS))
    settings = session.settings()
    session.sync_link(settings)
    show(trace, trace_id, settings.lang, view_style(settings))
