"""How token representations change through the stack: similarity between tokens, and vector norms.

Both are derived from the residual stream the trace keeps (the input of layer 0 and the
output of every layer); nothing is recomputed by a model here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly import colors as px_colors

from viz.checks import float_array, labels_for
from viz.labels import ChartLabels
from viz.style import (
    DIVERGING_SCALES,
    HOVER_VALUE_FORMAT,
    SEQUENTIAL_SCALES,
    ChartStyle,
    axis_with_token_ticks,
    base_layout,
    cell_texts,
    colorbar,
    pinned_fonts,
    text_style,
    token_margins,
    token_pairs,
    values_are_shown,
)

CURVE_COLOURS = px_colors.qualitative.Safe  # a colour-blind-safe qualitative set
NORM = "‖x‖"  # the norms' colour bar: a symbol, the same in every language


def cosine_similarity(vectors: np.ndarray) -> np.ndarray:
    """(n, n) cosine of the angle between every two rows of (n, d); 0 for a zero row."""
    rows = np.asarray(vectors, dtype=np.float64)  # (n, d)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)  # (n, 1)
    unit = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)  # (n, d)
    return (unit @ unit.T).astype(np.float32)  # (n, n)


def similarity_figure(
    vectors: np.ndarray,  # (n, d): one layer's output, say
    tokens: Sequence[str],
    *,
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
) -> go.Figure:
    """Token-to-token cosine similarity on a fixed [-1, 1] scale, so layers can be compared by colour.

    As layers stack, representations often grow alike; this is where a student sees it.
    """
    rows = float_array(vectors, "vectors", "(n_tokens, d)")
    ticks = labels_for(tokens, rows.shape[0], array_name="vectors", axis_name="rows", token_kind="tokens")
    z = cosine_similarity(rows)  # (n, n)
    n = len(ticks)
    texts = cell_texts(z, None, show_values=values_are_shown(None, n, n))
    heatmap = go.Heatmap(
        z=z,
        zmin=-1.0,
        zmax=1.0,
        colorscale=DIVERGING_SCALES[style.palette],
        customdata=token_pairs(ticks, ticks),  # (n, n, 2)
        hovertemplate=(
            f"%{{customdata[0]}} · %{{customdata[1]}}<br>{labels.cosine}: %{{z:{HOVER_VALUE_FORMAT}}}<extra></extra>"
        ),
        **text_style(texts),
        colorbar=colorbar(labels.cosine),
    )
    layout = base_layout(title, style.font_size)
    layout["xaxis"] = axis_with_token_ticks(labels.token, ticks)
    layout["yaxis"] = axis_with_token_ticks(labels.token, ticks, top_down=True)
    token_margins(layout, style.font_size, ticks, ticks)
    return go.Figure(data=[heatmap], layout=pinned_fonts(layout, style.font_size))


def norms_figure(
    stream: np.ndarray,  # (layers + 1, n, d): the input of layer 0, then every layer's output
    tokens: Sequence[str],
    *,
    title: str = "",
    stage_labels: Sequence[str] | None = None,  # one per row; default "0", "1", ...
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
) -> go.Figure:
    """The length of every token's vector after every layer: rows are stages, columns tokens."""
    stack = float_array(stream, "stream", "(stages, n_tokens, d)")  # (S, n, d)
    stages, n, _ = stack.shape
    ticks = labels_for(tokens, n, array_name="stream", axis_name="tokens", token_kind="tokens")
    names = [str(i) for i in range(stages)] if stage_labels is None else [str(s) for s in stage_labels]
    if len(names) != stages:
        raise ValueError(f"stream has {stages} stages but {len(names)} stage labels were given")
    z = np.linalg.norm(stack.astype(np.float64), axis=-1).astype(np.float32)  # (S, n)
    texts = cell_texts(z, None, show_values=values_are_shown(None, stages, n))
    heatmap = go.Heatmap(
        z=z,
        zmin=0.0,
        colorscale=SEQUENTIAL_SCALES[style.palette],
        hovertemplate=f"%{{y}} · #%{{x}}<br>{NORM}: %{{z:{HOVER_VALUE_FORMAT}}}<extra></extra>",
        **text_style(texts),
        colorbar=colorbar(NORM),
    )
    layout = base_layout(title, style.font_size)
    layout["xaxis"] = axis_with_token_ticks(labels.token, ticks)
    layout["yaxis"] = axis_with_token_ticks("", names, top_down=True)
    token_margins(layout, style.font_size, names, ticks)
    return go.Figure(data=[heatmap], layout=pinned_fonts(layout, style.font_size))


def position_curves_figure(
    table: np.ndarray,  # (positions, d_model): a positional encoding over many positions
    dims: Sequence[int],
    *,
    n_tokens: int,  # the sentence's length: its positions are marked on every curve
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),  # one colour per curve whatever the palette: only the font applies
) -> go.Figure:
    """A few dimensions of the positional encoding as curves over the positions.

    Sinusoidal encodings are sine and cosine waves whose wavelength grows with the
    dimension: low dimensions change from one token to the next, high ones barely move.
    The sentence's own positions are drawn as markers on the curves.
    """
    values = float_array(table, "table", "(positions, d_model)")  # (P, d)
    positions, d_model = values.shape
    if not 1 <= n_tokens <= positions:
        raise ValueError(f"n_tokens={n_tokens} is invalid: the table has {positions} positions")
    for dim in dims:
        if not 0 <= dim < d_model:
            raise ValueError(f"dimension {dim} is out of range: the table has {d_model} dimensions")
    x = np.arange(positions)
    data = []
    for index, dim in enumerate(dims):
        colour = CURVE_COLOURS[index % len(CURVE_COLOURS)]  # a curve and its sentence's dots match
        data.append(
            go.Scatter(
                x=x,
                y=values[:, dim],
                mode="lines",
                line={"color": colour},
                name=f"{labels.dimension} {dim}",
                hovertemplate=(
                    f"{labels.dimension} {dim} · {labels.position} %{{x}}: %{{y:{HOVER_VALUE_FORMAT}}}<extra></extra>"
                ),
            )
        )
        data.append(
            go.Scatter(
                x=x[:n_tokens],
                y=values[:n_tokens, dim],
                mode="markers",
                marker={"size": 9, "color": colour},
                showlegend=False,
                hoverinfo="skip",
            )
        )
    font_size = style.font_size
    layout = base_layout(title, font_size)
    layout["xaxis"] = {"title": {"text": labels.position}, "zeroline": False}
    layout["yaxis"] = {"title": {"text": labels.value}, "zeroline": True}
    layout["margin"] |= {"l": round(3.5 * font_size), "b": round(3.5 * font_size)}
    return go.Figure(data=data, layout=pinned_fonts(layout, font_size))
