"""Attention Visualizer: the page, its sections in the order a user sees them.

Each section is a module of `ui/` (Streamlit's side); the numbers come from `encoder`, the
figures from `viz`. The step view is one element drawn in the browser (`ui.step_view`): its
layer, head, query and step change there, without a rerun.
"""

from __future__ import annotations

import streamlit as st

from ui import (
    classroom,
    compute,
    downloads,
    experiments,
    heading,
    rest_of_layer,
    session,
    sidebar,
    step_view,
    trainer,
    translation,
)
from ui.lessons import panel as lesson


def main() -> None:
    compute.configure_torch()
    session.start()
    lesson.open_link()
    classroom.join()
    st.set_page_config(page_title=session.strings()["page_title"], page_icon="🔍", layout="wide")
    upload = sidebar.section()
    settings = session.settings()
    session.sync_link(settings)

    heading.title(settings)
    classroom.join_box()
    if settings.model == "translation":  # the encoder-decoder: its own section, then the trainer
        translation.section(settings)
        if not settings.present:
            trainer.section()
        return
    result = compute.trace_or_message(settings, upload)
    if result is None:
        trainer.section()  # a model still to train: the section that trains it stays on the page
        return
    trace, run = result
    heading.summary(settings, trace)
    lesson.section(trace, run, run.trace_id)
    step_view.section(trace, run.trace_id)
    if not settings.present:  # a projector shows the step; the rest of the layer waits below
        rest_of_layer.section(trace)
    experiments.section(trace, run)
    if not settings.present:
        trainer.section()
        downloads.section(settings, trace, run)


if __name__ == "__main__":  # as `streamlit run app.py` runs it; importing it runs nothing
    main()
