"""Every head of every layer at a glance: one heatmap tiled from all the (n, n) weight maps.

A grid of L x H small heatmaps with `make_subplots` costs one trace per tile and a slow
subplot layout; tiling the maps into one array with NaN gaps between them draws the same
picture with a single `go.Heatmap`. Layers are rows of tiles, heads are columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.checks import float_array, labels_for, require_square
from viz.labels import ChartLabels
from viz.style import (
    HOVER_VALUE_FORMAT,
    SEQUENTIAL_SCALES,
    ChartStyle,
    base_layout,
    cell_axis,
    colorbar,
    pinned_fonts,
    token_margins,
)

GRID_GAP = 1  # empty (NaN) cells between neighbouring tiles: enough to see the seams
# A tile is a thumbnail: on a page, 12 heads side by side leave each tile about 90 pixels,
# so more than this many cells per side cannot be seen, only paid for. Longer sentences are
# averaged over blocks of tokens (64 tokens x 12 layers x 12 heads: 6.6 MB of figure JSON
# unpooled, about 0.5 MB pooled); the step view always shows every cell.
GRID_MAX_TILE_CELLS = 16
# Up to this many cells (2 layers x 4 heads of 40 tokens) the hover names the query and key
# tokens. That costs four Python objects per cell, validated by Plotly and written as JSON:
# about 30 bytes a cell, and time in proportion. Beyond it the hover gives 1-based positions
# from a one-byte-per-number array, which Plotly sends base64-encoded: less than half the bytes,
# and no Python object per cell.
GRID_TOKEN_HOVER_MAX_CELLS = 15_000
# Square cells need a height that follows the grid's shape; the page width is not known
# here, so a typical chart width stands in (a wide Streamlit page, minus the colour bar).
TYPICAL_WIDTH, MIN_HEIGHT, MAX_HEIGHT = 1000, 160, 900
OUTLINE_COLOURS = ("black", "white")  # a white line on a black one: visible on any colour
TILE_LABEL_SCALE = 0.75  # a tile's label is this much of the figure's font: a thumbnail's caption
TILE_LABEL_BACKGROUND = "rgba(255,255,255,0.85)"  # dark text on a light box reads on any weight's colour


def grid_block_size(n_tokens: int, max_tile_cells: int = GRID_MAX_TILE_CELLS) -> int:
    """How many tokens one thumbnail cell averages along each axis (1: no pooling)."""
    return math.ceil(n_tokens / max_tile_cells)


def pool_blocks(weights: np.ndarray, block: int) -> np.ndarray:
    """Average (layers, heads, n_queries, n_keys) over block x block squares of tokens; the last may
    be smaller.

    Masked weights are 0, not NaN, so they count as "no attention" in the average.
    """
    if block == 1:
        return weights
    n_layers, n_heads, n_queries, n_keys = weights.shape
    rows, columns = math.ceil(n_queries / block), math.ceil(n_keys / block)
    padded = np.full((n_layers, n_heads, rows * block, columns * block), np.nan, dtype=np.float32)
    padded[:, :, :n_queries, :n_keys] = weights
    blocks = padded.reshape(n_layers, n_heads, rows, block, columns, block)  # (L, H, mq, b, mk, b)
    return np.nanmean(blocks, axis=(3, 5)).astype(np.float32)  # (L, H, mq, mk)


def tile_stride(n_tokens: int) -> int:
    """Distance between the first cells of two neighbouring tiles."""
    return n_tokens + GRID_GAP


def tile_weights(weights: np.ndarray) -> np.ndarray:
    """The (layers, heads, n_queries, n_keys) maps laid out as one array, NaN between the tiles.

    weights[l, h, i, j] lands at row l·(n_queries+gap) + i, column h·(n_keys+gap) + j.
    """
    n_layers, n_heads, n_queries, n_keys = weights.shape
    row_stride, column_stride = tile_stride(n_queries), tile_stride(n_keys)
    tiles = np.full((n_layers, row_stride, n_heads, column_stride), np.nan, dtype=np.float32)  # (L, nq+gap, H, nk+gap)
    tiles[:, :n_queries, :, :n_keys] = weights.transpose(0, 2, 1, 3)  # (L, nq, H, nk): layer, query, head, key
    grid = tiles.reshape(n_layers * row_stride, n_heads * column_stride)  # (L·(nq+gap), H·(nk+gap))
    return np.ascontiguousarray(grid[: n_layers * row_stride - GRID_GAP, : n_heads * column_stride - GRID_GAP])


def hover_data(
    labels: list[str],
    n_layers: int,
    n_heads: int,
    *,
    with_tokens: bool,
    block: int = 1,
    first_layer: int = 0,
    key_labels: list[str] | None = None,
) -> np.ndarray:
    """Per cell of the tiled array: layer (1-based, counted from `first_layer`), head (1-based),
    then query and key (`key_labels`: the keys' own, when they are not the queries).

    Query and key are the tokens' labels when `with_tokens`, else their 1-based positions
    (with `block` > 1, the first position of the block a pooled cell averages).
    Gap cells hold "" or 0; they are never hovered.
    """
    key_labels = labels if key_labels is None else key_labels

    def along(names: list[str]) -> tuple[int, np.ndarray]:
        """(stride, per position within a tile and its gap: the label or the 1-based position)."""
        n = math.ceil(len(names) / block)
        position_in_tile = np.arange(tile_stride(n))  # index n is the gap after a tile
        numbers_1_based = np.where(position_in_tile < n, position_in_tile * block + 1, 0)  # (n+gap,)
        return tile_stride(n), np.array([*names, *[""] * GRID_GAP], dtype=object) if with_tokens else numbers_1_based

    row_stride, queries = along(labels)
    column_stride, keys = along(key_labels)
    rows = np.arange(n_layers * row_stride - GRID_GAP)  # (rows,)
    columns = np.arange(n_heads * column_stride - GRID_GAP)  # (cols,)
    # Positions take the smallest unsigned type that holds them: one byte each up to 255.
    longest = max(first_layer + n_layers, n_heads, len(labels), len(key_labels))
    dtype = object if with_tokens else np.min_scalar_type(longest)
    data = np.empty((rows.size, columns.size, 4), dtype=dtype)  # (rows, cols, 4)
    data[..., 0] = (rows // row_stride + first_layer + 1)[:, None]
    data[..., 1] = (columns // column_stride + 1)[None, :]
    data[..., 2] = queries[rows % row_stride][:, None]
    data[..., 3] = keys[columns % column_stride][None, :]
    return data


def heads_grid_figure(
    weights: np.ndarray,  # (layers, heads, n_queries, n_keys) softmax weights
    tokens: Sequence[str],
    *,
    key_tokens: Sequence[str] | None = None,  # the keys, when they are not the queries (cross-attention)
    selected: tuple[int, int] | None = None,  # (layer, head), 0-based, to outline
    labels: ChartLabels = ChartLabels(),
    style: ChartStyle = ChartStyle(),
    max_tile_cells: int = GRID_MAX_TILE_CELLS,
    first_layer: int = 0,  # the model's layer that weights[0] is: a slice of later layers is named as such
    tile_labels: Sequence[Sequence[str]] | None = None,  # (layers, heads) a caption per tile, e.g. its habit
) -> go.Figure:
    """All attention maps side by side, so that heads with a pattern stand out.

    Ticks read "Head 1".."Head H" and "Layer 1".."Layer L": 1-based for people, while
    `selected` and `grid_cell_to_layer_head` are 0-based like the arrays. The colour scale
    is fixed to [0, 1], so the same colour means the same weight in every tile. The hover
    names layer, head, query and key token, and the weight (see `GRID_TOKEN_HOVER_MAX_CELLS`
    for very large grids). Above `max_tile_cells` tokens, each tile averages blocks of
    `grid_block_size(n)` tokens (see `GRID_MAX_TILE_CELLS`); tile coordinates, including
    those `grid_cell_to_layer_head` takes, are then in blocks. `tile_labels` caption each
    tile in its top-left corner (`tile_label_annotations`).
    """
    font_size = style.font_size
    stack = float_array(weights, "weights", "(layers, heads, n_queries, n_keys)")  # (L, H, nq, nk)
    if key_tokens is None:
        require_square(stack, "weights")
    n_layers, n_heads, n_queries, n_keys = stack.shape
    axis = "positions" if key_tokens is None else "rows"
    ticks = labels_for(tokens, n_queries, array_name="weights", axis_name=axis, token_kind="tokens")
    key_ticks = ticks
    if key_tokens is not None:
        key_ticks = labels_for(key_tokens, n_keys, array_name="weights", axis_name="columns", token_kind="key tokens")
    block = grid_block_size(max(n_queries, n_keys), max_tile_cells)
    stack = pool_blocks(np.where(np.isfinite(stack), stack, np.float32(np.nan)), block)  # (L, H, mq, mk)
    z = tile_weights(stack)  # (rows, cols)
    with_tokens = block == 1 and z.size <= GRID_TOKEN_HOVER_MAX_CELLS
    position = "" if with_tokens else "#"
    block_note = f" (+{block - 1})" if block > 1 else ""  # a pooled cell starts there, spans `block`
    n, n_key_cells = stack.shape[-2:]  # a tile's rows and columns, in cells
    customdata = hover_data(
        ticks, n_layers, n_heads, with_tokens=with_tokens, block=block, first_layer=first_layer, key_labels=key_ticks
    )
    heatmap = go.Heatmap(
        z=z,
        colorscale=SEQUENTIAL_SCALES[style.palette],
        zmin=0.0,
        zmax=1.0,
        customdata=customdata,
        hovertemplate=(
            f"{labels.layer} %{{customdata[0]}} · {labels.head} %{{customdata[1]}}<br>"
            f"{labels.query}: {position}%{{customdata[2]}}{block_note}<br>"
            f"{labels.key}: {position}%{{customdata[3]}}{block_note}<br>"
            f"{labels.weight}: %{{z:{HOVER_VALUE_FORMAT}}}<extra></extra>"
        ),
        hoverongaps=False,  # the gaps between tiles are not cells
        colorbar=colorbar(labels.weight),
    )
    stride, column_stride = tile_stride(n), tile_stride(n_key_cells)
    tile_centre = (n - 1) / 2
    layout = base_layout("", font_size)
    layout["xaxis"] = cell_axis(
        "",
        tickmode="array",
        tickvals=[h * column_stride + (n_key_cells - 1) / 2 for h in range(n_heads)],
        ticktext=[f"{labels.head} {h + 1}" for h in range(n_heads)],
    )
    layout["yaxis"] = cell_axis(
        "",
        top_down=True,
        tickmode="array",
        tickvals=[layer * stride + tile_centre for layer in range(n_layers)],
        ticktext=[f"{labels.layer} {first_layer + layer + 1}" for layer in range(n_layers)],
        scaleanchor="x",  # square cells: an attention map is a square, not a bar
        constrain="domain",
    )
    token_margins(layout, font_size, layout["yaxis"]["ticktext"], layout["xaxis"]["ticktext"], may_slant=False)
    rows, columns = z.shape
    layout["height"] = round(min(MAX_HEIGHT, max(MIN_HEIGHT, TYPICAL_WIDTH * rows / columns + 4 * font_size)))
    if selected is not None:
        layout["shapes"] = selection_outline(selected, n, n_layers, n_heads, n_key_cells)
    if tile_labels is not None:
        layout["annotations"] = tile_label_annotations(tile_labels, n, n_layers, n_heads, font_size, n_key_cells)
    return go.Figure(data=[heatmap], layout=pinned_fonts(layout, font_size))


def tile_label_annotations(
    labels: Sequence[Sequence[str]],
    n_cells: int,
    n_layers: int,
    n_heads: int,
    font_size: float,
    n_key_cells: int | None = None,
) -> list[dict[str, object]]:
    """One caption per tile, inside its top-left corner on a light box, in the grid's cell
    coordinates (`tile_stride`): annotation k is layer k // heads, head k % heads. A tile has
    `n_cells` rows and `n_key_cells` columns (the same by default)."""
    if len(labels) != n_layers or any(len(row) != n_heads for row in labels):
        shape = (len(labels), *{len(row) for row in labels})
        raise ValueError(f"tile_labels has shape {shape}; expected one label per tile, ({n_layers}, {n_heads})")
    stride, column_stride = tile_stride(n_cells), tile_stride(n_cells if n_key_cells is None else n_key_cells)
    return [
        {
            "x": head * column_stride - 0.5,
            "y": layer * stride - 0.5,
            "xref": "x",
            "yref": "y",
            "xanchor": "left",
            "yanchor": "top",
            "text": text,
            "showarrow": False,
            "font": {"size": round(TILE_LABEL_SCALE * font_size, 1), "color": "black"},
            "bgcolor": TILE_LABEL_BACKGROUND,
        }
        for layer, row in enumerate(labels)
        for head, text in enumerate(row)
    ]


def selection_outline(
    selected: tuple[int, int], n_tokens: int, n_layers: int, n_heads: int, n_keys: int | None = None
) -> list[dict[str, object]]:
    """Rectangles around the selected tile (`n_tokens` rows, `n_keys` columns), on the cell edges."""
    layer, head = selected
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise ValueError(
            f"selected={selected!r} is out of range: layer must be in [0, {n_layers}) and head in [0, {n_heads})"
        )
    n_keys = n_tokens if n_keys is None else n_keys
    stride, column_stride = tile_stride(n_tokens), tile_stride(n_keys)
    edges = {
        "x0": head * column_stride - 0.5,
        "x1": head * column_stride + n_keys - 0.5,
        "y0": layer * stride - 0.5,
        "y1": layer * stride + n_tokens - 0.5,
    }
    return [
        {"type": "rect", "xref": "x", "yref": "y", **edges, "line": {"color": colour, "width": width}}
        for colour, width in zip(OUTLINE_COLOURS, (5, 2), strict=True)
    ]


def grid_cell_to_layer_head(
    x: float, y: float, n_tokens: int, n_layers: int, n_heads: int, n_keys: int | None = None
) -> tuple[int, int] | None:
    """The (layer, head), 0-based, of the tile under a clicked point; None in a gap or outside.

    `x` and `y` are the point's heatmap coordinates as Plotly reports them on click: the
    column and row of the cell in the tiled array (tiles of `n_tokens` rows, `n_keys` columns).
    """
    n_keys = n_tokens if n_keys is None else n_keys
    for name, count in (("n_tokens", n_tokens), ("n_keys", n_keys), ("n_layers", n_layers), ("n_heads", n_heads)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{name}={count!r} is invalid: must be a positive integer")
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    column, row = math.floor(x + 0.5), math.floor(y + 0.5)  # the cell whose centre is nearest
    if column < 0 or row < 0:
        return None
    layer, query = divmod(row, tile_stride(n_tokens))
    head, key = divmod(column, tile_stride(n_keys))
    if query >= n_tokens or key >= n_keys or layer >= n_layers or head >= n_heads:
        return None
    return layer, head
