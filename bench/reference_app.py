"""The least a Streamlit page can do for the app's interactions: the reference that
bench/app_latency.py times in the same run, in the same browser, to print the app's latency
as a ratio that means something on any machine.

Same widgets and labels as the app ("Sentence" in the sidebar, a "Head" and a "Layer" radio in
a fragment), but each interaction redraws one small Plotly heatmap with its cell values, built
with plain `plotly.graph_objects`, and computes nothing. What the app takes beyond this is what
its own work costs: the encoder, the figures, and drawing them.

    streamlit run bench/reference_app.py
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st


def heatmap(tokens: list[str], seed: int) -> go.Figure:
    # (n, n) weights; a new seed draws new numbers, so the chart really changes
    weights = np.random.default_rng(seed).random((len(tokens), len(tokens)))
    return go.Figure(go.Heatmap(z=weights, x=tokens, y=tokens, texttemplate="%{z:.2f}", zmin=0, zmax=1))


@st.fragment
def picker(tokens: list[str]) -> None:
    layer = st.radio("Layer", [1, 2], horizontal=True)
    head = st.radio("Head", [1, 2, 3, 4], horizontal=True)
    st.plotly_chart(heatmap(tokens, 10 * layer + head), width="stretch")


text = st.sidebar.text_input("Sentence", "我爱你")
tokens = text.split() if " " in text.strip() else list(text.strip())
st.plotly_chart(heatmap(tokens, len(text)), width="stretch")
picker(tokens)
