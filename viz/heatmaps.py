"""Heatmaps of one head: its Q, K, V or context vectors, and its n x n score or weight maps.

Every figure holds one `go.Heatmap` (Q, K and V: three, on axes laid out by hand, since
`make_subplots` lays out subplots slowly on every rerun), numeric axes with one tick per
token (a categorical axis would merge repeated tokens), and row 0, the first query
token, at the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import plotly.graph_objects as go

from viz.checks import float_array, labels_for
from viz.labels import ChartLabels
from viz.style import (
    DIVERGING_SCALES,
    HOVER_VALUE_FORMAT,
    MAX_CELLS_PER_AXIS_FOR_VALUES,
    SEQUENTIAL_SCALES,
    ChartStyle,
    axis_with_token_ticks,
    base_layout,
    cell_axis,
    cell_texts,
    colorbar,
    pinned_fonts,
    text_style,
    token_margins,
    token_pairs,
    values_are_shown,
)


def vectors_heatmap(
    values: np.ndarray,  # (n, d)
    labels: list[str],  # n escaped token labels
    *,
    hover: str,  # the hover's text before the value, e.g. "Token: %{customdata}<br>Dimension: %{x}<br>value"
    show_values: bool,
    **style: object,  # colour scale or colour axis, x axis
) -> go.Heatmap:
    """One heatmap of token vectors, with the token of each row in its hover."""
    z = np.where(np.isfinite(values), values, np.float32(np.nan))  # (n, d): NaN draws as a gap
    row_labels = np.repeat(np.array(labels, dtype=object)[:, None], z.shape[1], axis=1)  # (n, d): one per cell
    texts = cell_texts(z, None, show_values=show_values)
    return go.Heatmap(
        z=z,
        customdata=row_labels,
        hovertemplate=f"{hover}: %{{z:{HOVER_VALUE_FORMAT}}}<extra></extra>",
        **text_style(texts),
        **style,
    )


def vectors_figure(
    values: np.ndarray,  # (n, d): Q, K, V or context of one head
    tokens: Sequence[str],
    *,
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
    show_values: bool | None = None,
) -> go.Figure:
    """One row per token, one column per dimension: the vectors that attention mixes.

    Signed values get a diverging scale centred on 0, so a positive and a negative entry
    of the same size are equally strong colours. Dimensions are numbered from 0, as in the
    code. `show_values=None` prints the numbers only when every row and column is at most
    `MAX_CELLS_PER_AXIS_FOR_VALUES` wide.
    """
    z = float_array(values, "values", "(n_tokens, d)")  # (n, d)
    n_tokens, d = z.shape
    ticks = labels_for(tokens, n_tokens, array_name="values", axis_name="rows", token_kind="tokens")
    heatmap = vectors_heatmap(
        z,
        ticks,
        hover=f"{labels.token}: %{{customdata}}<br>{labels.dimension}: %{{x}}<br>{labels.value}",
        show_values=values_are_shown(show_values, n_tokens, d),
        colorscale=DIVERGING_SCALES[style.palette],
        zmid=0,
        colorbar=colorbar(labels.value),
    )
    # Up to MAX_CELLS_PER_AXIS_FOR_VALUES dimensions every column gets its tick; beyond, Plotly's
    # automatic ticks are already whole numbers.
    dim_ticks = {"dtick": 1} if d <= MAX_CELLS_PER_AXIS_FOR_VALUES else {}
    layout = base_layout(title, style.font_size)
    layout["xaxis"] = cell_axis(labels.dimension, **dim_ticks)
    layout["yaxis"] = axis_with_token_ticks(labels.token, ticks, top_down=True)
    token_margins(layout, style.font_size, ticks, [str(d - 1)])
    return go.Figure(data=[heatmap], layout=pinned_fonts(layout, style.font_size))


def qkv_figure(
    q: np.ndarray,  # (n, d_head) one head
    k: np.ndarray,  # (n, d_head), or (n_keys, d_head) with key_tokens
    v: np.ndarray,  # (n, d_head), or (n_keys, d_head) with key_tokens
    tokens: Sequence[str],
    *,
    key_tokens: Sequence[str] | None = None,  # K's and V's rows when they are not Q's (cross-attention)
    title: str = "",
    names: tuple[str, str, str] = ("Q", "K", "V"),
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
    show_values: bool | None = None,
) -> go.Figure:
    """Q, K and V of one head side by side, sharing the token rows and one colour scale.

    One figure rather than three: the browser draws one chart instead of three on every
    change of head, and one shared, symmetric colour scale lets the three be compared
    cell by cell. Three heatmaps on three x axes, laid out by domain (no make_subplots).
    With `key_tokens` (cross-attention: queries from the target, keys and values from the
    source), K and V share a second row axis of their own, labelled with the keys.
    """
    panels = [float_array(values, name, "(n_tokens, d_head)") for values, name in zip((q, k, v), names, strict=True)]
    same = panels[1].shape == panels[2].shape and panels[0].shape[1] == panels[1].shape[1]
    if not same or (key_tokens is None and panels[0].shape != panels[1].shape):
        shapes = ", ".join(f"{name} {panel.shape}" for name, panel in zip(names, panels, strict=True))
        raise ValueError(f"Q, K and V must have the same shape, but have {shapes}")
    n_tokens, d = panels[0].shape
    ticks = labels_for(tokens, n_tokens, array_name=names[0], axis_name="rows", token_kind="tokens")
    key_ticks = ticks
    if key_tokens is not None:
        key_ticks = labels_for(
            key_tokens, len(panels[1]), array_name=names[1], axis_name="rows", token_kind="key tokens"
        )
    show = values_are_shown(show_values, n_tokens, 3 * d)
    finite = [panel[np.isfinite(panel)] for panel in panels]
    largest = max((float(np.abs(values).max()) for values in finite if values.size), default=1.0) or 1.0
    layout = base_layout(title, style.font_size)
    layout["coloraxis"] = {
        "colorscale": DIVERGING_SCALES[style.palette],
        "cmin": -largest,  # symmetric around 0, and the same for Q, K and V
        "cmax": largest,
        "colorbar": colorbar(labels.value),
    }
    gap = 0.05 if key_tokens is None else 0.1  # K's own row labels need the room before it
    width = (1 - 2 * gap) / 3
    data = []
    dim_ticks = {"dtick": 1} if d <= MAX_CELLS_PER_AXIS_FOR_VALUES // 2 else {}
    for index, (name, panel) in enumerate(zip(names, panels, strict=True)):
        axis = "" if index == 0 else str(index + 1)
        rows_axis = "y" if index == 0 or key_tokens is None else "y2"
        hover = f"{name} · {labels.token}: %{{customdata}}<br>{labels.dimension}: %{{x}}<br>{labels.value}"
        data.append(
            vectors_heatmap(
                panel,
                ticks if rows_axis == "y" else key_ticks,
                hover=hover,
                show_values=show,
                coloraxis="coloraxis",
                xaxis=f"x{axis}",
                yaxis=rows_axis,
            )
        )
        start = index * (width + gap)
        layout[f"xaxis{axis}"] = cell_axis(f"{name} · {labels.dimension}", domain=[start, start + width], **dim_ticks)
    layout["yaxis"] = axis_with_token_ticks(labels.token, ticks, top_down=True)
    if key_tokens is not None:
        layout["yaxis2"] = {**axis_with_token_ticks("", key_ticks, top_down=True), "anchor": "x2"}
    token_margins(layout, style.font_size, ticks, [str(d - 1)])
    return go.Figure(data=data, layout=pinned_fonts(layout, style.font_size))


def matrix_figure(
    values: np.ndarray,  # (n_queries, n_keys)
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    *,
    kind: Literal["scores", "weights"],
    title: str = "",
    value_label: str | None = None,  # the colour bar's title; default: labels.weight or labels.value
    mask: np.ndarray | None = None,  # (n_queries, n_keys) bool, True = the query may attend to the key
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
    show_values: bool | None = None,
    weights_max: float = 1.0,
) -> go.Figure:
    """Query i (row) against key j (column): raw or scaled scores, or softmax weights.

    `kind="scores"` uses a diverging scale centred on 0 (Plotly makes the range symmetric
    around `zmid`, from the finite values). `kind="weights"` fixes the scale to [0, 1], so
    that the same colour means the same weight in every head and layer; a smaller
    `weights_max` (the map's own largest weight, say) ends the scale there instead, for
    contrast when every weight is small, as in a long sentence, where 1/n is pale.

    A cell is marked as masked (it prints `MASK_MARK`, whatever `show_values` says) when
    `mask` forbids it or its value is not finite: the encoder writes -inf into the scaled
    scores of masked keys, and NaN, +inf or -inf have no colour. Non-finite values become
    NaN, which Plotly draws as a gap without hover; finite values are drawn as given, so a
    masked weight still shows its 0 in colour and hover.
    """
    if kind not in ("scores", "weights"):
        raise ValueError(f"kind={kind!r} is invalid: must be 'scores' or 'weights'")
    if isinstance(weights_max, bool) or not isinstance(weights_max, (int, float)) or not 0 < weights_max <= 1:
        raise ValueError(f"weights_max={weights_max!r} is invalid: must be a number in (0, 1]")
    z = float_array(values, "values", "(n_queries, n_keys)")  # (n_q, n_k)
    n_queries, n_keys = z.shape
    query_labels = labels_for(query_tokens, n_queries, array_name="values", axis_name="rows", token_kind="query tokens")
    key_labels = labels_for(key_tokens, n_keys, array_name="values", axis_name="columns", token_kind="key tokens")
    masked = ~np.isfinite(z)  # (n_q, n_k)
    if mask is not None:
        allowed = np.asarray(mask)
        if allowed.dtype != np.bool_:
            raise ValueError(f"mask must be a bool array (True = may attend), but has dtype {allowed.dtype}")
        if allowed.shape != z.shape:
            raise ValueError(f"mask has shape {allowed.shape} but values has shape {z.shape}")
        masked |= ~allowed
    z = np.where(np.isfinite(z), z, np.float32(np.nan))  # (n_q, n_k): NaN draws as a gap

    if kind == "weights":
        colour = {"colorscale": SEQUENTIAL_SCALES[style.palette], "zmin": 0.0, "zmax": float(weights_max)}
    else:
        colour = {"colorscale": DIVERGING_SCALES[style.palette], "zmid": 0.0}
    if value_label is None:
        value_label = labels.weight if kind == "weights" else labels.value
    texts = cell_texts(z, masked, show_values=values_are_shown(show_values, n_queries, n_keys))
    heatmap = go.Heatmap(
        z=z,
        **colour,
        customdata=token_pairs(query_labels, key_labels),  # (n_q, n_k, 2)
        hovertemplate=(
            f"{labels.query}: %{{customdata[0]}}<br>{labels.key}: %{{customdata[1]}}<br>"
            f"{value_label}: %{{z:{HOVER_VALUE_FORMAT}}}<extra></extra>"
        ),
        hoverongaps=False,  # a gap is a masked cell: Plotly would print its value as "NaN"
        **text_style(texts),
        colorbar=colorbar(value_label),
    )
    layout = base_layout(title, style.font_size)
    layout["xaxis"] = axis_with_token_ticks(labels.key, key_labels)
    layout["yaxis"] = axis_with_token_ticks(labels.query, query_labels, top_down=True)
    token_margins(layout, style.font_size, query_labels, key_labels)
    return go.Figure(data=[heatmap], layout=pinned_fonts(layout, style.font_size))
