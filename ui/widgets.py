"""Small pieces every section of the page uses: a chart across the column and its look, the layer
and head pickers, two columns for two maps.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from encoder import EncoderConfig
from ui import session
from viz import (
    MAX_CELLS_PER_AXIS_FOR_VALUES,
    ChartStyle,
    chart_config,
)

WEIGHT_DIFFERENCE_RANGE = 0.01  # weight differences below this are float rounding: drawn pale


def chart(fig, name: str, **events: object) -> None:
    """A figure across the column, its toolbar's download button set to the chosen format.

    `events` go to `st.plotly_chart` (a key and `on_select`, for a chart that can be clicked).
    """
    st.plotly_chart(fig, width="stretch", config=chart_config(name, st.session_state.image_format), **events)


def look(style: ChartStyle) -> dict[str, object]:
    """The words and the look of a chart: a figure builder's `labels` and `style`."""
    return {"labels": session.labels(), "style": style}


def difference_look(style: ChartStyle) -> dict[str, object]:
    """The look of a difference of two attention maps, where rounding stays pale (WEIGHT_DIFFERENCE_RANGE)."""
    return look(style) | {"min_range": WEIGHT_DIFFERENCE_RANGE}


def tokens_digest(tokens: list[str]) -> str:
    """A short key for widgets whose option labels show the tokens (see the worked example's picker)."""
    return hashlib.sha256("\x1f".join(tokens).encode()).hexdigest()[:16]


def layer_and_head(
    config: EncoderConfig,
    layer_key: str,
    head_key: str | None = None,
) -> tuple[int, int]:
    """Side-by-side Layer and Head radios (1-based on screen), their values fitted to this model.

    persist_state: these widgets vanish (empty text, an experiment closed) and must keep
    their value. Without `head_key`, only the layer is asked and the head is 0.
    """
    t = session.strings()
    one_based = {"format_func": lambda i: str(i + 1), "horizontal": True, "persist_state": "session"}
    left, right = st.columns(2)
    st.session_state.setdefault(layer_key, 0)
    session.clamp(layer_key, config.n_layers, notice=True)
    layer = left.radio(t["layer"], range(config.n_layers), key=layer_key, **one_based)
    if head_key is None:
        return layer, 0
    st.session_state.setdefault(head_key, 0)
    session.clamp(head_key, config.n_heads, notice=True)
    return layer, right.radio(t["head"], range(config.n_heads), key=head_key, **one_based)


def per_head_table(columns: dict[str, np.ndarray]) -> None:
    """A sortable table, one row per head of every layer (1-based), one column per (layers, heads)
    array: numbers rounded to 3 decimals, anything else as it is."""
    t = session.strings()
    layers, heads = next(iter(columns.values())).shape
    table: dict[str, list] = {
        t["layer"]: [layer + 1 for layer in range(layers) for _ in range(heads)],
        t["head"]: [head + 1 for _ in range(layers) for head in range(heads)],
    }
    for name, values in columns.items():
        table[name] = [round(x, 3) if isinstance(x, float) else x for x in values.flatten().tolist()]
    st.dataframe(table, hide_index=True)


def side_by_side(n_tokens: int) -> tuple[st.delta_generator.DeltaGenerator, st.delta_generator.DeltaGenerator]:
    """Two columns for two maps of a short sentence; one above the other for a long one,
    whose token labels need the page's whole width."""
    if n_tokens <= MAX_CELLS_PER_AXIS_FOR_VALUES:
        left, right = st.columns(2)
        return left, right
    return st.container(), st.container()
