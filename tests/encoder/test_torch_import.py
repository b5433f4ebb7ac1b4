"""Importing a live torch module (encoder.torch_import), checked against torch's own modules:
torch's encoder, and an encoder without LayerNorm (self_attn, linear1, linear2 and residual sums,
as the source article builds it; tests/torch_models.py), whose forward is the reference.
Per-head weights come from `nn.MultiheadAttention` itself.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from encoder import UnsupportedModelError, from_torch
from tests.torch_models import (
    NoLayerNormEncoderLayer,
    assert_close_scaled,
    no_layer_norm_encoder,
    run_unbatched,
)


def test_an_encoder_without_layer_norm_imports_and_computes_what_its_forward_computes():
    reference = no_layer_norm_encoder()
    ours = from_torch(reference)
    assert (ours.config.layer_norm, ours.config.n_heads, ours.config.n_layers, ours.config.d_ff) == ("none", 4, 3, 64)
    assert ours.config.activation == "relu"  # the forward's F.relu, found by the forward check
    x = torch.randn(6, 32)
    trace = ours.trace(x)
    assert_close_scaled(trace.output, run_unbatched(reference, x))
    hidden = x[:, None]  # (n, 1, d): batch_first=False
    for index, layer in enumerate(reference.layers):  # every head of every layer, as torch computes it
        with torch.no_grad():
            _, per_head = layer.self_attn(hidden, hidden, hidden, need_weights=True, average_attn_weights=False)
            hidden = layer(hidden)
        torch.testing.assert_close(trace.layers[index].weights, per_head[0], atol=1e-6, rtol=1e-5)
        assert_close_scaled(trace.layers[index].output, hidden[:, 0])
    assert reference.training is False and all(not m.training for m in reference.modules())


def test_importing_leaves_the_modules_training_flags_as_they_were():
    reference = no_layer_norm_encoder().train()
    from_torch(reference)
    assert all(module.training for module in reference.modules())


def test_one_layer_of_an_encoder_without_layer_norm_imports_too():
    layer = no_layer_norm_encoder(layers=1).layers[0]
    x = torch.randn(4, 32)
    assert_close_scaled(from_torch(layer).trace(x).output, run_unbatched(layer, x))


class _GeluNoLayerNormLayer(NoLayerNormEncoderLayer):
    def forward(self, src, src_mask=None):
        src = src + self.self_attn(src, src, src)[0]
        return src + self.linear2(F.gelu(self.linear1(src)))


class _PreNormLayer(nn.Module):
    """torch's parts under torch's names, pre-LN in its forward, and no norm_first to say so."""

    def __init__(self, d_model, nhead, d_ff):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h)[0]
        return x + self.linear2(F.relu(self.linear1(self.norm2(x))))


def test_what_the_modules_do_not_say_is_read_from_the_forward():
    gelu = _GeluNoLayerNormLayer(16, 2, 32).eval()
    imported = from_torch(gelu)
    assert (imported.config.activation, imported.config.layer_norm) == ("gelu", "none")
    x = torch.randn(5, 16)
    assert_close_scaled(imported.trace(x).output, run_unbatched(gelu, x))
    pre = _PreNormLayer(16, 4, 32).eval()
    imported = from_torch(pre)
    assert (imported.config.layer_norm, imported.config.n_heads) == ("pre", 4)
    with torch.no_grad():
        expected = pre(x[None])[0]  # batch_first
    assert_close_scaled(imported.trace(x).output, expected)


class _Scaled(NoLayerNormEncoderLayer):
    def forward(self, src):
        return 2 * super().forward(src)


class _NeedsMask(NoLayerNormEncoderLayer):
    def forward(self, src, mask):
        return super().forward(src, mask)


class _WithEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.layers = nn.ModuleList([NoLayerNormEncoderLayer(8, 2, 16)])


@pytest.mark.parametrize(
    ("module", "code", "words"),
    [
        (_Scaled(8, 2, 16), "forward_differs", "differs by"),
        (_NeedsMask(8, 2, 16), "forward_failed", "missing 1 required positional argument"),
        (_WithEmbedding(), "unsupported", "embedding.weight"),
        (nn.TransformerDecoderLayer(8, 2), "state_dict_names", "multihead_attn"),
    ],
    ids=["another function", "a forward that fails", "an embedding too", "a decoder layer"],
)
def test_a_look_alike_is_refused_with_what_is_wrong(module, code, words):
    with pytest.raises(UnsupportedModelError) as refused:
        from_torch(module)
    assert refused.value.code == code and words in str(refused.value)
