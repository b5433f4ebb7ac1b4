"""Figures for the experiments: why scores are divided by √d_k, how two attention maps differ, and
one head's queries and keys as points on one plane.

The saturation and variance figures plot numbers an experiment measured over many random
queries and keys; the difference figure compares two n x n maps of the same sentence
(two heads, or scaled against unscaled). Nothing is computed by a model here: the arrays
come in, and each figure shows exactly those numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.checks import float_array, labels_for
from viz.labels import ChartLabels
from viz.style import (
    DIVERGING_SCALES,
    HOVER_VALUE_FORMAT,
    ChartStyle,
    axis_with_token_ticks,
    base_layout,
    cell_texts,
    colorbar,
    curve_colours,
    line_layout,
    pinned_fonts,
    text_style,
    token_margins,
    token_pairs,
    values_are_shown,
)

ALL_ZERO_RANGE = 1e-9  # colour range of an all-zero difference: a tiny symmetric range keeps every cell pale
REFERENCE_COLOUR = "rgb(120,120,120)"  # grey: a guide for the eye, not a measurement
GUIDE_DASH = "dash"
D_K = "d_k"  # the x axis of the √d_k curves: a symbol, the same in every language


def d_k_values(d_ks: Sequence[int]) -> np.ndarray:
    """(n_d_k,) the head sizes as integers, after checking they can sit on a log axis in order."""
    values = list(d_ks)
    if not values:
        raise ValueError("d_ks is empty: give at least one d_k")
    for d_k in values:
        if isinstance(d_k, (bool, np.bool_)) or not isinstance(d_k, (int, np.integer)) or d_k < 1:
            raise ValueError(f"d_k={d_k!r} is invalid: every d_k must be a positive integer")
    for previous, following in pairwise(values):
        if following <= previous:
            raise ValueError(f"d_ks must increase, but {following} follows {previous}")
    return np.array(values, dtype=np.int64)


def curve(values: np.ndarray, name: str, d_ks: np.ndarray) -> np.ndarray:
    """(n_d_k,) one measured value per d_k, as float32; the message names both lengths."""
    y = float_array(values, name, "(n_d_k)")
    if y.shape[0] != d_ks.size:
        raise ValueError(f"{name} has {y.shape[0]} values but {d_ks.size} d_k values were given")
    return y


def d_k_axis(title: str, d_ks: np.ndarray) -> dict[str, Any]:
    """A log axis with one tick per measured d_k.

    Plotly's log axis is base 10, but on any log scale the powers of two used for d_k are
    evenly spaced, which is all a log2 axis would add; the ticks print the d_ks themselves.
    """
    return {
        "title": {"text": title},
        "type": "log",
        "tickmode": "array",
        "tickvals": d_ks.tolist(),
        "ticktext": [str(d_k) for d_k in d_ks.tolist()],
        "zeroline": False,
    }


def log_ticks(low: float, high: float, max_ticks: int = 8) -> list[float]:
    """Tick values for a log axis over [low, high], each labelled in full: 1, 2, 5, 10, 20, ...

    Plotly's own log labels print the 2 and 5 of each decade as a bare "2" and "5", so a
    reader sees "2" above "100"; its default labels every digit. When 1-2-5 would give more
    than `max_ticks` labels, only the powers of ten are kept.
    """
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"log_ticks needs 0 < low <= high, finite; got low={low!r}, high={high!r}")
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    candidates = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
    ticks = [v for v in candidates if low / 1.2 <= v <= high * 1.2]
    if len(ticks) > max_ticks:
        ticks = [v for v in ticks if round(math.log10(v), 9).is_integer()]
        ticks = ticks[:: math.ceil(len(ticks) / max_ticks)]
    if len(ticks) < 2:  # a range narrower than 1-2-5 steps: label its two ends
        ticks = [low, high] if low < high else [low]
    return [float(f"{v:.3g}") for v in ticks]


def measured_line(
    d_ks: np.ndarray,  # (n_d_k,)
    y: np.ndarray,  # (n_d_k,)
    *,
    name: str,
    value_label: str,
    colour: str,
    showlegend: bool = True,
) -> go.Scatter:
    """Markers joined by a line, one marker per measured d_k, with the exact value in the hover."""
    return go.Scatter(
        x=d_ks,
        y=y,
        mode="lines+markers",
        name=name,
        legendgroup=name,  # the same curve in another panel toggles with this legend entry
        showlegend=showlegend,
        line={"color": colour},
        marker={"size": 8, "color": colour},
        hovertemplate=(f"{name}<br>{D_K} = %{{x}}<br>{value_label}: %{{y:{HOVER_VALUE_FORMAT}}}<extra></extra>"),
    )


def saturation_figure(
    d_ks: Sequence[int],
    max_weight_scaled: np.ndarray,  # (n_d_k,) mean over rows of the largest softmax weight
    max_weight_unscaled: np.ndarray,  # (n_d_k,)
    entropy_scaled: np.ndarray,  # (n_d_k,) mean over rows of the softmax entropy, in nats
    entropy_unscaled: np.ndarray,  # (n_d_k,)
    uniform_entropy: float,  # ln(n): the entropy of a row that attends to all n keys equally
    *,
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
) -> go.Figure:
    """Without the division by √d_k, softmax saturates as d_k grows; with it, it does not.

    Left, the mean largest weight of a row on a fixed [0, 1] axis: unscaled it climbs
    towards 1 (one key takes all the attention, and the gradient through the others
    vanishes), scaled it stays flat. Right, the mean entropy of a row, with the entropy of
    uniform attention, ln(n), dashed: unscaled it falls towards 0, scaled it stays near the
    same level at every d_k. Each curve keeps its colour in both panels and has one legend
    entry. Two panels through `make_subplots`: this figure is drawn once per experiment,
    not on every change of head, so its cost does not matter.
    """
    x = d_k_values(d_ks)  # (n_d_k,)
    max_scaled = curve(max_weight_scaled, "max_weight_scaled", x)  # (n_d_k,)
    max_unscaled = curve(max_weight_unscaled, "max_weight_unscaled", x)  # (n_d_k,)
    ent_scaled = curve(entropy_scaled, "entropy_scaled", x)  # (n_d_k,)
    ent_unscaled = curve(entropy_unscaled, "entropy_unscaled", x)  # (n_d_k,)
    if (
        isinstance(uniform_entropy, bool)
        or not isinstance(uniform_entropy, (int, float, np.floating))
        or not np.isfinite(uniform_entropy)
        or uniform_entropy < 0
    ):
        raise ValueError(f"uniform_entropy={uniform_entropy!r} is invalid: must be ln(n), a finite number ≥ 0")
    scaled_colour, unscaled_colour = curve_colours(style.palette)

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14)
    for column, (scaled, unscaled, value_label) in enumerate(
        ((max_scaled, max_unscaled, labels.mean_max_weight), (ent_scaled, ent_unscaled, labels.mean_entropy)), start=1
    ):
        curves = ((scaled, labels.scaled, scaled_colour), (unscaled, labels.unscaled, unscaled_colour))
        for y, name, colour in curves:
            line = measured_line(x, y, name=name, value_label=value_label, colour=colour, showlegend=column == 1)
            fig.add_trace(line, row=1, col=column)
    uniform = np.full(2, uniform_entropy, dtype=np.float32)  # (2,) a flat line from the first to the last d_k
    fig.add_trace(
        go.Scatter(
            x=x[[0, -1]],
            y=uniform,
            mode="lines",
            name=labels.uniform,
            line={"color": REFERENCE_COLOUR, "dash": GUIDE_DASH},
            hovertemplate=f"{labels.uniform}: %{{y:{HOVER_VALUE_FORMAT}}}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    font_size = style.font_size
    fig.update_layout(line_layout(title, font_size))
    fig.update_xaxes(d_k_axis(D_K, x))
    fig.update_yaxes(title={"text": labels.mean_max_weight}, range=[0, 1], row=1, col=1)  # weights live in [0, 1]
    fig.update_yaxes(title={"text": labels.mean_entropy}, rangemode="tozero", row=1, col=2)
    fig.update_xaxes(tickfont_size=font_size, title_font_size=font_size)  # as pinned_fonts does
    fig.update_yaxes(tickfont_size=font_size, title_font_size=font_size)
    return fig


def variance_figure(
    d_ks: Sequence[int],
    score_variance: np.ndarray,  # (n_d_k,) measured variance of the raw scores q·k
    *,
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
) -> go.Figure:
    """The variance of raw scores grows like d_k: the reason for dividing them by √d_k.

    q·k sums d_k products, so with independent entries its variance is d_k times that of
    one product; dividing by √d_k brings it back to that of one product. On log-log axes a
    quantity proportional to d_k is a straight line of slope 1, drawn dashed next to the
    measurements. The reference passes through the first measured point, so it comes from
    the data shown and assumes nothing about the variance of the entries of q and k: the
    student judges only whether the later points stay on it.
    """
    x = d_k_values(d_ks)  # (n_d_k,)
    variance = curve(score_variance, "score_variance", x)  # (n_d_k,)
    for index, value in enumerate(variance.tolist()):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(
                f"score_variance[{index}]={value!r} is invalid: a variance on a log axis must be finite and > 0"
            )
    reference = (variance[0] * (x / x[0])).astype(np.float32)  # (n_d_k,): ∝ d_k, equal to variance[0] at d_ks[0]
    _, unscaled_colour = curve_colours(style.palette)  # raw scores: the unscaled curve's colour
    variance_label, reference_label = labels.score_variance, labels.proportional_to_d_k
    measured = measured_line(x, variance, name=variance_label, value_label=variance_label, colour=unscaled_colour)
    guide = go.Scatter(
        x=x,
        y=reference,
        mode="lines",
        name=reference_label,
        line={"color": REFERENCE_COLOUR, "dash": GUIDE_DASH},
        hovertemplate=(
            f"{reference_label}<br>{D_K} = %{{x}}<br>{variance_label}: %{{y:{HOVER_VALUE_FORMAT}}}<extra></extra>"
        ),
    )
    layout = line_layout(title, style.font_size)
    layout["xaxis"] = d_k_axis(D_K, x)
    ticks = log_ticks(float(min(variance.min(), reference.min())), float(max(variance.max(), reference.max())))
    layout["yaxis"] = {
        "title": {"text": variance_label},
        "type": "log",
        "tickmode": "array",
        "tickvals": ticks,
        "ticktext": [f"{tick:g}" for tick in ticks],
    }
    return go.Figure(data=[guide, measured], layout=pinned_fonts(layout, style.font_size))


def difference_figure(
    a: np.ndarray,  # (n_queries, n_keys), e.g. the weights of one head
    b: np.ndarray,  # (n_queries, n_keys), the map compared with it
    row_tokens: Sequence[str],
    column_tokens: Sequence[str],
    *,
    title: str = "",
    value_label: str = "B − A",  # what the two maps are (content, not an axis): the caller names them
    a_label: str = "A",
    b_label: str = "B",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
    show_values: bool | None = None,
    min_range: float = ALL_ZERO_RANGE,
) -> go.Figure:
    """B − A cell by cell, on a diverging scale centred on 0: where B attends more, and where less.

    The range is symmetric, ±max|B − A|, so a gain and a loss of the same size are equally
    strong colours and 0 is the pale middle; an all-zero difference gets a tiny range and
    draws all pale instead of failing. `min_range` widens the range to at least ±min_range:
    for two attention maps (values in [0, 1]) a floor such as 0.01 keeps float rounding
    (1e-7) pale instead of painting it as strongly as a real change. The hover gives both
    values and their difference.
    A cell where A or B is not finite (a masked score is -inf) has no difference: it is a
    gap that prints `MASK_MARK`, as in `matrix_figure`.
    """
    first = float_array(a, "a", "(n_queries, n_keys)")  # (n_q, n_k)
    second = float_array(b, "b", "(n_queries, n_keys)")  # (n_q, n_k)
    if first.shape != second.shape:
        raise ValueError(f"a has shape {first.shape} but b has shape {second.shape}: they must match")
    n_queries, n_keys = first.shape
    query_labels = labels_for(row_tokens, n_queries, array_name="a", axis_name="rows", token_kind="query tokens")
    key_labels = labels_for(column_tokens, n_keys, array_name="a", axis_name="columns", token_kind="key tokens")

    defined = np.isfinite(first) & np.isfinite(second)  # (n_q, n_k)
    with np.errstate(invalid="ignore"):  # -inf - -inf is NaN, and becomes a gap below anyway
        z = np.where(defined, second - first, np.float32(np.nan))  # (n_q, n_k): NaN draws as a gap
    largest = float(np.abs(z[defined]).max()) if defined.any() else 0.0
    if not 0 < min_range < math.inf:
        raise ValueError(f"min_range={min_range!r} is invalid: must be a positive finite number")
    largest = max(largest, min_range)

    customdata = np.empty((n_queries, n_keys, 4), dtype=object)  # (n_q, n_k, 4): query, key, a, b
    customdata[..., :2] = token_pairs(query_labels, key_labels)
    customdata[..., 2] = np.where(defined, first, 0.0).tolist()  # plain floats; gaps have no hover
    customdata[..., 3] = np.where(defined, second, 0.0).tolist()
    texts = cell_texts(z, ~defined, show_values=values_are_shown(show_values, n_queries, n_keys))
    heatmap = go.Heatmap(
        z=z,
        colorscale=DIVERGING_SCALES[style.palette],
        zmid=0.0,
        zmin=-largest,
        zmax=largest,
        customdata=customdata,
        hovertemplate=(
            f"{labels.query}: %{{customdata[0]}}<br>{labels.key}: %{{customdata[1]}}<br>"
            f"{a_label}: %{{customdata[2]:{HOVER_VALUE_FORMAT}}}<br>"
            f"{b_label}: %{{customdata[3]:{HOVER_VALUE_FORMAT}}}<br>"
            f"{value_label}: %{{z:{HOVER_VALUE_FORMAT}}}<extra></extra>"
        ),
        hoverongaps=False,  # a gap has no difference: Plotly would print "NaN"
        **text_style(texts),
        colorbar=colorbar(value_label),
    )
    layout = base_layout(title, style.font_size)
    layout["xaxis"] = axis_with_token_ticks(labels.key, key_labels)
    layout["yaxis"] = axis_with_token_ticks(labels.query, query_labels, top_down=True)
    token_margins(layout, style.font_size, query_labels, key_labels)
    return go.Figure(data=[heatmap], layout=pinned_fonts(layout, style.font_size))


STRONG_WEIGHT = 0.3  # a query's line to a key is drawn from this weight up (and to its strongest key always)


def query_key_figure(
    queries: np.ndarray,  # (n, 2) the queries on the principal plane
    keys: np.ndarray,  # (n, 2) the keys on the same plane
    tokens: Sequence[str],
    weights: np.ndarray,  # (n, n) the head's softmax weights, rows = queries
    *,
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
) -> go.Figure:
    """Queries (circles) and keys (diamonds) of one head as points, each labelled with its token,
    and a line from each query to its strongest key (and to any key over `STRONG_WEIGHT`), as wide
    as the weight: a key wins where it lies near the query, in the direction that counts."""
    q = float_array(queries, "queries", "(n, 2)")
    k = float_array(keys, "keys", "(n, 2)")
    w = float_array(weights, "weights", "(n, n)")
    n = q.shape[0]
    if q.shape != (n, 2) or k.shape != (n, 2) or w.shape != (n, n):
        raise ValueError(f"queries {q.shape}, keys {k.shape} and weights {w.shape} must be (n, 2), (n, 2), (n, n)")
    ticks = labels_for(tokens, n, array_name="queries", axis_name="rows", token_kind="tokens")
    query_colour, key_colour = curve_colours(style.palette)
    data = []
    for i in range(n):
        strongest = int(np.argmax(w[i]))
        for j in range(n):
            if j == strongest or w[i, j] >= STRONG_WEIGHT:
                data.append(
                    go.Scatter(
                        x=[q[i, 0], k[j, 0]],
                        y=[q[i, 1], k[j, 1]],
                        mode="lines",
                        line={"color": "rgba(120,120,120,0.6)", "width": 1 + 5 * float(w[i, j])},
                        hovertemplate=f"{ticks[i]} → {ticks[j]}<br>{labels.weight}: {w[i, j]:{HOVER_VALUE_FORMAT}}"
                        "<extra></extra>",
                        showlegend=False,
                    )
                )
    for points, name, colour, symbol in (
        (q, labels.query, query_colour, "circle"),
        (k, labels.key, key_colour, "diamond"),
    ):
        data.append(
            go.Scatter(
                x=points[:, 0],
                y=points[:, 1],
                mode="markers+text",
                text=ticks,
                textposition="top center",
                marker={"size": 12, "color": colour, "symbol": symbol},
                name=name,
                hovertemplate=f"{name}: %{{text}}<extra></extra>",
            )
        )
    layout = line_layout(title, style.font_size)
    layout["xaxis"] = {"title": {"text": "PC 1"}, "zeroline": False}
    layout["yaxis"] = {"title": {"text": "PC 2"}, "zeroline": False, "scaleanchor": "x"}  # distances as they are
    layout["legend"] = {"orientation": "h", "x": 0, "y": -0.15}
    return go.Figure(data=data, layout=layout)
