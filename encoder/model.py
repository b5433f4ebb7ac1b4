"""The encoder: embeddings, positional encoding and a stack of traceable layers.

Parameter names and layouts follow `torch.nn.TransformerEncoderLayer` (a fused
`[W_Q; W_K; W_V]` input projection, `norm1`, `norm2`), which makes `from_torch` a plain
copy and lets one matrix product compute Q, K and V together, as torch does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from encoder.attention import attention_mask, scaled_dot_product_attention
from encoder.config import EncoderConfig
from encoder.embeddings import sinusoidal_positions, token_embeddings
from encoder.tokenizer import tokenize
from encoder.trace import LayerTrace, Trace

# In-place where torch has it: the pre-activation is never kept, so it need not be copied.
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu_,
    "gelu": F.gelu,
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`None` or "auto" picks CUDA, then Apple MPS, then the CPU; anything else is honoured.

    Asking for an accelerator that is not there is an error, not a silent CPU run: a
    benchmark or a lesson about GPUs must not quietly measure the wrong thing.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested, but this machine has no usable CUDA GPU")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was requested, but Apple MPS is not available here")
    return resolved


class EncoderLayer(nn.Module):
    """Multi-head self-attention and a feed-forward network, each with residual + LayerNorm."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        d_model, d_ff = config.d_model, config.d_ff
        self.n_heads = config.n_heads
        self.norm_first = config.norm_first
        self.activation = _ACTIVATIONS[config.activation]
        # Rows [0:d), [d:2d), [2d:3d) are W_Q, W_K, W_V (torch's in_proj_weight layout).
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)  # W_O
        self.ffn_in = nn.Linear(d_model, d_ff)  # W_1
        self.ffn_out = nn.Linear(d_ff, d_model)  # W_2
        self.norm1 = nn.LayerNorm(d_model, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=config.layer_norm_eps)

    def trace(self, x: torch.Tensor, allowed: torch.Tensor | None) -> LayerTrace:
        """Run the layer on x (n, d_model) and keep every intermediate."""
        n, d_model = x.shape
        heads = self.n_heads
        attn_input = self.norm1(x) if self.norm_first else x  # (n, d_model)
        qkv = self.qkv_proj(attn_input)  # (n, 3 * d_model)
        # One copy into head-major order, so each head's Q, K, V is a contiguous block that
        # the matrix products read without copying again (torch's fast path does the same).
        q, k, v = qkv.view(n, 3, heads, d_model // heads).permute(1, 2, 0, 3).contiguous()  # 3 x (heads, n, d_head)
        steps = scaled_dot_product_attention(q, k, v, allowed)
        concat = steps.context.transpose(0, 1).reshape(n, d_model)  # (n, d_model), not kept
        attn_output = self.out_proj(concat)  # (n, d_model)
        attn_residual = x + attn_output  # (n, d_model)
        if self.norm_first:
            stream = attn_residual
            ffn_input = self.norm2(attn_residual)
        else:
            stream = ffn_input = self.norm1(attn_residual)
        ffn_hidden = self.activation(self.ffn_in(ffn_input))  # (n, d_ff)
        ffn_output = self.ffn_out(ffn_hidden)  # (n, d_model)
        ffn_residual = stream + ffn_output  # (n, d_model)
        output = ffn_residual if self.norm_first else self.norm2(ffn_residual)
        return LayerTrace(
            input=x,
            attn_input=attn_input,
            q=q,
            k=k,
            v=v,
            scores=steps.scores,
            scaled_scores=steps.scaled_scores,
            weights=steps.weights,
            context=steps.context,
            attn_output=attn_output,
            attn_residual=attn_residual,
            ffn_input=ffn_input,
            ffn_hidden=ffn_hidden,
            ffn_output=ffn_output,
            ffn_residual=ffn_residual,
            output=output,
        )


class Encoder(nn.Module):
    """A Transformer encoder whose every step can be inspected.

    Always in eval mode without gradients: it exists to be looked at, not trained. All
    weights are drawn on the CPU from `config.seed` with a private generator (the global
    RNG is left alone), then moved to the device, so a config gives the same numbers on
    every run and every device.
    """

    def __init__(self, config: EncoderConfig | None = None, device: str | torch.device | None = None) -> None:
        super().__init__()
        self.config = config = config or EncoderConfig()
        # Built on the meta device so that the modules' own initialisers (which draw from
        # the global RNG) never run; every tensor is then filled from the seed below.
        with torch.device("meta"):
            self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
            self.final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.final_norm else None
            self.learned_positions = (
                nn.Parameter(torch.empty(config.limits.max_tokens, config.d_model))
                if config.positional == "learned"
                else None
            )
        self.to_empty(device="cpu")
        self._init_weights(torch.Generator().manual_seed(config.seed))
        self.requires_grad_(False)
        self.eval()
        self.to(resolve_device(device))

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator) -> None:
        """Xavier-uniform matrices (as torch's attention uses), zero biases, unit LayerNorms."""
        for name, param in self.named_parameters():
            if name == "learned_positions":
                param.normal_(generator=generator)
            elif ".norm" in name or name.startswith("final_norm"):
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("weight"):
                nn.init.xavier_uniform_(param, generator=generator)
            else:
                param.zero_()

    @property
    def device(self) -> torch.device:
        """Where the weights live and the trace is computed."""
        return self.layers[0].qkv_proj.weight.device

    def positional_encoding(self, n_tokens: int) -> torch.Tensor:
        """(n, d_model) positions to add to the token embeddings (zeros for "none")."""
        kind = self.config.positional
        if kind == "sinusoidal":
            return sinusoidal_positions(n_tokens, self.config.d_model).to(self.device)
        if kind == "learned":
            return self.learned_positions[:n_tokens].detach()
        return torch.zeros(n_tokens, self.config.d_model, device=self.device)

    def embed(self, tokens: Sequence[str]) -> torch.Tensor:
        """(n, d_model) embeddings of the tokens (see `encoder.embeddings`)."""
        return token_embeddings(list(tokens), self.config.seed, self.config.d_model).to(self.device)

    @torch.inference_mode()
    def trace(
        self,
        x: torch.Tensor,
        *,
        tokens: Sequence[str] | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> Trace:
        """Run the layer stack on x (n, d_model), the input of layer 0, keeping everything.

        `tokens` only label the trace (default "0", "1", ...); `key_padding_mask` (n,)
        marks padded keys with True, as torch's `src_key_padding_mask` does.
        """
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        n_tokens = self._check_input(x)
        labels = [str(i) for i in range(n_tokens)] if tokens is None else list(tokens)
        if len(labels) != n_tokens:
            raise ValueError(f"{len(labels)} tokens were given for an input of {n_tokens} rows")
        return self._run(labels, x, None, key_padding_mask)

    @torch.inference_mode()
    def trace_text(self, text: str) -> Trace:
        """Tokenize, embed, add positions and run the stack (see `encoder.tokenize`)."""
        tokens = tokenize(text, max_tokens=self.config.limits.max_tokens)
        return self._run(tokens, self.embed(tokens), self.positional_encoding(len(tokens)), None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output alone, (n, d_model): nn.Module's usual entry point."""
        return self.trace(x).output

    def _check_input(self, x: torch.Tensor) -> int:
        d_model = self.config.d_model
        if x.ndim != 2 or x.shape[1] != d_model or x.shape[0] == 0:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (n_tokens, {d_model}) with n_tokens >= 1")
        return x.shape[0]

    def _run(
        self,
        tokens: list[str],
        embeddings: torch.Tensor,
        positions: torch.Tensor | None,
        key_padding_mask: torch.Tensor | None,
    ) -> Trace:
        """Add positions (None: x already is the input of layer 0) and run every layer."""
        n_tokens = len(tokens)
        allowed = attention_mask(
            n_tokens, causal=self.config.causal, key_padding_mask=key_padding_mask, device=self.device
        )
        if positions is None:
            positions = torch.zeros_like(embeddings)
            layer_input = embeddings
        else:
            layer_input = embeddings + positions  # (n, d_model)
        layers = []
        hidden = layer_input
        for layer in self.layers:
            layer_trace = layer.trace(hidden, allowed)
            layers.append(layer_trace)
            hidden = layer_trace.output
        output = self.final_norm(hidden) if self.final_norm is not None else hidden
        return Trace(
            config=self.config,
            tokens=tokens,
            embeddings=embeddings,
            positions=positions,
            input=layer_input,
            layers=layers,
            output=output,
            mask=allowed,
        )

    @classmethod
    def from_torch(cls, module: nn.Module, device: str | torch.device | None = None) -> Encoder:
        """An Encoder holding the weights of a `torch.nn.TransformerEncoder` or one layer of it."""
        from encoder.torch_import import config_and_state_from_torch

        config, state = config_and_state_from_torch(module)
        encoder = cls(config, device="cpu")
        encoder.load_state_dict(state)
        return encoder.to(resolve_device(device))
