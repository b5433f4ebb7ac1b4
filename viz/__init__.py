"""Plotly figures of what self-attention computes: numpy arrays and tokens in, `go.Figure` out.

Knows nothing of Streamlit or torch, so the same figures work in a notebook and can be
tested without a browser. Every builder checks the shapes it is given against the
tokens and names the numbers that disagree, and takes its words as one `ChartLabels`
(English unless given) and its palette and font size as one `ChartStyle`.

>>> import numpy as np
>>> from viz import matrix_figure
>>> fig = matrix_figure(np.full((3, 3), 1 / 3), ["我", "爱", "你"], ["我", "爱", "你"], kind="weights")
>>> fig.data[0].zmin, fig.data[0].zmax
(0.0, 1.0)
"""

from viz.experiments import difference_figure, query_key_figure, saturation_figure, variance_figure
from viz.grid import (
    GRID_GAP,
    GRID_MAX_TILE_CELLS,
    GRID_TOKEN_HOVER_MAX_CELLS,
    grid_block_size,
    grid_cell_to_layer_head,
    heads_grid_figure,
)
from viz.head_view import head_view_figure, head_view_token_at
from viz.heatmaps import matrix_figure, qkv_figure, vectors_figure
from viz.labels import ChartLabels
from viz.lesson import class_answers_figure
from viz.stack import cosine_similarity, norms_figure, position_curves_figure, similarity_figure
from viz.style import (
    MASK_MARK,
    MAX_CELLS_PER_AXIS_FOR_VALUES,
    PALETTES,
    ChartStyle,
    Palette,
    chart_config,
    markdown_literal,
    number_text,
    token_labels,
)
from viz.training import training_curves_figure

__all__ = [
    "GRID_GAP",
    "GRID_MAX_TILE_CELLS",
    "GRID_TOKEN_HOVER_MAX_CELLS",
    "MASK_MARK",
    "MAX_CELLS_PER_AXIS_FOR_VALUES",
    "PALETTES",
    "ChartLabels",
    "ChartStyle",
    "Palette",
    "chart_config",
    "class_answers_figure",
    "cosine_similarity",
    "difference_figure",
    "grid_block_size",
    "grid_cell_to_layer_head",
    "head_view_figure",
    "head_view_token_at",
    "heads_grid_figure",
    "markdown_literal",
    "matrix_figure",
    "norms_figure",
    "number_text",
    "position_curves_figure",
    "qkv_figure",
    "query_key_figure",
    "saturation_figure",
    "similarity_figure",
    "token_labels",
    "training_curves_figure",
    "variance_figure",
    "vectors_figure",
]
