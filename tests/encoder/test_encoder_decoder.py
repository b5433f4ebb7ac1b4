"""The encoder–decoder against `torch.nn.Transformer`, which nobody here wrote: the same weights and
the causal target mask give the same output, and each decoder layer's per-head cross-attention
weights are `nn.MultiheadAttention`'s on that layer's inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from encoder.config import ConfigError
from encoder.encoder_decoder import EncoderDecoder, EncoderDecoderConfig

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's note on norm_first
S, T = 3, 4  # 我 爱 你 -> <s> I love you


def _torch_transformer(norm_first: bool, activation: str) -> nn.Transformer:
    torch.manual_seed(0)
    transformer = nn.Transformer(
        d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32, dropout=0.0,
        activation=activation, norm_first=norm_first, batch_first=True,
    )  # fmt: skip
    with torch.no_grad():  # LayerNorms that are not the identity, so their placement matters
        for name, param in transformer.named_parameters():
            if "norm" in name:
                param.add_(0.3 * torch.randn_like(param))
    return transformer.eval()


@pytest.mark.parametrize(("norm_first", "activation"), [(False, "relu"), (True, "gelu")])
def test_the_trace_is_torchs_transformer_with_the_causal_mask(norm_first: bool, activation: str):
    transformer = _torch_transformer(norm_first, activation)
    source, target = torch.randn(S, 16), torch.randn(T, 16)
    mask = nn.Transformer.generate_square_subsequent_mask(T)
    with torch.no_grad():
        expected = transformer(source[None], target[None], tgt_mask=mask, tgt_is_causal=True)[0]  # (T, 16)
    trace = EncoderDecoder.from_torch(transformer).trace(source, target)
    torch.testing.assert_close(trace.output, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trace.encoder.output, transformer.encoder(source[None])[0], atol=1e-5, rtol=1e-5)


def test_masked_self_attention_and_cross_attention_per_head():
    transformer = _torch_transformer(False, "relu")
    source, target = torch.randn(S, 16), torch.randn(T, 16)
    trace = EncoderDecoder.from_torch(transformer).trace(source, target)
    memory = trace.encoder.output[None]  # (1, S, 16)
    stream = target[None]
    for layer, theirs in zip(trace.decoder, transformer.decoder.layers, strict=True):
        own = layer.self_attention
        above = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        assert torch.isneginf(own.scaled_scores[:, above]).all() and (own.weights[:, above] == 0).all()
        assert torch.isfinite(own.scaled_scores[:, ~above]).all()
        with torch.no_grad():
            _, own_weights = theirs.self_attn(stream, stream, stream, attn_mask=above, average_attn_weights=False)
            after_self = theirs.norm1(stream + theirs.self_attn(stream, stream, stream, attn_mask=above)[0])
            _, cross_weights = theirs.multihead_attn(after_self, memory, memory, average_attn_weights=False)
        torch.testing.assert_close(own.weights, own_weights[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(layer.cross_attention.weights, cross_weights[0], atol=1e-6, rtol=1e-5)
        assert layer.cross_attention.weights.shape == (4, T, S)
        stream = layer.output[None]


def test_the_config_is_checked_like_the_encoders():
    with pytest.raises(ConfigError, match="n_decoder_layers=0"):
        EncoderDecoderConfig(n_decoder_layers=0)
    with pytest.raises(ConfigError, match="n_heads=5"):
        EncoderDecoderConfig(d_model=64, n_heads=5)
    with pytest.raises(ConfigError, match="layer_norm='none'"):
        EncoderDecoderConfig(layer_norm="none")


def test_random_weights_come_from_the_seed_alone():
    source, target = torch.randn(S, 64), torch.randn(T, 64)
    state = torch.random.get_rng_state()
    first = EncoderDecoder(EncoderDecoderConfig(seed=3), device="cpu").trace(source, target).output
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    again = EncoderDecoder(EncoderDecoderConfig(seed=3), device="cpu").trace(source, target).output
    other = EncoderDecoder(EncoderDecoderConfig(seed=4), device="cpu").trace(source, target).output
    assert torch.equal(first, again) and not torch.allclose(first, other)


def test_random_weights_go_to_torch_and_back():
    model = EncoderDecoder(EncoderDecoderConfig(d_model=32, n_heads=4, layer_norm="pre", activation="gelu", seed=7))
    source, target = torch.randn(5, 32), torch.randn(6, 32)
    module = model.to_torch()
    with torch.no_grad():
        theirs = module(source[None], target[None], tgt_mask=nn.Transformer.generate_square_subsequent_mask(6))[0]
    ours = model.trace(source, target).output
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(EncoderDecoder.from_torch(module).trace(source, target).output, ours)
