"""Training's curves: the loss and the accuracy on the training batches, step by step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.labels import ChartLabels
from viz.style import HOVER_VALUE_FORMAT, ChartStyle, curve_colours, line_layout


def training_curves_figure(
    steps: Sequence[int],
    loss: Sequence[float],  # (n_logged,) mean cross-entropy of each logged batch
    accuracy: Sequence[float],  # (n_logged,) share of right answers in that batch, in [0, 1]
    *,
    title: str = "",
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
) -> go.Figure:
    """Loss on a log axis (it falls by orders of magnitude once a pattern forms) beside the
    accuracy on a fixed [0, 1] axis, both against the training step. Redrawn as training goes."""
    x = np.asarray(list(steps), dtype=np.int64)
    y_loss = np.asarray(list(loss), dtype=np.float64)
    y_accuracy = np.asarray(list(accuracy), dtype=np.float64)
    if not x.size == y_loss.size == y_accuracy.size:
        raise ValueError(f"{x.size} steps, {y_loss.size} losses and {y_accuracy.size} accuracies: they must match")
    if x.size and (np.diff(x) <= 0).any():
        raise ValueError("steps must increase")
    cool, warm = curve_colours(style.palette)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14)
    for column, y, name, colour in ((1, y_loss, labels.loss, warm), (2, y_accuracy, labels.accuracy, cool)):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name,
                line={"color": colour},
                hovertemplate=f"{labels.step} %{{x}}<br>{name}: %{{y:{HOVER_VALUE_FORMAT}}}<extra></extra>",
            ),
            row=1,
            col=column,
        )
    fig.update_layout(line_layout(title, style.font_size), showlegend=False)
    fig.update_xaxes(title={"text": labels.step})
    fig.update_yaxes(title={"text": labels.loss}, type="log", row=1, col=1)
    fig.update_yaxes(title={"text": labels.accuracy}, range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(tickfont_size=style.font_size, title_font_size=style.font_size)
    fig.update_yaxes(tickfont_size=style.font_size, title_font_size=style.font_size)
    return fig
