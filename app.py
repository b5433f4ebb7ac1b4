"""Attention Visualizer: the page, its sections in the order a user sees them.

Each section is a module of `ui/` (Streamlit's side); the numbers come from `encoder`, the
figures from `viz`. The step view is one element drawn in the browser (`ui.inspector`): its
layer, head, query and step change there, without a rerun.
"""

from __future__ import annotations

import streamlit as st

from ui import compute, downloads, experiments, heading, inspector, rest_of_layer, session, sidebar
from viz.i18n import texts


def main() -> None:
    compute.configure_torch()
    session.start()
    t = texts(st.session_state.lang)
    st.set_page_config(page_title=t["page_title"], page_icon="🔍", layout="wide")
    upload = sidebar.sidebar(t)
    settings = session.settings()
    session.sync_link(settings)

    heading.title(t, settings)
    result = compute.trace_or_message(t, settings, upload)
    if result is None:
        return
    view, run = result
    heading.summary(t, settings, view)
    inspector.section(view, t, run.trace_id)
    if not settings.present:  # a projector shows the step; the rest of the layer waits below
        rest_of_layer.rest_of_the_layer(view, t, settings.palette)
    experiments.experiments(view, t, run)
    if not settings.present:
        downloads.downloads(t, settings, view, run)


if __name__ == "__main__":  # as `streamlit run app.py` runs it; importing it runs nothing
    main()
