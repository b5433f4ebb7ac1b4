"""The encoder–decoder the source article starts from, every step kept: the encoder as it is
(`encoder.model`), and decoder layers of masked self-attention, cross-attention (queries from the
target, keys and values from the encoder's output) and the feed-forward network, each with its
residual sum and LayerNorm, as `torch.nn.Transformer` computes them, final LayerNorms included.

This module is the model and its trace on embeddings; the translation task that trains it and the
page that shows it are built on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from encoder.attention import AttentionSteps, scaled_dot_product_attention
from encoder.config import LIMITS, ConfigError, EncoderConfig, _check_int
from encoder.model import _ACTIVATIONS, Encoder, resolve_device
from encoder.trace import Trace


@dataclass(frozen=True)
class EncoderDecoderConfig:
    """Shape and options of an encoder–decoder; the rules are `EncoderConfig`'s, and both stacks
    share d_model, heads, d_ff, LayerNorm placement and activation, as `nn.Transformer`'s do."""

    d_model: int = 64
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    d_ff: int | None = None  # None means 4 * d_model
    layer_norm: str = "post"  # "post" or "pre": nn.Transformer always has its final LayerNorms
    activation: str = "relu"
    seed: int = 0
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        _check_int("n_encoder_layers", self.n_encoder_layers, 1, LIMITS.max_layers)
        _check_int("n_decoder_layers", self.n_decoder_layers, 1, LIMITS.max_layers)
        if self.layer_norm not in ("post", "pre"):
            raise ConfigError("layer_norm", self.layer_norm, "one_of", options=("post", "pre"))
        object.__setattr__(self, "d_ff", self.encoder_config().d_ff)  # checked there, and 4·d_model by default

    def encoder_config(self) -> EncoderConfig:
        """The encoder's own config: embeddings are given (no positions added here), a final LayerNorm."""
        return EncoderConfig(
            d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_encoder_layers, d_ff=self.d_ff,
            seed=self.seed, layer_norm=self.layer_norm, activation=self.activation, positional="none",
            layer_norm_eps=self.layer_norm_eps, final_norm=True,
        )  # fmt: skip


@dataclass(frozen=True)
class AttentionTrace:
    """One attention sublayer of a decoder layer, per head, with the encoder's names."""

    q: torch.Tensor  # (heads, T, d_head)  target · W_Q
    k: torch.Tensor  # (heads, T or S, d_head)  target (self) or the encoder's output (cross) · W_K
    v: torch.Tensor  # (heads, T or S, d_head)
    scores: torch.Tensor  # (heads, T, T or S)  Q·Kᵀ
    scaled_scores: torch.Tensor  # (heads, T, T or S)  Q·Kᵀ/√d_k; -inf above the diagonal when masked
    weights: torch.Tensor  # (heads, T, T or S)  softmax; exactly 0 where masked
    context: torch.Tensor  # (heads, T, d_head)  weights·V
    output: torch.Tensor  # (T, d_model)  concat·W_O + b_O


@dataclass(frozen=True)
class DecoderLayerTrace:
    input: torch.Tensor  # (T, d_model)  the target's stream entering the layer
    self_attention: AttentionTrace  # masked: a position sees itself and those before it
    cross_attention: AttentionTrace  # queries from the target, keys and values from the encoder's output
    ffn_hidden: torch.Tensor  # (T, d_ff)
    output: torch.Tensor  # (T, d_model)


@dataclass(frozen=True)
class EncoderDecoderTrace:
    encoder: Trace  # the source through the encoder; its `output` (S, d_model) is the memory
    decoder: list[DecoderLayerTrace]
    output: torch.Tensor  # (T, d_model)  after the decoder's final LayerNorm


class _Attention(nn.Module):
    """W_Q, W_K, W_V (torch's in_proj layout: rows [0:d), [d:2d), [2d:3d)) and W_O."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def trace(self, queries: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor | None) -> AttentionTrace:
        d_model = queries.shape[1]
        heads, d_head = self.n_heads, d_model // self.n_heads
        w_q, w_k, w_v = self.in_proj.weight.chunk(3)  # (d_model, d_model) each
        b_q, b_k, b_v = self.in_proj.bias.chunk(3)
        q = (queries @ w_q.T + b_q).view(-1, heads, d_head).transpose(0, 1)  # (heads, T, d_head)
        k = (keys @ w_k.T + b_k).view(-1, heads, d_head).transpose(0, 1)  # (heads, S, d_head)
        v = (keys @ w_v.T + b_v).view(-1, heads, d_head).transpose(0, 1)  # (heads, S, d_head)
        steps: AttentionSteps = scaled_dot_product_attention(q, k, v, allowed)
        concat = steps.context.transpose(0, 1).reshape(-1, d_model)  # (T, d_model)
        return AttentionTrace(q, k, v, steps.scores, steps.scaled_scores, steps.weights, steps.context,
                              self.out_proj(concat))  # fmt: skip


class DecoderLayer(nn.Module):
    """`nn.TransformerDecoderLayer`'s computation, post-LN or pre-LN (`norm_first`)."""

    def __init__(self, config: EncoderDecoderConfig) -> None:
        super().__init__()
        d_model = config.d_model
        self.pre = config.layer_norm == "pre"
        self.activation = _ACTIVATIONS[config.activation]
        self.self_attn = _Attention(d_model, config.n_heads)
        self.cross_attn = _Attention(d_model, config.n_heads)
        self.ffn_in = nn.Linear(d_model, config.d_ff)
        self.ffn_out = nn.Linear(config.d_ff, d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, eps=config.layer_norm_eps) for _ in range(3))

    def trace(self, x: torch.Tensor, memory: torch.Tensor) -> DecoderLayerTrace:
        """x (T, d_model) the target's stream, memory (S, d_model) the encoder's output."""
        causal = torch.tril(torch.ones(len(x), len(x), dtype=torch.bool, device=x.device))  # (T, T)
        stream = x
        attend_from = self.norm1(stream) if self.pre else stream
        own = self.self_attn.trace(attend_from, attend_from, causal)
        stream = stream + own.output if self.pre else self.norm1(stream + own.output)
        asking = self.norm2(stream) if self.pre else stream
        cross = self.cross_attn.trace(asking, memory, None)
        stream = stream + cross.output if self.pre else self.norm2(stream + cross.output)
        ffn_input = self.norm3(stream) if self.pre else stream
        hidden = self.activation(self.ffn_in(ffn_input))  # (T, d_ff)
        stream = stream + self.ffn_out(hidden) if self.pre else self.norm3(stream + self.ffn_out(hidden))
        return DecoderLayerTrace(x, own, cross, hidden, stream)


class EncoderDecoder(nn.Module):
    """An encoder (`encoder.model.Encoder`, a final LayerNorm) and a stack of `DecoderLayer`s with a
    final LayerNorm: `nn.Transformer`'s computation, every step kept. Eval mode, no gradients, weights
    drawn from `config.seed` unless a torch module's are loaded (`from_torch`)."""

    def __init__(self, config: EncoderDecoderConfig | None = None, device: str | torch.device | None = None) -> None:
        super().__init__()
        self.config = config = config or EncoderDecoderConfig()
        self.encoder = Encoder(config.encoder_config(), device="cpu")
        # Built on the meta device, as the encoder is: torch's own initialisers (the global RNG) never run.
        with torch.device("meta"):
            self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_decoder_layers))
            self.decoder_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.decoder_layers.to_empty(device="cpu")
        self.decoder_norm.to_empty(device="cpu")
        generator = torch.Generator().manual_seed(config.seed + 1)  # the decoder's own draws
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.startswith("encoder."):
                    continue  # drawn by the encoder from the seed
                if "norm" in name:  # unit LayerNorms
                    param.fill_(1.0 if name.endswith("weight") else 0.0)
                elif name.endswith("weight"):  # Xavier-uniform matrices, as torch's attention uses
                    nn.init.xavier_uniform_(param, generator=generator)
                else:
                    param.zero_()
        self.requires_grad_(False)
        self.eval()
        self.to(resolve_device(device))

    @torch.inference_mode()
    def trace(self, source: torch.Tensor, target: torch.Tensor) -> EncoderDecoderTrace:
        """source (S, d_model) and target (T, d_model) embeddings: the target attends to itself up to
        each position (masked) and to the whole source (cross)."""
        encoded = self.encoder.trace(source)
        memory = encoded.output  # (S, d_model)
        layers, stream = [], target
        for layer in self.decoder_layers:
            layers.append(layer.trace(stream, memory))
            stream = layers[-1].output
        return EncoderDecoderTrace(encoded, layers, self.decoder_norm(stream))

    @classmethod
    def from_torch(cls, module: nn.Transformer) -> EncoderDecoder:
        """The same computation with `module`'s weights (ReLU or GELU, post- or pre-LN, batch_first or not)."""
        first = module.decoder.layers[0]
        config = EncoderDecoderConfig(
            d_model=first.self_attn.embed_dim, n_heads=first.self_attn.num_heads,
            n_encoder_layers=len(module.encoder.layers), n_decoder_layers=len(module.decoder.layers),
            d_ff=first.linear1.out_features, layer_norm="pre" if first.norm_first else "post",
            activation="gelu" if first.activation is nn.functional.gelu or isinstance(first.activation, nn.GELU)
            else "relu", layer_norm_eps=first.norm1.eps,
        )  # fmt: skip
        model = cls(config, device="cpu")
        with torch.no_grad():
            for ours, theirs in _matching_weights(model, module):
                ours.copy_(theirs)
        return model

    def to_torch(self) -> nn.Transformer:
        """An `nn.Transformer` (batch_first, no dropout) with these weights: run it with
        `tgt_mask=nn.Transformer.generate_square_subsequent_mask(T)` to get `trace(...).output`."""
        config = self.config
        module = nn.Transformer(
            d_model=config.d_model, nhead=config.n_heads, num_encoder_layers=config.n_encoder_layers,
            num_decoder_layers=config.n_decoder_layers, dim_feedforward=config.d_ff, dropout=0.0,
            activation=config.activation, layer_norm_eps=config.layer_norm_eps, batch_first=True,
            norm_first=config.layer_norm == "pre", device=self.encoder.device,
        )  # fmt: skip
        with torch.no_grad():
            for ours, theirs in _matching_weights(self, module):
                theirs.copy_(ours)
        return module.eval()


def _matching_weights(model: EncoderDecoder, module: nn.Transformer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each of our tensors with the `nn.Transformer` tensor that holds the same weights: one table
    for both directions (`from_torch`, `to_torch`)."""
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def linear(ours: nn.Module, theirs: nn.Module) -> None:
        pairs.extend([(ours.weight, theirs.weight), (ours.bias, theirs.bias)])

    for ours, theirs in zip(model.encoder.layers, module.encoder.layers, strict=True):
        pairs += [(ours.qkv_proj.weight, theirs.self_attn.in_proj_weight),
                  (ours.qkv_proj.bias, theirs.self_attn.in_proj_bias)]  # fmt: skip
        parts = [(ours.out_proj, theirs.self_attn.out_proj), (ours.ffn_in, theirs.linear1),
                 (ours.ffn_out, theirs.linear2), (ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2)]  # fmt: skip
        for mine, torchs in parts:
            linear(mine, torchs)
    linear(model.encoder.final_norm, module.encoder.norm)
    for ours, theirs in zip(model.decoder_layers, module.decoder.layers, strict=True):
        for mine, attention in ((ours.self_attn, theirs.self_attn), (ours.cross_attn, theirs.multihead_attn)):
            pairs += [(mine.in_proj.weight, attention.in_proj_weight), (mine.in_proj.bias, attention.in_proj_bias)]
            linear(mine.out_proj, attention.out_proj)
        parts = [(ours.ffn_in, theirs.linear1), (ours.ffn_out, theirs.linear2), (ours.norm1, theirs.norm1),
                 (ours.norm2, theirs.norm2), (ours.norm3, theirs.norm3)]  # fmt: skip
        for mine, torchs in parts:
            linear(mine, torchs)
    linear(model.decoder_norm, module.decoder.norm)
    return pairs
