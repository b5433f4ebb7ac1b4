"""The experiment figures: saturation, score variance and the difference of two maps.

Every expected number is computed here independently and compared with what the figure
carries, so a figure that drew another array, or a reordered one, fails.
"""

import json

import numpy as np
import pytest

from viz import ChartLabels, ChartStyle
from viz.experiments import difference_figure, log_ticks, saturation_figure, variance_figure

D_KS = [4, 16, 64, 256]
TOKENS = ["the", "<br>", "cat", "the"]


def curves(seed: int = 0) -> dict[str, np.ndarray]:
    """Four distinct (4,) float32 curves, so that a swapped pair of curves is caught."""
    rng = np.random.default_rng(seed)
    return {
        "max_weight_scaled": rng.uniform(0.2, 0.4, 4).astype(np.float32),
        "max_weight_unscaled": rng.uniform(0.5, 1.0, 4).astype(np.float32),
        "entropy_scaled": rng.uniform(1.0, 1.3, 4).astype(np.float32),
        "entropy_unscaled": rng.uniform(0.0, 0.9, 4).astype(np.float32),
    }


def saturation(palette: str = "default", **changes: object):
    arrays = curves() | changes
    return saturation_figure(
        D_KS,
        arrays["max_weight_scaled"],
        arrays["max_weight_unscaled"],
        arrays["entropy_scaled"],
        arrays["entropy_unscaled"],
        float(np.log(4)),
        labels=ChartLabels(scaled="scaled", unscaled="unscaled"),
        style=ChartStyle(palette=palette),
    )


def traces_in(fig, xaxis: str) -> dict[str, object]:
    return {trace.name: trace for trace in fig.data if trace.xaxis == xaxis}


def test_saturation_panels_carry_exactly_the_measured_curves():
    expected = curves()
    fig = saturation()
    left, right = traces_in(fig, "x"), traces_in(fig, "x2")
    assert set(left) == {"scaled", "unscaled"}
    assert set(right) == {"scaled", "unscaled", "uniform"}
    np.testing.assert_array_equal(np.asarray(left["scaled"].y), expected["max_weight_scaled"])
    np.testing.assert_array_equal(np.asarray(left["unscaled"].y), expected["max_weight_unscaled"])
    np.testing.assert_array_equal(np.asarray(right["scaled"].y), expected["entropy_scaled"])
    np.testing.assert_array_equal(np.asarray(right["unscaled"].y), expected["entropy_unscaled"])
    for trace in (*left.values(), right["scaled"], right["unscaled"]):
        np.testing.assert_array_equal(np.asarray(trace.x), D_KS)
        assert ":.4f}" in trace.hovertemplate


def test_saturation_keeps_colours_and_legend_entries_consistent_across_panels():
    fig = saturation()
    left, right = traces_in(fig, "x"), traces_in(fig, "x2")
    for name in ("scaled", "unscaled"):
        assert left[name].line.color == right[name].line.color
        assert left[name].showlegend is not False
        assert right[name].showlegend is False
    assert left["scaled"].line.color != left["unscaled"].line.color
    shown = [trace.name for trace in fig.data if trace.showlegend is not False]
    assert sorted(shown) == ["scaled", "uniform", "unscaled"]


def test_saturation_axes_are_log_d_k_with_weights_fixed_to_0_1_and_a_dashed_uniform_line():
    fig = saturation()
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):
        assert axis.type == "log"
        assert list(axis.tickvals) == D_KS
        assert list(axis.ticktext) == ["4", "16", "64", "256"]
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    uniform = traces_in(fig, "x2")["uniform"]
    assert uniform.line.dash == "dash"
    np.testing.assert_allclose(np.asarray(uniform.y, dtype=np.float64), np.log(4), rtol=1e-6)
    assert list(uniform.x) == [D_KS[0], D_KS[-1]]


def test_saturation_palette_changes_the_line_colours():
    default, colorblind = saturation("default"), saturation("colorblind")
    assert default.data[0].line.color != colorblind.data[0].line.color


@pytest.mark.parametrize("name", ["max_weight_scaled", "max_weight_unscaled", "entropy_scaled", "entropy_unscaled"])
def test_saturation_rejects_a_curve_of_the_wrong_length(name):
    with pytest.raises(ValueError, match=f"{name} has 3 values but 4 d_k values were given"):
        saturation(**{name: np.zeros(3, dtype=np.float32)})


def test_saturation_rejects_bad_d_ks_and_uniform_entropy():
    arrays = list(curves().values())
    with pytest.raises(ValueError, match="d_k=0 is invalid"):
        saturation_figure([0, 16, 64, 256], *arrays, 1.0)
    with pytest.raises(ValueError, match="16 follows 64"):
        saturation_figure([4, 64, 16, 256], *arrays, 1.0)
    with pytest.raises(ValueError, match=r"uniform_entropy=-1\.0"):
        saturation_figure(D_KS, *arrays, -1.0)


def test_variance_reference_is_proportional_to_d_k_through_the_first_point():
    variance = np.array([3.9, 17.0, 61.0, 260.0], dtype=np.float32)
    fig = variance_figure(D_KS, variance, labels=ChartLabels(score_variance="var", proportional_to_d_k="ref"))
    traces = {trace.name: trace for trace in fig.data}
    np.testing.assert_array_equal(np.asarray(traces["var"].y), variance)
    reference = np.asarray(traces["ref"].y, dtype=np.float64)
    np.testing.assert_allclose(reference, 3.9 * np.array(D_KS) / 4, rtol=1e-6)
    assert reference[0] == pytest.approx(float(variance[0]), rel=1e-7)
    ratios = reference / np.array(D_KS)
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)
    assert traces["ref"].line.dash == "dash"
    assert traces["var"].mode == "lines+markers"
    assert (fig.layout.xaxis.type, fig.layout.yaxis.type) == ("log", "log")
    assert list(fig.layout.xaxis.tickvals) == D_KS


def test_variance_axis_labels_each_tick_in_full_so_they_read_in_order():
    variance = np.array([3.9, 17.0, 61.0, 260.0], dtype=np.float32)
    axis = variance_figure(D_KS, variance).layout.yaxis
    values, texts = list(axis.tickvals), list(axis.ticktext)
    assert values == [5, 10, 20, 50, 100, 200]
    assert [float(text) for text in texts] == values  # "200", never a bare "2" above "100"
    assert values == sorted(values)


@pytest.mark.parametrize(("low", "high"), [(0.5, 200.0), (1e-3, 1e6), (3.0, 4.0), (7.0, 7.0)])
def test_log_ticks_stay_few_in_range_and_in_order(low: float, high: float):
    ticks = log_ticks(low, high)
    assert 1 <= len(ticks) <= 8 and ticks == sorted(ticks)
    assert all(low / 1.2 <= tick <= high * 1.2 for tick in ticks)


def test_variance_rejects_wrong_length_and_values_a_log_axis_cannot_show():
    with pytest.raises(ValueError, match="score_variance has 2 values but 4 d_k values were given"):
        variance_figure(D_KS, np.ones(2))
    with pytest.raises(ValueError, match=r"score_variance\[1\]=0.0 is invalid"):
        variance_figure(D_KS, np.array([1.0, 0.0, 2.0, 3.0]))


def maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((4, 4)).astype(np.float32)  # (n, n)
    b = rng.standard_normal((4, 4)).astype(np.float32)  # (n, n)
    return a, b


def test_difference_is_b_minus_a_on_a_symmetric_range_centred_on_zero():
    a, b = maps()
    fig = difference_figure(a, b, TOKENS, TOKENS)
    heatmap = fig.data[0]
    expected = b - a  # (n, n), computed here
    np.testing.assert_array_equal(np.asarray(heatmap.z), expected)
    largest = float(np.abs(expected).max())
    assert heatmap.zmid == 0
    assert heatmap.zmin == pytest.approx(-largest)
    assert heatmap.zmax == pytest.approx(largest)
    assert fig.layout.yaxis.autorange == "reversed"  # first query at the top
    customdata = np.asarray(heatmap.customdata, dtype=object)
    assert customdata[1, 2, 0] == "&lt;br&gt;" and customdata[1, 2, 1] == "cat"
    assert customdata[1, 2, 2] == pytest.approx(float(a[1, 2]))
    assert customdata[1, 2, 3] == pytest.approx(float(b[1, 2]))
    for text in ("customdata[2]", "customdata[3]", "%{z:.4f}"):
        assert text in heatmap.hovertemplate


def test_difference_escapes_tokens_and_prints_values_only_when_small():
    a, b = maps()
    fig = difference_figure(a, b, TOKENS, TOKENS)
    assert list(fig.layout.xaxis.ticktext) == ["the", "&lt;br&gt;", "cat", "the"]
    assert list(fig.layout.yaxis.ticktext) == ["the", "&lt;br&gt;", "cat", "the"]
    assert np.asarray(fig.data[0].text)[0, 1] == f"{float((b - a)[0, 1]):.2f}"
    big = np.zeros((30, 30), dtype=np.float32)
    tokens = [f"t{i}" for i in range(30)]
    assert difference_figure(big, big + 1, tokens, tokens).data[0].text is None


def test_an_all_zero_difference_gets_a_tiny_symmetric_range():
    a, _ = maps()
    heatmap = difference_figure(a, a.copy(), TOKENS, TOKENS).data[0]
    assert not np.asarray(heatmap.z).any()
    assert (heatmap.zmin, heatmap.zmax) == (-1e-9, 1e-9)


def test_masked_cells_are_gaps_and_do_not_set_the_range():
    a, b = maps()
    a[0, 3] = b[0, 3] = -np.inf
    b[2, 0] = -np.inf
    heatmap = difference_figure(a, b, TOKENS, TOKENS).data[0]
    z = np.asarray(heatmap.z)
    assert np.isnan(z[0, 3]) and np.isnan(z[2, 0])
    assert np.asarray(heatmap.text)[0, 3] == "×"
    finite = np.isfinite(a) & np.isfinite(b)
    assert heatmap.zmax == pytest.approx(float(np.abs(b[finite] - a[finite]).max()))


def test_difference_rejects_mismatched_shapes_and_tokens():
    a, b = maps()
    with pytest.raises(ValueError, match=r"a has shape \(4, 4\) but b has shape \(3, 3\)"):
        difference_figure(a, b[:3, :3], TOKENS, TOKENS)
    with pytest.raises(ValueError, match="4 rows but 3 query tokens"):
        difference_figure(a, b, TOKENS[:3], TOKENS)
    with pytest.raises(ValueError, match="4 columns but 5 key tokens"):
        difference_figure(a, b, TOKENS, [*TOKENS, "x"])


def test_difference_palette_changes_the_colourscale():
    a, b = maps()
    default = difference_figure(a, b, TOKENS, TOKENS).data[0].colorscale
    colorblind = difference_figure(a, b, TOKENS, TOKENS, style=ChartStyle(palette="colorblind")).data[0].colorscale
    assert default != colorblind
    with pytest.raises(ValueError, match="palette='grey' is invalid"):
        difference_figure(a, b, TOKENS, TOKENS, style=ChartStyle(palette="grey"))


def test_every_figure_serialises_to_json():
    a, b = maps()
    a[0, 0] = -np.inf
    figures = [
        saturation(),
        variance_figure(D_KS, np.array(D_KS, dtype=np.float32)),
        difference_figure(a, b, TOKENS, TOKENS, title="<b>diff</b>"),
    ]
    for fig in figures:
        assert json.loads(fig.to_json())["data"]


def test_difference_min_range_keeps_rounding_pale_and_never_hides_a_larger_difference():
    a = np.full((2, 2), 0.5, dtype=np.float32)
    b = a + np.float32(1e-7)
    trace = difference_figure(a, b, ["x", "y"], ["x", "y"], min_range=0.01).data[0]
    assert (trace.zmin, trace.zmax) == (-0.01, 0.01)
    b[0, 1] = 0.9
    trace = difference_figure(a, b, ["x", "y"], ["x", "y"], min_range=0.01).data[0]
    assert trace.zmax == pytest.approx(0.4, abs=1e-6)
    assert trace.zmin == -trace.zmax
    with pytest.raises(ValueError, match="min_range"):
        difference_figure(a, b, ["x", "y"], ["x", "y"], min_range=0.0)
