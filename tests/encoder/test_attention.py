"""The five attention steps against the formula and against torch.nn.MultiheadAttention."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from encoder import Encoder, EncoderConfig, attention_mask, from_torch, scaled_dot_product_attention


def _reference_layer(d_model: int, heads: int, norm_first: bool = False) -> nn.TransformerEncoderLayer:
    layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, batch_first=True, norm_first=norm_first)
    with torch.no_grad():  # non-zero biases, so a transposed or misplaced bias would show
        layer.self_attn.in_proj_bias.normal_()
        layer.self_attn.out_proj.bias.normal_()
    return layer.eval()


@pytest.mark.parametrize(("n", "d_model", "heads"), [(3, 8, 2), (7, 64, 4), (16, 96, 12), (5, 30, 1)])
@pytest.mark.parametrize("norm_first", [False, True])
def test_per_head_weights_and_output_match_multihead_attention(n, d_model, heads, norm_first):
    layer = _reference_layer(d_model, heads, norm_first)
    x = torch.randn(n, d_model)
    trace = from_torch(layer).trace(x).layers[0]
    with torch.no_grad():
        attn_in = layer.norm1(x) if norm_first else x
        out, weights = layer.self_attn(
            attn_in[None], attn_in[None], attn_in[None], need_weights=True, average_attn_weights=False
        )
    assert trace.weights.shape == (heads, n, n)
    torch.testing.assert_close(trace.weights, weights[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(trace.attn_output, out[0], atol=1e-5, rtol=0)


def test_q_k_v_are_the_input_times_each_projection_split_into_heads():
    d_model, heads, n = 12, 3, 4
    layer = _reference_layer(d_model, heads)
    x = torch.randn(n, d_model)
    trace = from_torch(layer).trace(x).layers[0]
    weight, bias = layer.self_attn.in_proj_weight.detach(), layer.self_attn.in_proj_bias.detach()
    d_head = d_model // heads
    for which, projected in enumerate((trace.q, trace.k, trace.v)):
        rows = slice(which * d_model, (which + 1) * d_model)
        full = x @ weight[rows].T + bias[rows]  # (n, d_model)
        for h in range(heads):
            torch.testing.assert_close(projected[h], full[:, h * d_head : (h + 1) * d_head], atol=1e-6, rtol=0)


def test_each_step_follows_the_formula():
    trace = Encoder().trace_text("the cat saw the dog because it was hungry")
    for layer in trace.layers:
        d_head = layer.q.shape[-1]
        torch.testing.assert_close(layer.scores, layer.q @ layer.k.transpose(-2, -1), atol=1e-5, rtol=0)
        assert torch.equal(layer.scaled_scores, layer.scores / math.sqrt(d_head))
        torch.testing.assert_close(layer.weights, torch.softmax(layer.scaled_scores, dim=-1), atol=0, rtol=0)
        torch.testing.assert_close(layer.weights.sum(-1), torch.ones(layer.weights.shape[:2]), atol=1e-6, rtol=0)
        torch.testing.assert_close(layer.context, layer.weights @ layer.v, atol=1e-6, rtol=0)
        heads, n, _ = layer.context.shape
        assert torch.equal(layer.concat[:, :d_head], layer.context[0])
        assert layer.concat.shape == (n, heads * d_head)


def test_masked_keys_get_minus_infinity_and_zero_weight():
    q, k, v = torch.randn(3, 2, 5, 4)  # each (heads=2, n=5, d_head=4)
    padding = torch.tensor([False, False, True, False, True])
    allowed = attention_mask(5, key_padding_mask=padding)
    steps = scaled_dot_product_attention(q, k, v, allowed)
    assert torch.isneginf(steps.scaled_scores[:, :, padding]).all()
    assert torch.isfinite(steps.scaled_scores[:, :, ~padding]).all()
    assert (steps.weights[:, :, padding] == 0).all()
    torch.testing.assert_close(steps.weights.sum(-1), torch.ones(2, 5))


def test_causal_mask_hides_later_tokens():
    allowed = attention_mask(4, causal=True)
    assert torch.equal(allowed, torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    q, k, v = torch.randn(3, 1, 4, 8)
    weights = scaled_dot_product_attention(q, k, v, allowed).weights[0]
    assert torch.equal(weights.triu(1), torch.zeros(4, 4))
    assert weights[0, 0] == 1.0  # the first token can only see itself


@pytest.mark.parametrize("causal", [False, True])
def test_masked_weights_match_multihead_attention(causal):
    d_model, heads, n = 16, 4, 6
    layer = _reference_layer(d_model, heads)
    x = torch.randn(n, d_model)
    padding = torch.tensor([False, False, False, True, False, True])
    imported = from_torch(layer)
    ours = Encoder(dataclasses.replace(imported.config, causal=causal))
    ours.load_state_dict(imported.state_dict())
    with torch.no_grad():
        attn_mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1) if causal else None  # True = hidden
        _, reference = layer.self_attn(
            x[None],
            x[None],
            x[None],
            key_padding_mask=padding[None],
            attn_mask=attn_mask,
            need_weights=True,
            average_attn_weights=False,
        )
    weights = ours.trace(x, key_padding_mask=padding).layers[0].weights
    torch.testing.assert_close(weights, reference[0], atol=1e-6, rtol=0)


def test_a_mask_that_hides_every_key_is_refused():
    with pytest.raises(ValueError, match="no key"):
        attention_mask(3, key_padding_mask=torch.tensor([True, True, True]))


def test_key_padding_mask_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        attention_mask(3, key_padding_mask=torch.tensor([True, False]))


def test_without_scaling_the_scaled_scores_are_the_raw_scores_and_temperature_divides():
    text = "the cat saw the dog"
    plain = Encoder(EncoderConfig(scale_scores=False)).trace_text(text).layers[0]
    assert torch.equal(plain.scaled_scores, plain.scores)
    torch.testing.assert_close(plain.weights, torch.softmax(plain.scores, dim=-1), atol=0, rtol=0)
    warm = Encoder(EncoderConfig(temperature=2.0)).trace_text(text).layers[0]
    d_head = warm.q.shape[-1]
    torch.testing.assert_close(warm.scaled_scores, warm.scores / (math.sqrt(d_head) * 2.0), atol=1e-6, rtol=0)
    assert torch.equal(warm.scores, plain.scores)  # same seed, same weights: only the softmax input differs


def test_without_scaling_a_wide_head_saturates_the_softmax_on_the_same_weights():
    """Why the paper divides by √d_k: the same weights, with and without the division."""
    text = "attention lets every token look at every other token in the sentence"
    config = EncoderConfig(d_model=256, n_heads=1, n_layers=1, seed=3)  # d_k = 256
    scaled = Encoder(config).trace_text(text).layers[0].weights[0]  # (n, n)
    raw = Encoder(dataclasses.replace(config, scale_scores=False)).trace_text(text).layers[0].weights[0]

    def entropy(weights: torch.Tensor) -> torch.Tensor:
        return -(weights * weights.clamp_min(1e-30).log()).sum(-1)  # (n,)

    assert raw.max(-1).values.mean() > 0.8  # nearly one-hot rows
    assert scaled.max(-1).values.mean() < raw.max(-1).values.mean() - 0.3
    assert entropy(raw).mean() < 0.5 * entropy(scaled).mean()


def test_the_variance_of_raw_scores_grows_with_d_k():
    text = " ".join(f"w{i}" for i in range(64))
    variances = {}
    for d_head in (16, 256):
        config = EncoderConfig(d_model=d_head, n_heads=1, n_layers=1, seed=1)
        layer = Encoder(config).trace_text(text).layers[0]
        variances[d_head] = float(layer.scores.var())
        assert float(layer.scaled_scores.var()) == pytest.approx(variances[d_head] / d_head, rel=1e-4)
    assert variances[256] > 6 * variances[16]  # about 16x: Var(q·k) = d_k·Var(q_i)·Var(k_i)


def test_without_positions_shuffling_the_words_only_shuffles_the_attention():
    """Self-attention alone is blind to order: the permutation property of issue 5."""
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"]
    order = [3, 0, 8, 5, 1, 7, 2, 6, 4]  # a fixed shuffle
    model = Encoder(EncoderConfig(positional="none", n_layers=2))
    original = model.trace_text(" ".join(words))
    shuffled = model.trace_text(" ".join(words[i] for i in order))
    perm = torch.tensor(order)
    for a, b in zip(original.layers, shuffled.layers, strict=True):
        torch.testing.assert_close(b.weights, a.weights[:, perm][:, :, perm], atol=1e-6, rtol=0)
    torch.testing.assert_close(shuffled.output, original.output[perm], atol=1e-5, rtol=0)
    with_positions = Encoder(EncoderConfig(positional="sinusoidal", n_layers=2))
    a = with_positions.trace_text(" ".join(words)).layers[0].weights
    b = with_positions.trace_text(" ".join(words[i] for i in order)).layers[0].weights
    assert not torch.allclose(b, a[:, perm][:, :, perm], atol=1e-3)  # positions break the symmetry
