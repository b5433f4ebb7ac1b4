"""The one-head heatmaps draw exactly the numbers and tokens they are given, and refuse mismatches."""

import html
import itertools

import numpy as np
import plotly.graph_objects as go
import pytest

from viz import (
    MASK_MARK,
    MAX_CELLS_PER_AXIS_FOR_VALUES,
    ChartLabels,
    ChartStyle,
    matrix_figure,
    qkv_figure,
    token_labels,
    vectors_figure,
)

TOKENS = ["the", "cat", "saw", "the", "dog"]  # "the" twice: must stay two rows
HOSTILE = ["<br>", "<script>alert(1)</script>", "a&b", "<b>bold</b>", '"quoted"']


def _heatmap(fig: go.Figure) -> go.Heatmap:
    assert len(fig.data) == 1, "one trace per figure: a second one costs a rerun's worth of time"
    assert isinstance(fig.data[0], go.Heatmap)
    return fig.data[0]


def _weights(rng: np.random.Generator, n_queries: int, n_keys: int) -> np.ndarray:
    logits = rng.standard_normal((n_queries, n_keys))
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exps / exps.sum(axis=1, keepdims=True)).astype(np.float32)  # (n_q, n_k), rows sum to 1


def _escaped(tokens: list[str]) -> list[str]:
    return [token.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for token in tokens]


# --- matrix_figure ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["scores", "weights"])
def test_matrix_z_is_the_input_unchanged(kind):
    rng = np.random.default_rng(0)
    values = _weights(rng, 5, 5) if kind == "weights" else rng.standard_normal((5, 5)).astype(np.float32)
    z = np.asarray(_heatmap(matrix_figure(values, TOKENS, TOKENS, kind=kind)).z)
    assert z.dtype == np.float32
    assert np.array_equal(z, values)


def test_matrix_z_travels_as_a_typed_array_not_a_list():
    values = _weights(np.random.default_rng(0), 5, 5)
    spec = matrix_figure(values, TOKENS, TOKENS, kind="weights").to_plotly_json()["data"][0]["z"]
    assert isinstance(spec, dict) and spec["dtype"] == "f4" and "bdata" in spec


def test_float64_input_is_drawn_as_float32():
    values = np.random.default_rng(0).standard_normal((5, 5))
    z = np.asarray(_heatmap(matrix_figure(values, TOKENS, TOKENS, kind="scores")).z)
    assert z.dtype == np.float32
    assert np.array_equal(z, values.astype(np.float32))


def test_rows_are_queries_top_down_and_columns_are_keys():
    queries, keys = ["q0", "q1", "q2"], ["k0", "k1", "k2", "k3"]
    values = _weights(np.random.default_rng(0), 3, 4)
    fig = matrix_figure(values, queries, keys, kind="weights", labels=ChartLabels(query="Abfrage", key="Schlüssel"))
    assert np.asarray(_heatmap(fig).z).shape == (3, 4)
    assert fig.layout.yaxis.autorange == "reversed"  # row 0, the first query, at the top
    assert fig.layout.yaxis.title.text == "Abfrage"
    assert fig.layout.xaxis.title.text == "Schlüssel"
    assert list(fig.layout.yaxis.ticktext) == queries
    assert list(fig.layout.xaxis.ticktext) == keys


def test_repeated_tokens_keep_one_numeric_tick_each():
    fig = matrix_figure(_weights(np.random.default_rng(0), 5, 5), TOKENS, TOKENS, kind="weights")
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.type != "category"
        assert list(axis.tickvals) == [0, 1, 2, 3, 4]
        assert list(axis.ticktext) == TOKENS


def test_markup_in_tokens_is_escaped_in_ticks_and_hover():
    rng = np.random.default_rng(0)
    fig = matrix_figure(_weights(rng, 5, 5), HOSTILE, HOSTILE, kind="weights")
    heatmap = _heatmap(fig)
    expected = _escaped(HOSTILE)
    assert list(fig.layout.xaxis.ticktext) == expected
    assert list(fig.layout.yaxis.ticktext) == expected
    assert "&lt;br&gt;" in expected and "&lt;script&gt;alert(1)&lt;/script&gt;" in expected
    assert '"quoted"' in expected  # Plotly would print &quot; literally
    customdata = np.asarray(heatmap.customdata)
    texts = [str(label) for label in customdata.ravel()] + list(fig.layout.xaxis.ticktext)
    assert not any("<" in text or ">" in text for text in texts)
    assert all(html.unescape(label) == token for label, token in zip(expected, HOSTILE, strict=True))


def test_hover_names_query_token_key_token_and_value():
    queries, keys = ["a", "b"], ["x", "y", "z"]
    fig = matrix_figure(_weights(np.random.default_rng(0), 2, 3), queries, keys, kind="weights", value_label="Gewicht")
    heatmap = _heatmap(fig)
    customdata = np.asarray(heatmap.customdata)
    assert customdata.shape == (2, 3, 2)
    for i, query in enumerate(queries):
        for j, key in enumerate(keys):
            assert tuple(customdata[i, j]) == (query, key)
    for piece in ("Query", "Key", "Gewicht", "%{customdata[0]}", "%{customdata[1]}", "%{z:"):
        assert piece in heatmap.hovertemplate


def test_weights_have_a_fixed_zero_to_one_sequential_scale():
    heatmap = _heatmap(matrix_figure(_weights(np.random.default_rng(0), 5, 5) / 4, TOKENS, TOKENS, kind="weights"))
    assert (heatmap.zmin, heatmap.zmax) == (0, 1)
    assert heatmap.zmid is None
    assert heatmap.colorscale == go.Heatmap(colorscale="Blues").colorscale


def test_scores_are_diverging_around_zero():
    values = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32) + 3
    heatmap = _heatmap(matrix_figure(values, TOKENS, TOKENS, kind="scores"))
    assert heatmap.zmid == 0
    assert heatmap.zmin is None and heatmap.zmax is None  # Plotly then spans [-max|z|, max|z|]
    assert heatmap.colorscale == go.Heatmap(colorscale="RdBu_r").colorscale


def test_colorblind_palette_changes_both_scales():
    rng = np.random.default_rng(0)
    weights = _heatmap(
        matrix_figure(_weights(rng, 5, 5), TOKENS, TOKENS, kind="weights", style=ChartStyle(palette="colorblind"))
    )
    scores = _heatmap(
        matrix_figure(
            rng.standard_normal((5, 5)), TOKENS, TOKENS, kind="scores", style=ChartStyle(palette="colorblind")
        )
    )
    assert weights.colorscale == go.Heatmap(colorscale="cividis").colorscale
    assert scores.colorscale == go.Heatmap(colorscale="PuOr_r").colorscale


def test_font_size_and_title_reach_the_layout():
    fig = matrix_figure(
        _weights(np.random.default_rng(0), 5, 5),
        TOKENS,
        TOKENS,
        kind="weights",
        title="softmax",
        style=ChartStyle(font_size=22),
    )
    assert fig.layout.font.size == 22
    assert fig.layout.title.text == "softmax"
    assert fig.layout.margin.r < 40


def test_margins_grow_with_the_labels_instead_of_plotly_measuring_them():
    short = matrix_figure(np.eye(3, dtype=np.float32), ["a", "b", "c"], ["a", "b", "c"], kind="weights")
    long_tokens = ["internationalization", "b", "我爱你我爱你"]
    long = matrix_figure(np.eye(3, dtype=np.float32), long_tokens, long_tokens, kind="weights")
    assert not short.layout.xaxis.automargin and not short.layout.yaxis.automargin
    assert long.layout.margin.l > short.layout.margin.l + 100  # 20 Latin letters need room
    assert long.layout.margin.b > short.layout.margin.b
    assert long.layout.xaxis.tickangle == -45 and short.layout.xaxis.tickangle is None
    cjk = matrix_figure(np.eye(1, dtype=np.float32), ["我爱你我爱你"], ["x"], kind="weights")
    latin = matrix_figure(np.eye(1, dtype=np.float32), ["abcdef"], ["x"], kind="weights")
    assert cjk.layout.margin.l > latin.layout.margin.l  # wide characters take a full em


def test_qkv_figure_puts_three_panels_on_one_symmetric_shared_scale():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3))
    v[2, 1] = -7.5  # the largest magnitude sets the shared range
    fig = qkv_figure(q, k, v, TOKENS, title="L1H1")
    assert len(fig.data) == 3
    for trace, expected, axis in zip(fig.data, (q, k, v), ("x", "x2", "x3"), strict=True):
        assert np.array_equal(np.asarray(trace.z), expected)
        assert trace.coloraxis == "coloraxis" and trace.xaxis == axis and trace.yaxis == "y"
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-7.5, 7.5)
    assert list(fig.layout.yaxis.ticktext) == token_labels(TOKENS)
    domains = [fig.layout.xaxis.domain, fig.layout.xaxis2.domain, fig.layout.xaxis3.domain]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(domains))  # side by side, apart
    assert [fig.layout[f"xaxis{s}"].title.text.split(" ")[0] for s in ("", "2", "3")] == ["Q", "K", "V"]


def test_qkv_figure_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"same shape.*K \(5, 3\)"):
        qkv_figure(np.zeros((5, 4)), np.zeros((5, 3)), np.zeros((5, 4)), TOKENS)


def test_minus_infinity_becomes_a_gap_and_masked_cells_are_marked():
    rng = np.random.default_rng(0)
    n = 5
    allowed = np.tril(np.ones((n, n), dtype=bool))  # causal: query i sees keys 0..i
    scaled = rng.standard_normal((n, n)).astype(np.float32)
    scaled[~allowed] = -np.inf
    heatmap = _heatmap(matrix_figure(scaled, TOKENS, TOKENS, kind="scores", mask=allowed))
    z = np.asarray(heatmap.z)
    assert np.isnan(z[~allowed]).all()
    assert np.array_equal(z[allowed], scaled[allowed])
    texts = np.asarray(heatmap.text)
    assert (texts[~allowed] == MASK_MARK).all()
    assert (texts[allowed] != MASK_MARK).all()
    assert heatmap.hoverongaps is False  # Plotly would say "NaN" over a masked cell


def test_minus_infinity_is_marked_even_without_a_mask():
    scaled = np.zeros((3, 3), dtype=np.float32)
    scaled[0, 2] = -np.inf
    heatmap = _heatmap(matrix_figure(scaled, ["a", "b", "c"], ["a", "b", "c"], kind="scores"))
    texts = np.asarray(heatmap.text)
    assert texts[0, 2] == MASK_MARK
    assert np.isnan(np.asarray(heatmap.z)[0, 2])
    assert (np.delete(texts.ravel(), 2) != MASK_MARK).all()


def test_weights_scale_can_end_at_a_smaller_top_for_contrast():
    weights = np.full((4, 4), 0.25, dtype=np.float32)
    heatmap = matrix_figure(weights, TOKENS[:4], TOKENS[:4], kind="weights", weights_max=0.25).data[0]
    assert (heatmap.zmin, heatmap.zmax) == (0, 0.25)
    for bad in (0, -0.5, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="weights_max"):
            matrix_figure(weights, TOKENS[:4], TOKENS[:4], kind="weights", weights_max=bad)


def test_masked_weights_keep_their_zero_and_get_the_mark():
    n = 4
    allowed = np.tril(np.ones((n, n), dtype=bool))
    weights = np.where(allowed, _weights(np.random.default_rng(0), n, n), 0).astype(np.float32)
    tokens = TOKENS[:n]
    heatmap = _heatmap(matrix_figure(weights, tokens, tokens, kind="weights", mask=allowed))
    assert np.array_equal(np.asarray(heatmap.z), weights)
    assert (np.asarray(heatmap.text)[~allowed] == MASK_MARK).all()


def test_masks_are_marked_on_large_matrices_too():
    n = MAX_CELLS_PER_AXIS_FOR_VALUES + 1
    allowed = np.tril(np.ones((n, n), dtype=bool))
    tokens = [f"t{i}" for i in range(n)]
    heatmap = _heatmap(
        matrix_figure(_weights(np.random.default_rng(0), n, n), tokens, tokens, kind="weights", mask=allowed)
    )
    texts = np.asarray(heatmap.text)
    assert (texts[~allowed] == MASK_MARK).all()
    assert (texts[allowed] == "").all()  # no numbers at this size, only the marks


def test_cell_values_are_printed_for_small_matrices():
    values = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32)
    heatmap = _heatmap(matrix_figure(values, TOKENS, TOKENS, kind="scores"))
    texts = np.asarray(heatmap.text)
    assert heatmap.texttemplate == "%{text}"
    for i in range(5):
        for j in range(5):
            assert float(texts[i, j]) == pytest.approx(float(values[i, j]), abs=0.005)
    assert texts[0, 0] == f"{float(values[0, 0]):.2f}"


@pytest.mark.parametrize(
    ("n", "show_values", "printed"),
    [
        (MAX_CELLS_PER_AXIS_FOR_VALUES, None, True),
        (MAX_CELLS_PER_AXIS_FOR_VALUES + 1, None, False),
        (3, False, False),
        (40, True, True),
    ],
)
def test_cell_values_switch_off_when_cells_get_small(n, show_values, printed):
    tokens = [f"t{i}" for i in range(n)]
    values = _weights(np.random.default_rng(0), n, n)
    heatmap = _heatmap(matrix_figure(values, tokens, tokens, kind="weights", show_values=show_values))
    if printed:
        assert heatmap.texttemplate == "%{text}"
        assert np.asarray(heatmap.text).shape == (n, n)
    else:
        assert heatmap.texttemplate is None and heatmap.text is None


def test_rectangular_maps_are_allowed():
    values = _weights(np.random.default_rng(0), 2, 6)
    fig = matrix_figure(values, ["a", "b"], list("uvwxyz"), kind="weights")
    assert np.array_equal(np.asarray(_heatmap(fig).z), values)


@pytest.mark.parametrize(
    ("values", "queries", "keys", "message"),
    [
        (np.zeros((5, 4)), TOKENS[:4], TOKENS[:4], "values has 5 rows but 4 query tokens were given"),
        (np.zeros((4, 5)), TOKENS[:4], TOKENS[:4], "values has 5 columns but 4 key tokens were given"),
        (np.zeros((2, 5, 5)), TOKENS, TOKENS, r"values must be 2-D \(n_queries, n_keys\), but has shape \(2, 5, 5\)"),
        (np.zeros(5), TOKENS, TOKENS, r"must be 2-D .* shape \(5,\)"),
        (np.zeros((5, 5), dtype=bool), TOKENS, TOKENS, "must hold real numbers, but has dtype bool"),
    ],
)
def test_matrix_shape_errors_name_the_numbers(values, queries, keys, message):
    with pytest.raises(ValueError, match=message):
        matrix_figure(values, queries, keys, kind="weights")


def test_bad_masks_are_refused():
    values = np.zeros((5, 5), dtype=np.float32)
    with pytest.raises(ValueError, match=r"mask has shape \(4, 4\) but values has shape \(5, 5\)"):
        matrix_figure(values, TOKENS, TOKENS, kind="scores", mask=np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"mask must be a bool array .* float"):
        matrix_figure(values, TOKENS, TOKENS, kind="scores", mask=np.zeros((5, 5)))  # additive masks mean the opposite


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="kind='logits' is invalid"):
        matrix_figure(np.zeros((5, 5)), TOKENS, TOKENS, kind="logits")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"palette": "rainbow"}, "palette='rainbow' is invalid"),
        ({"font_size": 0}, "font_size=0 is invalid"),
        ({"font_size": True}, "font_size=True is invalid"),
    ],
)
def test_bad_styles_are_refused_where_they_are_made(options, message):
    with pytest.raises(ValueError, match=message):
        ChartStyle(**options)


def test_a_sentence_passed_as_tokens_is_refused():
    with pytest.raises(TypeError, match="single string 'abc'"):
        matrix_figure(np.zeros((3, 3)), "abc", "abc", kind="weights")


# --- vectors_figure -----------------------------------------------------------------------


def test_vectors_z_is_the_input_with_tokens_as_rows_and_dimensions_as_columns():
    values = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)  # (n, d_head)
    fig = vectors_figure(values, TOKENS, labels=ChartLabels(token="Wort", dimension="Dim"))
    heatmap = _heatmap(fig)
    assert np.array_equal(np.asarray(heatmap.z), values)
    assert list(fig.layout.yaxis.tickvals) == [0, 1, 2, 3, 4]
    assert list(fig.layout.yaxis.ticktext) == TOKENS
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.yaxis.title.text == "Wort"
    assert fig.layout.xaxis.title.text == "Dim"
    assert fig.layout.xaxis.dtick == 1  # every dimension 0..7 gets its tick


def test_vectors_are_diverging_around_zero():
    values = np.random.default_rng(0).standard_normal((5, 8)) + 2
    heatmap = _heatmap(vectors_figure(values, TOKENS, style=ChartStyle(palette="colorblind")))
    assert heatmap.zmid == 0
    assert heatmap.colorscale == go.Heatmap(colorscale="PuOr_r").colorscale


def test_vectors_hover_names_the_token_of_each_row():
    values = np.random.default_rng(0).standard_normal((5, 3))
    heatmap = _heatmap(vectors_figure(values, HOSTILE, labels=ChartLabels(value="Wert")))
    customdata = np.asarray(heatmap.customdata)
    assert customdata.shape == (5, 3)
    for i, label in enumerate(_escaped(HOSTILE)):
        assert list(customdata[i]) == [label] * 3
    for piece in ("Token", "Dimension", "Wert", "%{customdata}", "%{x}", "%{z:"):
        assert piece in heatmap.hovertemplate


@pytest.mark.parametrize(("d", "printed"), [(MAX_CELLS_PER_AXIS_FOR_VALUES, True), (64, False)])
def test_vector_values_are_printed_only_when_they_fit(d, printed):
    values = np.random.default_rng(0).standard_normal((5, d)).astype(np.float32)
    heatmap = _heatmap(vectors_figure(values, TOKENS))
    if printed:
        texts = np.asarray(heatmap.text)
        assert texts[4, d - 1] == f"{float(values[4, d - 1]):.2f}"
    else:
        assert heatmap.text is None and heatmap.texttemplate is None


def test_non_finite_vector_entries_become_gaps():
    values = np.ones((2, 3), dtype=np.float32)
    values[1, 2] = np.inf
    z = np.asarray(_heatmap(vectors_figure(values, ["a", "b"])).z)
    assert np.isnan(z[1, 2]) and np.isfinite(np.delete(z.ravel(), 5)).all()


@pytest.mark.parametrize(
    ("values", "tokens", "message"),
    [
        (np.zeros((5, 8)), TOKENS[:4], "values has 5 rows but 4 tokens were given"),
        (np.zeros((4, 5, 8)), TOKENS, r"values must be 2-D \(n_tokens, d\), but has shape \(4, 5, 8\)"),
        (np.zeros(8), TOKENS, r"shape \(8,\)"),
    ],
)
def test_vectors_shape_errors_name_the_numbers(values, tokens, message):
    with pytest.raises(ValueError, match=message):
        vectors_figure(values, tokens)


def test_a_tiny_negative_prints_as_zero_not_minus_zero():
    from viz.style import cell_texts

    texts = cell_texts(np.array([[-0.001, -0.006, 0.004]], dtype=np.float32), None, show_values=True)
    assert texts.tolist() == [["0.00", "-0.01", "0.00"]]
