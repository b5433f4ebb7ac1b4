"""Figures of what heads are for: one head's queries and keys as points on one plane."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.checks import float_array, labels_for
from viz.experiments import curve_colours, line_layout
from viz.labels import ChartLabels
from viz.style import HOVER_VALUE_FORMAT, ChartStyle

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
