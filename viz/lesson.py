"""A lesson's question, answered by a class: one bar per answer given, the right one(s) marked.

The right bars are in the palette's cool colour, the others grey, and each right answer's label
starts with "✓", so the chart does not say it by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from viz.style import ChartStyle, curve_colours, line_layout

RIGHT_MARK = "✓ "
OTHER_COLOUR = "#9ea4ad"  # a grey that reads on white and on the dark theme's background


def class_answers_figure(
    bars: Sequence[tuple[str, int, bool]], *, title: str, count_label: str, style: ChartStyle = ChartStyle()
) -> go.Figure:
    """`bars` as (label, count, right), top to bottom in the order given; the count at each bar's end."""
    right_colour, _ = curve_colours(style.palette)
    labels = [f"{RIGHT_MARK}{label}" if right else label for label, _, right in bars]
    counts = [count for _, count, _ in bars]
    figure = go.Figure(
        go.Bar(
            x=counts,
            y=labels,
            orientation="h",
            marker_color=[right_colour if right else OTHER_COLOUR for _, _, right in bars],
            text=[str(count) for count in counts],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=f"%{{y}}: %{{x}} {count_label}<extra></extra>",
        )
    )
    layout = line_layout(title, style.font_size)
    layout["margin"] |= {"l": 8, "r": 3 * style.font_size}
    figure.update_layout(
        layout,
        height=max(160, int(len(bars) * 2.4 * style.font_size) + layout["margin"]["t"] + layout["margin"]["b"]),
        xaxis={"title": {"text": count_label}, "rangemode": "tozero", "dtick": max(1, max(counts, default=1) // 5)},
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        showlegend=False,
    )
    return figure
