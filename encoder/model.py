"""The encoder: a text front end (`encoder.embeddings`) and a stack of traceable layers.

Parameter names and layouts follow `torch.nn.TransformerEncoderLayer` (a fused
`[W_Q; W_K; W_V]` input projection, `norm1`, `norm2`), which makes `encoder.from_torch` a plain
copy and lets one matrix product compute Q, K and V together, as torch does.

The front end is the one part that differs between random weights and a trained
checkpoint, so `Encoder` takes it as a module (`TextEmbedding`): `HashedTextEmbedding` by
default, a checkpoint's tokenizer and embedding tables from `encoder.pretrained`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from encoder.attention import attention_mask, scaled_dot_product_attention
from encoder.config import ConfigError, EncoderConfig
from encoder.embeddings import HashedTextEmbedding, TextEmbedding
from encoder.tokenizer import EmptyTextError, TooManyTokensError, check_token_count
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
    """Multi-head self-attention and a feed-forward network, each with a residual sum and, as
    `config.layer_norm` places it, a LayerNorm after it (post-LN), before the sublayer (pre-LN)
    or none at all: an encoder without LayerNorm (self_attn, linear1, linear2 and residual sums, as
    the source article builds it), whose `norm1` and `norm2` are None."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        d_model, d_ff = config.d_model, config.d_ff
        self.n_heads = config.n_heads
        self.layer_norm = config.layer_norm
        self.scale_scores = config.scale_scores
        self.temperature = config.temperature
        self.activation = _ACTIVATIONS[config.activation]
        # Rows [0:d), [d:2d), [2d:3d) are W_Q, W_K, W_V (torch's in_proj_weight layout).
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)  # W_O
        self.ffn_in = nn.Linear(d_model, d_ff)  # W_1
        self.ffn_out = nn.Linear(d_ff, d_model)  # W_2
        normed = config.layer_norm != "none"
        self.norm1 = nn.LayerNorm(d_model, eps=config.layer_norm_eps) if normed else None
        self.norm2 = nn.LayerNorm(d_model, eps=config.layer_norm_eps) if normed else None

    # Where the LayerNorms sit, for one sequence (n, d_model) or a batch (batch, n, d_model):
    # shared by `trace` and training's fused forward, so both compute one function.
    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        """What Q, K and V are projected from: LayerNorm1(x) in pre-LN, else x itself."""
        return self.norm1(x) if self.layer_norm == "pre" else x

    def around_ffn(self, attn_residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the stream the FFN's output is added to, the FFN's input) after the attention sum."""
        if self.layer_norm == "pre":
            return attn_residual, self.norm2(attn_residual)
        if self.layer_norm == "post":
            normed = self.norm1(attn_residual)
            return normed, normed
        return attn_residual, attn_residual

    def layer_output(self, ffn_residual: torch.Tensor) -> torch.Tensor:
        """The layer's output: LayerNorm2 of the FFN's sum in post-LN, else the sum itself."""
        return self.norm2(ffn_residual) if self.layer_norm == "post" else ffn_residual

    def trace(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor | None,
        *,
        scale: bool | None = None,
        temperature: float | None = None,
        ablate: Collection[int] = (),
    ) -> LayerTrace:
        """Run the layer on x (n, d_model) and keep every intermediate. `scale` (divide by √d_k)
        and `temperature` default to the config's: they change the softmax's input, no weight.
        The heads in `ablate` are knocked out: their context vectors are set to zero before W_O
        (the trace's `context` shows the zeros; their scores and weights are as computed)."""
        scale = self.scale_scores if scale is None else scale
        temperature = self.temperature if temperature is None else temperature
        n, d_model = x.shape
        heads = self.n_heads
        attn_input = self.attention_input(x)  # (n, d_model)
        qkv = self.qkv_proj(attn_input)  # (n, 3 * d_model)
        # One copy into head-major order, so each head's Q, K, V is a contiguous block that
        # the matrix products read without copying again (torch's fast path does the same).
        q, k, v = qkv.view(n, 3, heads, d_model // heads).permute(1, 2, 0, 3).contiguous()  # 3 x (heads, n, d_head)
        steps = scaled_dot_product_attention(q, k, v, allowed, scale=scale, temperature=temperature)
        context = steps.context  # (heads, n, d_head)
        if ablate:
            context = context.clone()
            context[list(ablate)] = 0.0
        concat = context.transpose(0, 1).reshape(n, d_model)  # (n, d_model), not kept
        attn_output = self.out_proj(concat)  # (n, d_model)
        attn_residual = x + attn_output  # (n, d_model)
        stream, ffn_input = self.around_ffn(attn_residual)  # (n, d_model) each
        ffn_hidden = self.activation(self.ffn_in(ffn_input))  # (n, d_ff)
        ffn_output = self.ffn_out(ffn_hidden)  # (n, d_model)
        ffn_residual = stream + ffn_output  # (n, d_model)
        output = self.layer_output(ffn_residual)  # (n, d_model)
        return LayerTrace(
            input=x,
            attn_input=attn_input,
            q=q,
            k=k,
            v=v,
            scores=steps.scores,
            scaled_scores=steps.scaled_scores,
            weights=steps.weights,
            context=context,
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

    Always in eval mode without gradients: it exists to be looked at, not trained. Unless
    `weights` are given, every weight is drawn on the CPU from `config.seed` with a private
    generator (the global RNG is left alone), then moved to the device, so a config gives
    the same numbers on every run and every device.

    `text_embedding` replaces the random-weight front end (`HashedTextEmbedding`) with
    another, such as a checkpoint's tokenizer and embedding tables; its parameters are
    filled like every other one. `weights` is a complete state dict to use instead of the
    seed, and `name` a display name for where those weights came from (see
    `encoder.load_pretrained`, which passes all three).
    """

    def __init__(
        self,
        config: EncoderConfig | None = None,
        device: str | torch.device | None = None,
        *,
        text_embedding: TextEmbedding | None = None,
        weights: Mapping[str, torch.Tensor] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config = config or EncoderConfig()
        if config.source is not None and weights is None:
            # Random weights under a checkpoint's label would show made-up numbers as real ones.
            raise ValueError(
                f"config.source={config.source!r} names a checkpoint, but no weights were given: "
                "load it with encoder.load_pretrained"
            )
        self.name = name
        # Built on the meta device so that the modules' own initialisers (which draw from
        # the global RNG) never run; every tensor is then filled from weights or the seed.
        with torch.device("meta"):
            # Registered first: the seed draws a learned position table before the layers'
            # weights, so a config keeps the numbers it has always had.
            self.text_embedding = HashedTextEmbedding(config) if text_embedding is None else text_embedding
            self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
            self.final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.final_norm else None
        self.to_empty(device="cpu")
        if weights is None:
            self._init_weights(torch.Generator().manual_seed(config.seed))
        else:
            self.load_state_dict(weights)
        self.requires_grad_(False)
        self.eval()
        self.to(resolve_device(device))

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator) -> None:
        """Xavier-uniform matrices (as torch's attention uses), zero biases, unit LayerNorms."""
        for name, param in self.named_parameters():
            if name.endswith("position_table"):
                param.normal_(generator=generator)
            elif ".norm" in name or name.startswith("final_norm"):
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("weight"):
                nn.init.xavier_uniform_(param, generator=generator)
            else:
                param.zero_()

    def first_layers(self, n_layers: int) -> Encoder:
        """This encoder cut after its first `n_layers` layers, sharing its modules and weights
        (nothing is copied or loaded again): a lesson on a checkpoint's early layers, or a
        classroom picking different depths, keeps one model in memory."""
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= self.config.n_layers:
            raise ConfigError("n_layers", n_layers, "range", low=1, high=self.config.n_layers)
        if n_layers == self.config.n_layers:
            return self
        view = copy.copy(self)  # a new Module object whose attributes are this one's
        view._modules = dict(self._modules)  # its own table of children, holding the same children
        view._modules["layers"] = self.layers[:n_layers]  # a new ModuleList of the same layers
        view.config = dataclasses.replace(self.config, n_layers=n_layers)
        return view

    @property
    def device(self) -> torch.device:
        """Where the weights live and the trace is computed."""
        return self.layers[0].qkv_proj.weight.device

    @property
    def learned_positions(self) -> torch.Tensor | None:
        """(max positions, d_model) the learned position table, or None when positions are not learned."""
        return self.text_embedding.learned_positions

    def positional_encoding(self, n_tokens: int) -> torch.Tensor:
        """(n, d_model) positions to add to the token embeddings (zeros for "none")."""
        return self.text_embedding.positional_encoding(n_tokens).to(self.device)

    def embed(self, tokens: Sequence[str]) -> torch.Tensor:
        """(n, d_model) embeddings of the tokens (see `encoder.embeddings` for random weights)."""
        return self.text_embedding.embed(tokens).to(self.device)

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
        no_positions = torch.zeros_like(x)  # (n, d_model): x already holds them, if any
        return self._run(labels, [False] * n_tokens, x, no_positions, x, key_padding_mask)

    @torch.inference_mode()
    def trace_text(
        self,
        text: str,
        *,
        scale: bool | None = None,
        temperature: float | None = None,
        ablate: Collection[tuple[int, int]] = (),
    ) -> Trace:
        """Tokenize, embed, add positions and run the stack, with this model's own tokenizer.

        Random weights split text with `encoder.tokenize`; a checkpoint uses its own word
        pieces, `[CLS]` and `[SEP]` included. `ablate`: see `trace_tokens`.
        """
        tokens = self.text_embedding.tokenize(text, self.config.limits.max_tokens)
        return self.trace_tokens(tokens, scale=scale, temperature=temperature, ablate=ablate)

    @torch.inference_mode()
    def trace_tokens(
        self,
        tokens: Sequence[str],
        *,
        key_padding_mask: torch.Tensor | None = None,
        scale: bool | None = None,
        temperature: float | None = None,
        ablate: Collection[tuple[int, int]] = (),
    ) -> Trace:
        """Embed, add positions and run the stack on tokens that are already split.

        For a caller that tokenized once and traces again, or that truncates the tokens of
        a `TooManyTokensError`; a checkpoint refuses a token missing from its vocabulary.
        `key_padding_mask` (n,) marks padded keys with True (see `encoder.padded_trace`).
        `scale` and `temperature` override the config's for this trace only (one model serves
        the √d_k experiment's scaled and unscaled runs); the trace's config says what ran.
        `ablate` lists (layer, head) pairs, 0-based, to knock out: their context vectors are set
        to zero before W_O, so every later layer and the output run without them.
        """
        tokens = check_token_count(list(tokens), self.config.limits.max_tokens)
        embeddings = self.embed(tokens)  # (n, d_model)
        positions = self.positional_encoding(len(tokens))  # (n, d_model)
        layer_input = self.text_embedding.layer_input(embeddings, positions)  # (n, d_model)
        unknown = self.text_embedding.unknown(tokens)
        return self._run(
            tokens, unknown, embeddings, positions, layer_input, key_padding_mask, scale, temperature, ablate
        )

    def longest_prefix(self, text: str) -> str:
        """The longest start of `text` whose tokens fit the cap, cut at a space where there is one.

        For offering to truncate a long paste: tokenizers differ (word pieces, one token per
        ideograph), so the cut is found by bisection with this model's own tokenizer.
        """
        max_tokens = self.config.limits.max_tokens

        def fits(length: int) -> bool:
            try:
                self.text_embedding.tokenize(text[:length], max_tokens)
            except EmptyTextError:
                return True
            except TooManyTokensError:
                return False
            return True

        low, high = 0, len(text)  # fits(low) holds; find the largest such length
        while low < high:
            middle = (low + high + 1) // 2
            if fits(middle):
                low = middle
            else:
                high = middle - 1
        space = text.rfind(" ", 0, low + 1)  # do not end in the middle of a word
        return text[: space if space > 0 and fits(space) and low < len(text) else low].rstrip()

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
        unknown: list[bool],
        embeddings: torch.Tensor,
        positions: torch.Tensor,
        layer_input: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        scale: bool | None = None,
        temperature: float | None = None,
        ablate: Collection[tuple[int, int]] = (),
    ) -> Trace:
        """Run every layer on layer_input (n, d_model); the other tensors only go into the trace."""
        knocked_out = self._check_ablate(ablate)
        config = self.config
        if scale is not None or temperature is not None:  # the trace says how its scores were scaled
            config = dataclasses.replace(
                config,
                scale_scores=config.scale_scores if scale is None else scale,
                temperature=config.temperature if temperature is None else temperature,
            )
        allowed = attention_mask(
            len(tokens), causal=self.config.causal, key_padding_mask=key_padding_mask, device=self.device
        )
        layers = []
        hidden = layer_input
        for index, layer in enumerate(self.layers):
            heads = [head for at, head in knocked_out if at == index]
            layer_trace = layer.trace(
                hidden, allowed, scale=config.scale_scores, temperature=config.temperature, ablate=heads
            )
            layers.append(layer_trace)
            hidden = layer_trace.output
        output = self.final_norm(hidden) if self.final_norm is not None else hidden
        return Trace(
            config=config,
            tokens=tokens,
            unknown=unknown,
            embeddings=embeddings,
            positions=positions,
            input=layer_input,
            layers=layers,
            output=output,
            mask=allowed,
            ablated=knocked_out,
        )

    def _check_ablate(self, ablate: Collection[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
        """The (layer, head) pairs to knock out, checked and sorted; every head of every layer may go."""
        pairs = []
        for pair in ablate:
            layer, head = pair
            if not (0 <= layer < self.config.n_layers and 0 <= head < self.config.n_heads):
                raise ValueError(
                    f"ablate={pair!r} is out of range: layers are 0..{self.config.n_layers - 1} "
                    f"and heads 0..{self.config.n_heads - 1}"
                )
            pairs.append((int(layer), int(head)))
        return tuple(sorted(set(pairs)))
