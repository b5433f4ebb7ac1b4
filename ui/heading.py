"""The top of the page: its title (none on a projector, nor on a following student's phone), the
link's refused values, and the run's tokens and one-line summary (folded away while following).
"""

from __future__ import annotations

import streamlit as st

from encoder import TraceArrays
from ui import classroom, session
from ui.settings import Settings
from viz import markdown_literal

# Presentation mode's larger type for the page's own text (charts get PRESENTATION_FONT). A
# fixed stylesheet: no user text is ever placed in HTML.
PRESENTATION_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.45rem; line-height: 1.5; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1.15rem; }
[data-testid="stMain"] h3 { font-size: 2.2rem; }
[data-testid="stMain"] .katex { font-size: 1.7em; }
[data-testid="stMain"] [data-testid="stSliderThumbValue"] p,
[data-testid="stMain"] [data-testid="stSliderTickBar"] p { font-size: 1rem; }
</style>"""


# Two of Streamlit's colours read under the 4.5:1 that small text needs (WCAG 1.4.3, axe-core's
# color-contrast): a caption, the text colour at 60% opacity (2.8:1 on white), and a slider's
# value above its thumb, in the primary colour (3.5:1 on the dark theme's sidebar). A caption at
# 80% reads at about 7:1, and the value in the text colour at far more, in either theme.
PAGE_CSS = """<style>
[data-testid="stCaptionContainer"] { opacity: 0.8; }
[data-testid="stSliderThumbValue"] { color: inherit; }
</style>"""


def title(settings: Settings) -> None:
    """The page's title, or in presentation mode the whole screen for the step (no sidebar)."""
    t = session.strings()
    st.html(PAGE_CSS)
    if settings.present:
        st.html(PRESENTATION_CSS)
        st.set_page_config(initial_sidebar_state="collapsed")
    elif not classroom.following():  # a student's first screen is the teacher's step, not the title
        st.title(t["title"])
        st.caption(t["subtitle"])
    show_link_notices(settings)


def show_link_notices(settings: Settings) -> None:
    """Refused link values stay visible until the user changes something."""
    t = session.strings()
    if settings != st.session_state.link_settings:
        return
    for notice in st.session_state.link_notices:
        reason = t[notice.reason].format(param=notice.param, **notice.reason_args)
        if notice.default is None:  # kept in part: the reason is the whole message
            st.warning(reason)
            continue
        st.warning(
            t["notice_param"].format(param=notice.param, value=notice.value, reason=reason, default=notice.default)
        )


def summary(settings: Settings, trace: TraceArrays) -> None:
    """The tokens as the model split them, and what ran: the model, its shape, the device, the time."""
    t = session.strings()
    if classroom.following():  # a student's phone shows the teacher's step first; this is one tap away
        with st.expander(t["class_details"]):
            st.markdown(t["class_explore_hint"])
            _summary(settings, trace)
    else:
        _summary(settings, trace)


def _summary(settings: Settings, trace: TraceArrays) -> None:
    t = session.strings()
    config, n = trace.config, len(trace.tokens)
    if not settings.present:  # a projector needs the height for the chart; its axes name the tokens
        st.caption(t["tokens"].format(n=n))
        st.code("  ·  ".join(trace.tokens), language=None, wrap_lines=True)
    if any(trace.unknown):
        st.info(t["unknown_tokens"].format(name=trace.model_name, n=sum(trace.unknown), total=n))
    if trace.model_name:
        model = trace.model_name
    elif settings.model == "upload":
        name, _ = st.session_state.upload_kept
        model = t["upload_name"].format(file=markdown_literal(name))
    else:
        model = t["random_name"].format(seed=config.seed)
    shape = t["model_summary"].format(model=model, d_model=config.d_model, heads=config.n_heads, layers=config.n_layers)
    shape_line = t["shape_summary"].format(d_head=config.d_head, n=n, params=f"{trace.parameters:,}")
    timing = t["device_summary"].format(device=trace.device, ms=f"{trace.milliseconds:.1f}")
    st.caption(f"{shape} · {shape_line} · {timing}")
