"""The head view draws one line per weight above the threshold, carries the exact weights, and refuses mismatches."""

import json
from collections import Counter

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly import colors as px_colors

from viz import ChartLabels, ChartStyle
from viz.head_view import WEIGHT_LEVELS, head_view_figure, head_view_token_at

TOKENS = ["the", "cat", "saw", "the", "dog", "."]  # "the" twice: must stay two rows
HOSTILE = ["<br>", "<script>alert(1)</script>", "a&b", "<b>bold</b>", '"quoted"']
MIN_WEIGHT = 0.01
FADED = 0.08  # the opacity the brief asks for, written here rather than read from the module


def _weights(rng: np.random.Generator, heads: int, n: int, sharpness: float = 2.5) -> np.ndarray:
    logits = sharpness * rng.standard_normal((heads, n, n))  # sharp enough that some weights are below 1 %
    exps = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exps / exps.sum(axis=-1, keepdims=True)).astype(np.float32)  # (H, n, n), rows sum to 1


def _escaped(tokens: list[str]) -> list[str]:
    return [token.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for token in tokens]


def _legend(fig: go.Figure) -> dict[str, int]:
    """legendgroup -> 0-based head, read from the legend entries' names ("Head 3" is head 2)."""
    entries = [trace for trace in fig.data if trace.showlegend is not False and trace.legendgroup]
    return {trace.legendgroup: int(trace.name.split()[-1]) - 1 for trace in entries}


def _lines(fig: go.Figure) -> dict[tuple[int, int, int], tuple[float, float]]:
    """(head, query, key) -> (width, opacity) of every drawn line; asserts none is drawn twice."""
    heads = _legend(fig)
    seen: Counter = Counter()
    styles = {}
    for trace in fig.data:
        if trace.mode != "lines" or trace.showlegend is not False:
            continue
        x = np.asarray(trace.x, dtype=np.float64).reshape(-1, 3)  # (lines, 3): start, end, break
        y = np.asarray(trace.y, dtype=np.float64).reshape(-1, 3)
        assert np.array_equal(x[:, :2], np.tile([0.0, 1.0], (len(x), 1)))  # query column to key column
        assert np.isnan(x[:, 2]).all() and np.isnan(y[:, 2]).all()
        offsets = y[:, :2] - np.rint(y[:, :2])  # (lines, 2): each head's lane beside the token
        assert (np.abs(offsets) <= 0.2 + 1e-6).all() and np.allclose(offsets[:, 0], offsets[:, 1], atol=1e-4)
        for query, key in np.rint(y[:, :2]).astype(int).tolist():
            line = (heads[trace.legendgroup], query, key)
            seen[line] += 1
            styles[line] = (trace.line.width, trace.opacity)
    assert all(count == 1 for count in seen.values()), [line for line, count in seen.items() if count > 1]
    return styles


def _carried(fig: go.Figure) -> np.ndarray:
    """(lines, 4) rows of (head, query, key, weight) from every trace that carries them."""
    rows = [np.asarray(t.customdata) for t in fig.data if t.customdata is not None and np.ndim(t.customdata) == 2]
    return np.concatenate(rows) if rows else np.empty((0, 4))


def _label_columns(fig: go.Figure) -> list[go.Scatter]:
    columns = [trace for trace in fig.data if trace.mode == "markers+text"]
    assert len(columns) == 2
    return sorted(columns, key=lambda trace: trace.x[0])  # queries (x = 0), then keys (x = 1)


def _expected(weights: np.ndarray, min_weight: float = MIN_WEIGHT) -> set[tuple[int, int, int]]:
    return {(h, i, j) for h, i, j in zip(*np.nonzero(weights >= min_weight), strict=True)}


def test_every_line_above_the_threshold_is_drawn_once_and_none_below():
    weights = _weights(np.random.default_rng(0), 3, 6)
    assert (weights < MIN_WEIGHT).any() and (weights >= MIN_WEIGHT).any()  # the test data has both kinds
    lines = _lines(head_view_figure(weights, TOKENS, min_weight=MIN_WEIGHT))
    assert set(lines) == _expected(weights)


def test_the_figure_carries_the_exact_weight_of_every_drawn_line():
    weights = _weights(np.random.default_rng(1), 4, 6)
    carried = _carried(head_view_figure(weights, TOKENS))
    triples = [tuple(int(v) for v in row[:3]) for row in carried]
    assert len(triples) == len(set(triples))
    assert set(triples) == _expected(weights)
    for (h, i, j), weight in zip(triples, carried[:, 3], strict=True):
        assert weight == weights[h, i, j]  # exact, not approximately


def test_min_weight_zero_draws_all_n_squared_lines_per_head():
    weights = _weights(np.random.default_rng(2), 2, 6)
    weights[0, 0] = [1, 0, 0, 0, 0, 0]  # zeros (a masked row) are drawn too, at the faintest strength
    assert len(_lines(head_view_figure(weights, TOKENS, min_weight=0.0))) == 2 * 6 * 6


def test_width_and_opacity_grow_with_the_weight():
    weights = _weights(np.random.default_rng(3), 2, 6)
    lines = _lines(head_view_figure(weights, TOKENS))
    for head in range(2):
        ordered = sorted((line for line in lines if line[0] == head), key=lambda line: weights[line])
        widths = [lines[line][0] for line in ordered]
        opacities = [lines[line][1] for line in ordered]
        assert widths == sorted(widths) and opacities == sorted(opacities)
        assert widths[0] < widths[-1] and opacities[0] < opacities[-1]


@pytest.mark.parametrize("selected", [None, 3])
def test_the_number_of_traces_does_not_grow_with_the_number_of_lines(selected):
    heads, n = 4, 40
    weights = _weights(np.random.default_rng(4), heads, n, sharpness=1.0)
    fig = head_view_figure(weights, [f"t{i}" for i in range(n)], selected=selected)
    assert len(_lines(fig)) > 1000
    # Per head: a legend entry, faded and strong lines per strength, one trace of hover markers.
    assert len(fig.data) <= heads * (2 * WEIGHT_LEVELS + 2) + 2


def test_one_legend_entry_and_one_colour_per_head():
    weights = _weights(np.random.default_rng(5), 12, 4)
    fig = head_view_figure(weights, TOKENS[:4], labels=ChartLabels(head="Kopf"))
    entries = [trace for trace in fig.data if trace.showlegend is not False]
    assert [trace.name for trace in entries] == [f"Kopf {h}" for h in range(1, 13)]
    colours = {}
    for trace in fig.data:
        if trace.legendgroup:
            colour = trace.line.color if trace.mode == "lines" else trace.marker.color
            colours.setdefault(trace.legendgroup, set()).add(colour)
    assert all(len(found) == 1 for found in colours.values())
    per_head = [colours[trace.legendgroup].pop() for trace in entries]
    assert len(set(per_head[:10])) == 10  # the default set has 10 colours, then it repeats
    safe = head_view_figure(weights, TOKENS[:4], style=ChartStyle(palette="colorblind"))
    safe_colours = [trace.line.color for trace in safe.data if trace.showlegend is not False]
    assert set(safe_colours) <= set(px_colors.qualitative.Safe)
    assert safe_colours != per_head


def test_token_labels_are_the_escaped_tokens_in_two_columns_top_down():
    weights = _weights(np.random.default_rng(6), 2, len(HOSTILE))
    fig = head_view_figure(weights, HOSTILE)
    queries, keys = _label_columns(fig)
    for column, x in ((queries, 0.0), (keys, 1.0)):
        assert list(column.text) == _escaped(HOSTILE)
        assert np.array_equal(np.asarray(column.x), np.full(len(HOSTILE), x))
        assert np.array_equal(np.asarray(column.y), np.arange(len(HOSTILE)))
    assert "&lt;br&gt;" in queries.text and "<br>" not in queries.text
    assert queries.textposition.endswith("left") and keys.textposition.endswith("right")
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # reversed: token 0 at the top
    hover_texts = [text for trace in fig.data if trace.mode == "markers" for text in trace.text]
    assert hover_texts and not any("<script>" in text or "<b>" in text for text in hover_texts)


def test_heads_draws_only_those_heads_in_their_own_colours():
    weights = _weights(np.random.default_rng(7), 3, 6)
    full = head_view_figure(weights, TOKENS)
    only = head_view_figure(weights, TOKENS, heads=[1])
    assert [trace.name for trace in only.data if trace.showlegend is not False] == ["Head 2"]
    assert {head for head, _, _ in _lines(only)} == {1}
    assert set(np.asarray(_carried(only)[:, 0]).tolist()) == {1.0}
    assert set(_lines(only)) == {(1, i, j) for _, i, j in _expected(weights[1:2])}
    colour = {trace.name: trace.line.color for trace in full.data if trace.showlegend is not False}["Head 2"]
    assert all(trace.line.color == colour for trace in only.data if trace.mode == "lines")


def test_selected_fades_exactly_the_lines_of_other_queries():
    weights = _weights(np.random.default_rng(8), 3, 6)
    plain = _lines(head_view_figure(weights, TOKENS))
    fig = head_view_figure(weights, TOKENS, selected=2)
    chosen = _lines(fig)
    assert set(chosen) == set(plain)
    for line, (width, opacity) in chosen.items():
        assert width == plain[line][0]
        if line[1] == 2:
            assert opacity == plain[line][1] and opacity > 2 * FADED
        else:
            assert opacity == pytest.approx(FADED)
    queries, _ = _label_columns(fig)
    sizes = np.asarray(queries.marker.size)
    assert sizes[2] > sizes[0] and np.all(np.delete(sizes, 2) == sizes[0])


def test_head_view_token_at_round_trips_through_the_label_columns():
    fig = head_view_figure(_weights(np.random.default_rng(9), 2, 6), TOKENS)
    for curve, trace in enumerate(fig.data):
        if trace.mode != "markers+text":
            continue
        for index in range(len(TOKENS)):
            point = {
                "curve_number": curve,
                "point_index": index,
                "x": float(trace.x[index]),
                "y": float(trace.y[index]),
                "customdata": trace.customdata[index],
            }
            assert head_view_token_at(point) == index
            assert head_view_token_at(json.loads(json.dumps({**point, "customdata": int(index)}))) == index
    hover = next(trace for trace in fig.data if trace.mode == "markers")
    assert head_view_token_at({"curve_number": 0, "point_index": 0, "customdata": list(hover.customdata[0])}) is None
    assert head_view_token_at({"curve_number": 0, "point_index": 0, "x": 0.0, "y": 1.0}) is None
    assert head_view_token_at({"customdata": 2.0}) == 2
    for bad in (True, -1, 1.5, float("nan"), "2", None):
        assert head_view_token_at({"customdata": bad}) is None


def test_the_figure_is_a_fixed_diagram_and_serialises():
    n = 20
    fig = head_view_figure(_weights(np.random.default_rng(10), 2, n), [f"t{i}" for i in range(n)], selected=0)
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.fixedrange is True and axis.visible is False and axis.showgrid is False
    assert fig.layout.height >= 28 * n
    assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)"
    spec = json.loads(fig.to_json())
    line = next(trace for trace in spec["data"] if trace.get("mode") == "lines" and trace.get("showlegend") is False)
    assert isinstance(line["y"], dict) and "bdata" in line["y"]  # typed arrays, not lists of numbers


@pytest.mark.parametrize(
    ("weights", "tokens", "options", "message"),
    [
        (np.full((5, 5), 0.2), TOKENS[:5], {}, r"3-D .* shape \(5, 5\)"),
        (np.full((2, 5, 4), 0.25), TOKENS[:5], {}, "5 rows and 4 columns"),
        (np.full((2, 5, 5), 0.2), TOKENS[:4], {}, "weights has 5 keys but 4 tokens were given"),
        (np.full((3, 4, 4), 0.25), TOKENS[:4], {"heads": [3]}, "head 3 is out of range: weights has 3 heads"),
        (np.full((3, 4, 4), 0.25), TOKENS[:4], {"heads": [-1]}, "head -1 is out of range"),
        (np.full((3, 4, 4), 0.25), TOKENS[:4], {"heads": [0, 0]}, "twice"),
        (np.full((3, 4, 4), 0.25), TOKENS[:4], {"selected": 4}, "selected=4 is out of range: there are 4 tokens"),
        (np.full((3, 4, 4), 0.25), TOKENS[:4], {"min_weight": 1.0}, r"min_weight=1.0 .* \[0, 1\)"),
        (np.full((3, 4, 4), 0.25), TOKENS[:4], {"min_weight": -0.1}, "min_weight=-0.1"),
        (np.full((1, 2, 2), 1.5), TOKENS[:2], {}, "from 1.5 to 1.5"),
        (np.full((1, 2, 2), np.nan), TOKENS[:2], {}, "4 NaN or infinite values"),
    ],
)
def test_bad_input_is_refused_with_the_numbers_that_disagree(weights, tokens, options, message):
    with pytest.raises(ValueError, match=message):
        head_view_figure(weights, tokens, **options)


def test_heads_fan_out_so_no_head_hides_another():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((4, 3, 3))
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    fig = head_view_figure(weights, ["a", "b", "c"])
    lanes = {}
    for trace in fig.data:
        if trace.mode == "lines" and trace.showlegend is False:
            y = np.asarray(trace.y, dtype=np.float64).reshape(-1, 3)
            lanes.setdefault(trace.legendgroup, set()).update(np.round(y[:, 0] - np.rint(y[:, 0]), 6).tolist())
    assert all(len(offsets) == 1 for offsets in lanes.values())  # one lane per head
    assert len({next(iter(offsets)) for offsets in lanes.values()}) == 4  # and no two heads share one
