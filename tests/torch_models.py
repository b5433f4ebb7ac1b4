"""Torch encoders that the tests import, upload and compare with: not a test module.

`NoLayerNormEncoder` is an encoder without LayerNorm (self_attn, linear1, linear2 and residual
sums, as the source article builds it), written as the article writes it: `nn.MultiheadAttention`,
`linear1`, `linear2` and a residual sum around each, its stack cloned with `copy.deepcopy`. Its
forward (torch's attention and linears) is the reference an imported encoder must reproduce.
"""

from __future__ import annotations

import copy
import io

import torch
import torch.nn.functional as F
from torch import nn


class NoLayerNormEncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each with a residual sum, and no LayerNorm."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)

    def forward(self, src, src_mask=None):
        src2 = self.self_attn(src, src, src, attn_mask=src_mask)[0]
        src = src + self.dropout(src2)
        src2 = self.linear2(self.dropout(F.relu(self.linear1(src))))
        src = src + self.dropout(src2)
        return src


class NoLayerNormEncoder(nn.Module):
    def __init__(self, encoder_layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])

    def forward(self, src, mask=None):
        for layer in self.layers:
            src = layer(src, mask)
        return src


def no_layer_norm_encoder(d_model=32, heads=4, layers=3, d_ff=64, seed=0) -> NoLayerNormEncoder:
    """An encoder without LayerNorm with weights of its own in every layer (tests/encoder, tests/app
    and tests/e2e import it, upload it and compare with it)."""
    torch.manual_seed(seed)
    model = NoLayerNormEncoder(NoLayerNormEncoderLayer(d_model, heads, d_ff), layers)
    for layer in model.layers:  # each clone its own weights, as training would leave them
        for parameter in layer.parameters():
            nn.init.normal_(parameter, std=0.1)
    return model.eval()


def run_unbatched(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module's output (n, d) for one sequence x (n, d), given in nn.MultiheadAttention's default
    layout (n, 1, d), batch_first=False."""
    with torch.no_grad():
        return module(x[:, None])[:, 0]


def assert_close_scaled(ours: torch.Tensor, reference: torch.Tensor) -> None:
    """Equal to float32 rounding: without LayerNorm the vectors grow, so relative to their size."""
    scale = max(1.0, float(reference.abs().max()))
    torch.testing.assert_close(ours, reference, atol=1e-5 * scale, rtol=0)


def saved(obj: object) -> bytes:
    """What `torch.save` writes for obj: the bytes of an uploaded file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
