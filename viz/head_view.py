"""The bertviz "head view": every query token joined to every key token by a line as strong as its weight.

A heatmap shows the same numbers, but the lines show what a student should take away:
each token on the left spreads one unit of attention over the tokens on the right (a row
of the weights sums to 1), some heads look at the previous or next token, some at one
token only, and heads of the same layer look at different things. One colour per head,
drawn over each other, makes that difference visible; selecting a token keeps only the
lines of its row, i.e. where that one token looks.

Queries are the left column (x = 0) and keys the right one (x = 1); token i sits at y = i,
the first token at the top, in both columns.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly import colors as px_colors

from viz.checks import float_array, labels_for, require_square
from viz.labels import ChartLabels
from viz.style import (
    HOVER_VALUE_FORMAT,
    ChartStyle,
    Palette,
    base_layout,
    pinned_fonts,
    text_width,
)

# One colour per head, cycled beyond the set. Safe is a qualitative set chosen to stay
# distinguishable under the common colour-vision deficiencies.
HEAD_COLOURS: dict[str, list[str]] = {
    "default": px_colors.qualitative.Plotly,
    "colorblind": px_colors.qualitative.Safe,
}
# Lines are drawn in this many strengths, equal-width bins over [min_weight, 1]: Plotly
# styles a whole trace at once, so each (head, strength) is one trace holding all its
# segments. Five strengths read as "faint .. strong"; more would not be told apart.
WEIGHT_LEVELS = 5
MIN_LINE_WIDTH, MAX_LINE_WIDTH = 0.75, 6.0  # pixels, at weight 0 and weight 1
MIN_LINE_OPACITY, MAX_LINE_OPACITY = 0.2, 1.0
FADED_OPACITY = 0.08  # lines of unselected tokens: still there as context, not read as attention
# A weight of 1 drawn with rounding error (a float32 softmax row) is still a weight of 1.
WEIGHT_TOLERANCE = 1e-5
ROW_HEIGHT = 28  # pixels per token: fits a projector-sized label with room between rows
MIN_PLOT_HEIGHT = 300
TOKEN_MARKER_SIZE, SELECTED_MARKER_SIZE = 8, 16
LEGEND_ROOM = 40  # pixels under the diagram for one row of the horizontal head legend
# Hover markers sit on the lines, not at their midpoints: every line from i to j with the
# same i + j crosses at x = 0.5, so midpoints would lie on top of each other. Each drawn
# head gets its own place along the line, so the heads of one (query, key) pair are hovered
# one by one as the pointer moves along it.
LANES_SPREAD = 0.4  # the heads' lines fan out over this much of a token row (1 = the gap between tokens)
HOVER_SPAN = (0.15, 0.85)  # the part of a line, from query (0) to key (1), that holds hover markers


def head_colour(head: int, palette: Palette) -> str:
    """The colour of a head: fixed by its index, so a head keeps its colour when others are hidden."""
    colours = HEAD_COLOURS[palette]
    return colours[head % len(colours)]


def weight_level(weights: np.ndarray, min_weight: float) -> np.ndarray:
    """The strength (0 .. WEIGHT_LEVELS - 1) each weight is drawn with: equal-width bins over [min_weight, 1]."""
    fraction = (weights - min_weight) / (1.0 - min_weight)  # same shape as weights: 0 at min_weight, 1 at 1
    return np.clip(np.floor(fraction * WEIGHT_LEVELS), 0, WEIGHT_LEVELS - 1).astype(np.int64)


def level_style(level: int, min_weight: float) -> tuple[float, float]:
    """(width, opacity) of a strength: both grow with the weight at the middle of its bin."""
    weight = min_weight + (level + 0.5) * (1.0 - min_weight) / WEIGHT_LEVELS
    width = MIN_LINE_WIDTH + (MAX_LINE_WIDTH - MIN_LINE_WIDTH) * weight
    opacity = MIN_LINE_OPACITY + (MAX_LINE_OPACITY - MIN_LINE_OPACITY) * weight
    return width, opacity


def segments(queries: np.ndarray, keys: np.ndarray, lane: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """x and y of many lines in one trace: (0, i + lane) to (1, j + lane), then NaN, which Plotly
    draws as a break.

    float32 arrays with NaN rather than lists with None, so that Plotly sends them base64-encoded.
    """
    m = queries.size
    x = np.full((m, 3), np.nan, dtype=np.float32)  # (lines, 3): start, end, break
    y = np.full((m, 3), np.nan, dtype=np.float32)  # (lines, 3)
    x[:, 0], x[:, 1] = 0.0, 1.0
    y[:, 0], y[:, 1] = queries + lane, keys + lane
    return x.reshape(-1), y.reshape(-1)  # (3 · lines,)


def head_lane(rank: int, n_drawn: int) -> float:
    """How far (in token rows) the lines of the rank-th drawn head sit from the token's centre.

    Every head joins the same query to the same key; drawn at the same place, the last head
    would hide all the others. Side by side, within LANES_SPREAD of a row, each stays visible.
    """
    if n_drawn == 1:
        return 0.0
    return LANES_SPREAD * (rank / (n_drawn - 1) - 0.5)


def check_heads(heads: Sequence[int] | None, n_heads: int) -> list[int]:
    """The heads to draw, 0-based and in range; all of them for None."""
    if heads is None:
        return list(range(n_heads))
    chosen = list(heads)
    for head in chosen:
        if isinstance(head, bool) or not isinstance(head, numbers.Integral) or not 0 <= head < n_heads:
            raise ValueError(f"head {head!r} is out of range: weights has {n_heads} heads, numbered 0 to {n_heads - 1}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"heads={chosen!r} names a head twice: each head is drawn once")
    return [int(head) for head in chosen]


def check_softmax(stack: np.ndarray) -> None:
    """Refuse scores or logits passed by mistake: their lines would have no meaning as widths.

    Masked weights are 0 (softmax of -inf), so every value is finite and in [0, 1].
    """
    non_finite = int((~np.isfinite(stack)).sum())
    if non_finite:
        raise ValueError(f"weights must be softmax weights in [0, 1], but hold {non_finite} NaN or infinite values")
    if stack.size and not (stack.min() >= 0 and stack.max() <= 1 + WEIGHT_TOLERANCE):
        raise ValueError(
            f"weights must be softmax weights in [0, 1], but hold values from {stack.min()} to {stack.max()}"
        )


def head_view_figure(
    weights: np.ndarray,  # (heads, n, n) softmax weights of one layer, rows = queries
    tokens: Sequence[str],
    *,
    heads: Sequence[int] | None = None,  # 0-based heads to draw; None = all
    selected: int | None = None,  # a token: only its row (where it looks) is drawn strongly
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
    # Lines below this weight are not drawn: at 1 % they are invisible anyway, and with 12 heads
    # of 64 tokens there are 49k lines, most of them near 0, that the browser would still lay out.
    min_weight: float = 0.01,
) -> go.Figure:
    """Queries on the left, keys on the right, a line from query i to key j for each head.

    Width and opacity grow with the weight, in `WEIGHT_LEVELS` steps. The traces, in the
    order drawn (later on top):

    - one legend entry per head (no points), `legendgroup` "head{h}": clicking it in the
      legend hides or shows all the traces of that head;
    - per head and strength, one trace of lines (faded ones first when `selected` is given);
    - per head, one trace of invisible hover markers on its lines, whose `customdata` rows
      are (head, query, key, weight): the exact float32 weights the lines stand for;
    - the query column and the key column of token labels, whose `customdata` is the
      token index (see `head_view_token_at`).

    With `selected`, the lines of that query's row keep their strength and all others fade
    to `FADED_OPACITY`: a row sums to 1, so the strong lines are the one token's attention.
    Heads keep their colour when others are left out, and legend entries read "Head 1".. (1-based).
    """
    stack = float_array(weights, "weights", "(heads, n_queries, n_keys)")  # (H, n, n)
    require_square(stack, "weights")
    n_heads, n, _ = stack.shape
    ticks = labels_for(tokens, n, array_name="weights", axis_name="keys", token_kind="tokens")
    drawn_heads = check_heads(heads, n_heads)
    if isinstance(min_weight, bool) or not isinstance(min_weight, (int, float)) or not 0 <= min_weight < 1:
        raise ValueError(f"min_weight={min_weight!r} is invalid: must be a number in [0, 1)")
    if selected is not None and (
        isinstance(selected, bool) or not isinstance(selected, numbers.Integral) or not 0 <= selected < n
    ):
        raise ValueError(f"selected={selected!r} is out of range: there are {n} tokens, numbered 0 to {n - 1}")
    check_softmax(stack)

    legend, faded, strong, hover = [], [], [], []
    for rank, head in enumerate(drawn_heads):
        colour = head_colour(head, style.palette)
        lane = head_lane(rank, len(drawn_heads))
        group = {"legendgroup": f"head{head}", "showlegend": False}
        name = f"{labels.head} {head + 1}"
        legend.append(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line={"color": colour, "width": 3},
                name=name,
                legendgroup=f"head{head}",
                showlegend=True,
                hoverinfo="skip",
            )
        )
        queries, keys = np.nonzero(stack[head] >= min_weight)  # (lines,), (lines,): row-major order
        values = stack[head][queries, keys]  # (lines,) float32
        levels = weight_level(values, min_weight)  # (lines,)
        touching = np.ones(queries.size, dtype=bool) if selected is None else queries == selected  # (lines,)
        for level in range(WEIGHT_LEVELS):
            width, opacity = level_style(level, min_weight)
            for keep, opacity_here, into in ((True, opacity, strong), (False, FADED_OPACITY, faded)):
                chosen = (levels == level) & (touching == keep)  # (lines,)
                if not chosen.any():
                    continue
                x, y = segments(queries[chosen], keys[chosen], lane)
                into.append(
                    go.Scatter(
                        x=x,
                        y=y,
                        mode="lines",
                        line={"color": colour, "width": width},
                        opacity=opacity_here,
                        name=name,
                        hoverinfo="skip",
                        **group,
                    )
                )
        if queries.size:
            start, end = HOVER_SPAN
            along = start + (end - start) * (rank + 0.3) / len(drawn_heads)  # this head's place on every line
            customdata = np.stack([np.full(queries.size, head), queries, keys, values], axis=1)  # (lines, 4)
            hover.append(
                go.Scatter(
                    x=np.full(queries.size, along, dtype=np.float32),
                    y=(queries + lane + along * (keys - queries)).astype(np.float32),
                    mode="markers",
                    marker={"color": colour, "size": 10, "opacity": 0},  # hoverable, not drawn
                    customdata=customdata.astype(np.float32),
                    text=[f"{ticks[i]} → {ticks[j]}" for i, j in zip(queries.tolist(), keys.tolist(), strict=True)],
                    hovertemplate=(
                        f"%{{text}}<br>{labels.weight}: %{{customdata[3]:{HOVER_VALUE_FORMAT}}}<extra>{name}</extra>"
                    ),
                    name=name,
                    **group,
                )
            )

    data = [*legend, *faded, *strong, *hover, *token_columns(ticks, selected, labels.query, labels.key)]
    layout = head_view_layout(ticks, title, labels.query, labels.key, style.font_size)
    return go.Figure(data=data, layout=pinned_fonts(layout, style.font_size))


def token_columns(labels: list[str], selected: int | None, query_label: str, key_label: str) -> list[go.Scatter]:
    """The query column (text to its left) and the key column (text to its right).

    `customdata` holds each label's token index, which is what a click reports back.
    `cliponaxis=False` lets the text run into the margins reserved for it.
    """
    n = len(labels)
    index = np.arange(n, dtype=np.int32)  # (n,)
    columns = []
    for x, side, label in ((0.0, "middle left", query_label), (1.0, "middle right", key_label)):
        sizes = np.full(n, TOKEN_MARKER_SIZE, dtype=np.int32)  # (n,)
        if selected is not None and x == 0.0:
            sizes[selected] = SELECTED_MARKER_SIZE  # the token whose lines are drawn
        columns.append(
            go.Scatter(
                x=np.full(n, x, dtype=np.float32),
                y=index,
                mode="markers+text",
                text=labels,
                textposition=side,
                marker={"color": "gray", "size": sizes, "line": {"width": 0}},
                customdata=index,
                hovertemplate=f"{label}: %{{text}}<extra></extra>",
                cliponaxis=False,
                showlegend=False,
                name=label,
                # A click selects a point, and Plotly would then dim every other label.
                unselected={"marker": {"opacity": 1}},
            )
        )
    return columns


def head_view_layout(
    labels: list[str], title: str, query_label: str, key_label: str, font_size: float
) -> dict[str, Any]:
    """No axes (a diagram has no scale), no zoom, margins that fit the labels, a header row above the columns."""
    n = len(labels)
    hidden = {"visible": False, "showgrid": False, "zeroline": False, "fixedrange": True}
    layout = base_layout(title, font_size)
    layout["xaxis"] = {**hidden, "range": [-0.01, 1.01]}
    layout["yaxis"] = {**hidden, "range": [n - 0.5, -1.5]}  # reversed: token 0 at the top, the headers above it
    widest_query = max([text_width(label, font_size) for label in [*labels, query_label]])
    widest_key = max([text_width(label, font_size) for label in [*labels, key_label]])
    layout["margin"] |= {"l": round(widest_query + 24), "r": round(widest_key + 24), "b": LEGEND_ROOM}
    # At the columns themselves, shifted in pixels: Plotly hides an annotation placed outside the axis range.
    layout["annotations"] = [
        {
            "x": x,
            "y": -1,
            "xref": "x",
            "yref": "y",
            "xshift": shift,
            "xanchor": anchor,
            "text": f"<b>{text}</b>",
            "showarrow": False,
        }
        for x, shift, text, anchor in ((0, -8, query_label, "right"), (1, 8, key_label, "left"))
    ]
    layout["legend"] = {"orientation": "h", "x": 0, "y": 0, "yanchor": "top"}
    layout["hovermode"] = "closest"
    layout["dragmode"] = False
    margin = layout["margin"]
    layout["height"] = max(MIN_PLOT_HEIGHT, ROW_HEIGHT * (n + 1)) + margin["t"] + margin["b"]
    return layout


def head_view_token_at(point: Mapping[str, Any]) -> int | None:
    """The token index of a clicked point of `head_view_figure`, or None if it is not a token label.

    `point` is one entry of the points Streamlit's `plotly_chart(on_select=...)` returns
    (keys such as "curve_number", "point_index", "x", "y", "customdata"). Only the token
    labels carry a single whole number as customdata (their token index); hover markers
    carry four numbers and lines none, so the answer does not depend on the trace order.
    """
    value = point.get("customdata") if isinstance(point, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if not math.isfinite(value) or value != int(value) or value < 0:
        return None
    return int(value)
