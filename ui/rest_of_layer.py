"""What happens after attention: the output projection, residual + LayerNorm, the feed-forward
network, and how the layers stack. Off by default (a toggle), in a fragment of its own.
"""

from __future__ import annotations

import streamlit as st

from encoder import TraceArrays, sinusoidal_positions
from ui import session, widgets
from ui.settings import ACTIVATION_NAMES
from viz import (
    norms_figure,
    position_curves_figure,
    similarity_figure,
    vectors_figure,
)

# The layer's formula for each placement of its LayerNorms (encoder.LAYER_NORMS).
LAYER_FORMULAS = {
    "post": r"h = \mathrm{LN}_1(x + \mathrm{Concat}(z)\,W_O),\qquad y = \mathrm{LN}_2(h + \mathrm{FFN}(h))",
    "pre": r"h = x + \mathrm{Concat}(z)\,W_O,\qquad y = h + \mathrm{FFN}(\mathrm{LN}_2(h))",
    "none": r"h = x + \mathrm{Concat}(z)\,W_O,\qquad y = h + \mathrm{FFN}(h)",
}


@st.fragment
def section(trace: TraceArrays) -> None:
    """What happens to the context vectors next, and how the layers stack. Off by default and in a
    fragment of its own: seven more charts would slow every other change on the page."""
    t = session.strings()
    config, tokens = trace.config, trace.tokens
    with st.container(key="rest-of-layer", border=True):
        st.toggle(t["rest_toggle"], key="rest", persist_state="session")
        session.sync_link(session.settings())
        if not st.session_state.rest:
            return
        look = {"labels": session.labels(), "style": session.chart_style(session.settings())}
        embedding_and_positions(trace, look)
        layer, _ = widgets.layer_and_head(config, "rest_layer")
        st.subheader(t["rest_title"].format(layer=layer + 1))
        st.markdown(t["rest_text_none" if config.layer_norm == "none" else "rest_text"])
        st.latex(LAYER_FORMULAS[config.layer_norm])
        stages = [
            ("input", t["rest_input"]),
            ("attn_output", t["rest_attn_output"]),
            ("ffn_input", t["rest_ffn_input_sum" if config.layer_norm == "none" else "rest_ffn_input"]),
            ("ffn_hidden", t["rest_ffn_hidden"].format(activation=ACTIVATION_NAMES[config.activation])),
            ("output", t["rest_output"]),
        ]
        for name, title in stages:
            fig = vectors_figure(trace.layer(layer, name), tokens, title=f"{title} (L{layer + 1})", **look)
            widgets.chart(fig, f"{name}_L{layer + 1}")
        left, right = st.columns(2)
        with left:
            title = t["rest_similarity"].format(layer=layer + 1)
            fig = similarity_figure(trace.layer(layer, "output"), tokens, title=title, **look)
            widgets.chart(fig, f"similarity_L{layer + 1}")
        with right:
            stream = trace.residual_stream()  # (layers + 1, n, d_model)
            stage_labels = [t["rest_stage_input"]] + [f"{t['layer']} {i + 1}" for i in range(config.n_layers)]
            fig = norms_figure(stream, tokens, title=t["rest_norms"], stage_labels=stage_labels, **look)
            widgets.chart(fig, "norms")


CURVE_POSITIONS = 64  # long enough to see several periods of the fast dimensions


CURVE_DIMENSIONS = (0, 2, 8, 32)  # sines of growing wavelength


def embedding_and_positions(trace: TraceArrays, look: dict[str, object]) -> None:
    """What enters layer 0: the token embeddings, the positional encodings and (sinusoidal) their waves.
    `look`: the charts' labels and style."""
    t = session.strings()
    config, tokens = trace.config, trace.tokens
    st.subheader(t["rest_before"])
    left, right = st.columns(2)
    with left:
        widgets.chart(vectors_figure(trace.arrays["embeddings"], tokens, title=t["rest_embeddings"], **look), "emb")
    with right:
        widgets.chart(vectors_figure(trace.arrays["positions"], tokens, title=t["rest_positions"], **look), "pos")
    if config.positional == "sinusoidal" and config.source is None:
        table = sinusoidal_positions(max(CURVE_POSITIONS, len(tokens)), config.d_model).numpy()
        dims = [d for d in CURVE_DIMENSIONS if d < config.d_model]
        fig = position_curves_figure(table, dims, n_tokens=len(tokens), title=t["rest_curves"], **look)
        widgets.chart(fig, "positional_curves")
