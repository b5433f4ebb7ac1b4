"""The experiments section: views that explain attention, each computed only once chosen, every
number from the real encoder. Why attention is built as it is (`ui.experiments.design`) and what
its heads are for (`ui.experiments.heads`).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from encoder import TraceArrays
from ui import compute, session
from ui.experiments import design, heads
from ui.i18n import option_label
from ui.settings import CHOICES
from viz import ChartStyle

# Each experiment of the picker (`ui.settings.CHOICES["experiment"]`, but "off") and what draws it.
EXPERIMENTS: dict[str, Callable[[TraceArrays, compute.Run, ChartStyle], None]] = {
    "head_view": design.head_view,
    "scaling": design.scaling,
    "padding": design.padding,
    "shuffle": design.shuffle,
    "compare": design.compare,
    "knockout": heads.knockout,
    "rollout": heads.rollout,
    "query_keys": heads.query_keys,
    "habits": heads.habits,
    "tokens": heads.several_tokens,
}


@st.fragment
def section(trace: TraceArrays, run: compute.Run) -> None:
    """The experiment picker and the chosen experiment. In a fragment of its own, and nothing is
    computed until one is chosen."""
    t = session.strings()
    with st.container(key="experiments", border=True):
        st.subheader(t["experiments_title"])
        experiment = st.radio(
            t["experiment"],
            CHOICES["experiment"],
            key="experiment",
            format_func=option_label(t, "experiment"),
            horizontal=True,
            persist_state="session",
        )
        settings = session.settings()
        session.sync_link(settings)
        if experiment != "off":
            EXPERIMENTS[experiment](trace, run, session.chart_style(settings))
