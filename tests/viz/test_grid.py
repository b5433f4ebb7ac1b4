"""The heads grid tiles every weight map into one heatmap, and a click finds its tile again."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest

import viz.grid
from viz import (
    GRID_GAP,
    GRID_MAX_TILE_CELLS,
    ChartLabels,
    ChartStyle,
    grid_block_size,
    grid_cell_to_layer_head,
    heads_grid_figure,
)

TOKENS = ["the", "cat", "saw", "the", "dog"]


def _stack(rng: np.random.Generator, layers: int, heads: int, n: int) -> np.ndarray:
    logits = rng.standard_normal((layers, heads, n, n))
    exps = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exps / exps.sum(axis=-1, keepdims=True)).astype(np.float32)  # (L, H, n, n)


def _heatmap(fig: go.Figure) -> go.Heatmap:
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    return fig.data[0]


def test_every_weight_lands_in_its_tile():
    layers, heads, n = 3, 4, 5
    weights = _stack(np.random.default_rng(0), layers, heads, n)
    z = np.asarray(_heatmap(heads_grid_figure(weights, TOKENS)).z)
    stride = n + GRID_GAP
    assert z.shape == (layers * stride - GRID_GAP, heads * stride - GRID_GAP)
    is_cell = np.zeros(z.shape, dtype=bool)
    for layer in range(layers):
        for head in range(heads):
            for i in range(n):
                for j in range(n):
                    row, column = layer * stride + i, head * stride + j
                    assert z[row, column] == weights[layer, head, i, j]
                    is_cell[row, column] = True
    assert np.isnan(z[~is_cell]).all()  # the gaps between tiles are empty
    assert np.isfinite(z[is_cell]).all()


def test_the_click_mapping_inverts_the_tiling_for_every_cell():
    layers, heads, n = 2, 3, 4
    weights = _stack(np.random.default_rng(1), layers, heads, n)
    z = np.asarray(_heatmap(heads_grid_figure(weights, TOKENS[:n])).z)
    for row in range(z.shape[0]):
        for column in range(z.shape[1]):
            found = grid_cell_to_layer_head(column, row, n, layers, heads)
            if np.isnan(z[row, column]):
                assert found is None, (row, column)
            else:
                layer, head = found
                i, j = row - layer * (n + GRID_GAP), column - head * (n + GRID_GAP)
                assert z[row, column] == weights[layer, head, i, j]


def test_a_click_anywhere_inside_a_cell_finds_its_tile():
    n, stride = 4, 4 + GRID_GAP
    assert grid_cell_to_layer_head(stride - 0.4, stride + n - 1 + 0.4, n, 2, 2) == (1, 1)  # first key, last query
    assert grid_cell_to_layer_head(-0.4, -0.4, n, 2, 2) == (0, 0)


@pytest.mark.parametrize(
    ("x", "y"),
    [(-1, 0), (0, -1), (4, 0), (0, 4), (10, 0), (0, 10), (float("nan"), 0), (0, float("inf"))],
)
def test_clicks_outside_the_tiles_find_nothing(x, y):
    assert grid_cell_to_layer_head(x, y, n_tokens=4, n_layers=2, n_heads=2) is None


def test_the_click_mapping_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="n_tokens=0 is invalid"):
        grid_cell_to_layer_head(0, 0, 0, 1, 1)
    with pytest.raises(ValueError, match=r"n_heads=2\.0 is invalid"):
        grid_cell_to_layer_head(0, 0, 3, 1, 2.0)


def test_ticks_name_heads_and_layers_from_one_at_each_tile_centre():
    layers, heads, n = 2, 3, 5
    fig = heads_grid_figure(
        _stack(np.random.default_rng(0), layers, heads, n), TOKENS, labels=ChartLabels(layer="层", head="头")
    )
    stride = n + GRID_GAP
    assert list(fig.layout.xaxis.ticktext) == ["头 1", "头 2", "头 3"]
    assert list(fig.layout.yaxis.ticktext) == ["层 1", "层 2"]
    assert list(fig.layout.xaxis.tickvals) == [h * stride + (n - 1) / 2 for h in range(heads)]
    assert list(fig.layout.yaxis.tickvals) == [layer * stride + (n - 1) / 2 for layer in range(layers)]
    assert fig.layout.yaxis.autorange == "reversed"  # layer 1 on top


def test_grid_has_a_fixed_zero_to_one_scale_and_no_hover_in_gaps():
    heatmap = _heatmap(
        heads_grid_figure(_stack(np.random.default_rng(0), 1, 2, 5) / 3, TOKENS, style=ChartStyle(palette="colorblind"))
    )
    assert (heatmap.zmin, heatmap.zmax) == (0, 1)
    assert heatmap.colorscale == go.Heatmap(colorscale="cividis").colorscale
    assert heatmap.hoverongaps is False


def test_hover_names_layer_head_query_and_key_tokens():
    layers, heads = 2, 2
    tokens = ["<br>", "cat", "the", "the", "a&b"]
    fig = heads_grid_figure(_stack(np.random.default_rng(0), layers, heads, 5), tokens)
    heatmap = _heatmap(fig)
    customdata = np.asarray(heatmap.customdata)
    escaped = ["&lt;br&gt;", "cat", "the", "the", "a&amp;b"]
    stride = 5 + GRID_GAP
    for layer in range(layers):
        for head in range(heads):
            for i in range(5):
                for j in range(5):
                    cell = customdata[layer * stride + i, head * stride + j]
                    assert [int(cell[0]), int(cell[1]), cell[2], cell[3]] == [
                        layer + 1,
                        head + 1,
                        escaped[i],
                        escaped[j],
                    ]
    for piece in ("Layer %{customdata[0]}", "Head %{customdata[1]}", "%{customdata[2]}", "%{customdata[3]}", "%{z:"):
        assert piece in heatmap.hovertemplate


def test_a_slice_of_later_layers_is_named_after_them():
    """One layer's strip (the step view's heads of layer 3) says layer 3, in its ticks and hover."""
    stack = _stack(np.random.default_rng(0), 4, 2, 3)
    heatmap_layout = heads_grid_figure(stack[2:3], TOKENS[:3], first_layer=2)
    assert list(heatmap_layout.layout.yaxis.ticktext) == ["Layer 3"]
    customdata = np.asarray(_heatmap(heatmap_layout).customdata)
    tiles = customdata[:3, [0, 1, 2, 4, 5, 6]]  # every cell, the gap column left out
    assert {int(cell[0]) for cell in tiles.reshape(-1, 4)} == {3}


def test_large_grids_hover_positions_from_a_compact_array(monkeypatch):
    monkeypatch.setattr(viz.grid, "GRID_TOKEN_HOVER_MAX_CELLS", 10)
    layers, heads, n = 2, 2, 3
    heatmap = _heatmap(heads_grid_figure(_stack(np.random.default_rng(0), layers, heads, n), TOKENS[:n]))
    customdata = np.asarray(heatmap.customdata)
    assert customdata.dtype == np.uint8
    stride = n + GRID_GAP
    for layer in range(layers):
        for head in range(heads):
            for i in range(n):
                for j in range(n):
                    cell = customdata[layer * stride + i, head * stride + j]
                    assert list(cell) == [layer + 1, head + 1, i + 1, j + 1]
    assert "#%{customdata[2]}" in heatmap.hovertemplate


def test_the_selected_tile_is_outlined_on_its_cell_edges():
    layers, heads, n = 2, 3, 5
    fig = heads_grid_figure(_stack(np.random.default_rng(0), layers, heads, n), TOKENS, selected=(1, 2))
    stride = n + GRID_GAP
    assert len(fig.layout.shapes) >= 1
    for shape in fig.layout.shapes:
        assert (shape.xref, shape.yref, shape.type) == ("x", "y", "rect")
        assert (min(shape.x0, shape.x1), max(shape.x0, shape.x1)) == (2 * stride - 0.5, 2 * stride + n - 0.5)
        assert (min(shape.y0, shape.y1), max(shape.y0, shape.y1)) == (stride - 0.5, stride + n - 0.5)
        assert grid_cell_to_layer_head((shape.x0 + shape.x1) / 2, (shape.y0 + shape.y1) / 2, n, layers, heads) == (1, 2)


def test_no_selection_draws_no_outline():
    fig = heads_grid_figure(_stack(np.random.default_rng(0), 1, 1, 5), TOKENS)
    assert not fig.layout.shapes


def test_each_tile_is_captioned_inside_its_top_left_corner():
    layers, heads, n = 2, 3, 5
    labels = [[f"L{layer}H{head}" for head in range(heads)] for layer in range(layers)]
    fig = heads_grid_figure(_stack(np.random.default_rng(0), layers, heads, n), TOKENS, tile_labels=labels)
    stride = n + GRID_GAP
    assert [a.text for a in fig.layout.annotations] == [label for row in labels for label in row]
    for a in fig.layout.annotations:
        layer, head = int(a.text[1]), int(a.text[3])
        assert (a.x, a.y, a.xanchor, a.yanchor) == (head * stride - 0.5, layer * stride - 0.5, "left", "top")
        assert grid_cell_to_layer_head(a.x + 0.5, a.y + 0.5, n, layers, heads) == (layer, head)  # its own tile
        assert a.showarrow is False and a.bgcolor
    assert not heads_grid_figure(_stack(np.random.default_rng(0), 1, 1, 5), TOKENS).layout.annotations
    with pytest.raises(ValueError, match=r"expected one label per tile, \(2, 3\)"):
        heads_grid_figure(_stack(np.random.default_rng(0), layers, heads, n), TOKENS, tile_labels=labels[:1])


@pytest.mark.parametrize("selected", [(2, 0), (0, 3), (-1, 0)])
def test_a_selection_outside_the_grid_is_refused(selected):
    with pytest.raises(
        ValueError, match=r"selected=.* is out of range: layer must be in \[0, 2\) and head in \[0, 3\)"
    ):
        heads_grid_figure(_stack(np.random.default_rng(0), 2, 3, 5), TOKENS, selected=selected)


@pytest.mark.parametrize(
    ("weights", "tokens", "message"),
    [
        (
            np.zeros((3, 5, 5)),
            TOKENS,
            r"weights must be 4-D \(layers, heads, n_queries, n_keys\), but has shape \(3, 5, 5\)",
        ),
        (np.zeros((1, 2, 5, 4)), TOKENS, r"weights must be square \(n, n\), but has 5 rows and 4 columns"),
        (np.zeros((1, 2, 5, 5)), TOKENS[:4], "weights has 5 positions but 4 tokens were given"),
    ],
)
def test_grid_shape_errors_name_the_numbers(weights, tokens, message):
    with pytest.raises(ValueError, match=message):
        heads_grid_figure(weights, tokens)


def test_long_sentences_are_pooled_into_block_averages():
    rng = np.random.default_rng(3)
    n = 40  # more than GRID_MAX_TILE_CELLS
    weights = rng.random((2, 3, n, n)).astype(np.float32)  # (L, H, n, n)
    block = grid_block_size(n)
    assert block == math.ceil(n / GRID_MAX_TILE_CELLS) and block > 1
    size = math.ceil(n / block)
    fig = heads_grid_figure(weights, [f"t{i}" for i in range(n)])
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    assert z.shape == (2 * (size + GRID_GAP) - GRID_GAP, 3 * (size + GRID_GAP) - GRID_GAP)
    stride = size + GRID_GAP
    for layer, head, i, j in [(0, 0, 0, 0), (1, 2, size - 1, size - 1), (1, 0, 2, size - 1)]:
        rows = slice(i * block, min((i + 1) * block, n))
        cols = slice(j * block, min((j + 1) * block, n))
        expected = weights[layer, head, rows, cols].mean()
        assert z[layer * stride + i, head * stride + j] == pytest.approx(expected, rel=1e-5)
        assert grid_cell_to_layer_head(head * stride + j, layer * stride + i, size, 2, 3) == (layer, head)
    customdata = np.asarray(fig.data[0].customdata)
    assert customdata[stride + 2, 2 * stride + 1, 2] == 2 * block + 1  # first query position of the block
    assert "(+" in fig.data[0].hovertemplate


def test_short_sentences_are_not_pooled():
    weights = np.full((1, 2, GRID_MAX_TILE_CELLS, GRID_MAX_TILE_CELLS), 0.5, dtype=np.float32)
    fig = heads_grid_figure(weights, [str(i) for i in range(GRID_MAX_TILE_CELLS)])
    assert np.asarray(fig.data[0].z).shape == (GRID_MAX_TILE_CELLS, 2 * GRID_MAX_TILE_CELLS + GRID_GAP)
