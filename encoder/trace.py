"""Named intermediates of one encoder run: what the app draws and the tests check, and the
rollout that follows their attention through the stack (`attention_rollout`).

Every tensor is detached and belongs to one sequence of `n` tokens (no batch axis). The
field order of each dataclass is the order in which the encoder computes the values, and
`tests/encoder/test_trace.py` holds that list so a rename cannot slip through. This module
imports no other of `encoder` but the config: the model builds traces, and every reader of
a trace (the experiments, `TraceArrays`) can import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from encoder.config import EncoderConfig


@dataclass(frozen=True)
class LayerTrace:
    """One encoder layer, step by step.

    Post-LN (`layer_norm="post"`, the original Transformer):
        ffn_input = LayerNorm1(input + attn_output)
        output    = LayerNorm2(ffn_input + ffn_output)
    Pre-LN (`layer_norm="pre"`):
        attn_input = LayerNorm1(input),  ffn_input = LayerNorm2(input + attn_output)
        output     = input + attn_output + ffn_output
    No LayerNorm (`layer_norm="none"`): an encoder without LayerNorm (self_attn, linear1, linear2
    and residual sums, as the source article builds it):
        ffn_input = input + attn_output,  output = ffn_input + ffn_output
    """

    input: torch.Tensor  # (n, d_model)  the residual stream entering the layer
    attn_input: torch.Tensor  # (n, d_model)  what Q, K, V are projected from: input, or LayerNorm1(input) in pre-LN
    q: torch.Tensor  # (heads, n, d_head)  X·W_Q, split into heads
    k: torch.Tensor  # (heads, n, d_head)  X·W_K
    v: torch.Tensor  # (heads, n, d_head)  X·W_V
    scores: torch.Tensor  # (heads, n, n)  Q·Kᵀ
    scaled_scores: torch.Tensor  # (heads, n, n)  Q·Kᵀ/(√d_k·T) (no √d_k if not scale_scores); -inf where masked
    weights: torch.Tensor  # (heads, n, n)  softmax of the scaled scores
    context: torch.Tensor  # (heads, n, d_head)  weights·V
    attn_output: torch.Tensor  # (n, d_model)  concat·W_O + b_O
    attn_residual: torch.Tensor  # (n, d_model)  input + attn_output
    ffn_input: torch.Tensor  # (n, d_model)  LayerNorm1 (post-LN), LayerNorm2 (pre-LN) or attn_residual (none)
    ffn_hidden: torch.Tensor  # (n, d_ff)  ReLU or GELU of ffn_input·W_1 + b_1
    ffn_output: torch.Tensor  # (n, d_model)  ffn_hidden·W_2 + b_2
    ffn_residual: torch.Tensor  # (n, d_model)  the stream around the FFN + ffn_output
    output: torch.Tensor  # (n, d_model)  LayerNorm2(ffn_residual) (post-LN), else ffn_residual

    @property
    def concat(self) -> torch.Tensor:
        """(n, d_model) the heads' contexts side by side: what W_O multiplies.

        Derived on demand rather than stored: it holds exactly the numbers of `context`,
        and keeping a second copy per layer would slow every trace for nothing.
        """
        heads, n, d_head = self.context.shape
        return self.context.transpose(0, 1).reshape(n, heads * d_head)

    @classmethod
    def names(cls) -> list[str]:
        """The intermediates in the order they are computed."""
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Trace:
    """A whole run: the tokens, what enters the stack, every layer and the final output.

    What enters the stack depends on the model's front end:

    - Random weights: `embeddings` hash each token (`encoder.embeddings`), `positions`
      is the chosen positional encoding, and `input = embeddings + positions`.
    - A BERT checkpoint (`encoder.load_pretrained`): `embeddings` are rows of its
      word-piece table, `positions` is its learned position embedding plus its token-type
      embedding for segment A (BERT adds that one vector to every token of a single
      sentence; it belongs with the positions because it marks where a token sits, not
      what it is), and `input = LayerNorm(embeddings + positions)`, BERT's embedding
      LayerNorm, so `embeddings + positions` is the sum before that norm.
    - `Encoder.trace(x)`: `embeddings` and `input` are x, `positions` are zeros.

    `unknown` flags the tokens the vocabulary did not cover (BERT's `[UNK]`): they all
    share one embedding, whatever the text said, which an interface should point out.
    """

    config: EncoderConfig
    tokens: list[str]  # as the model's tokenizer wrote them: `[CLS]`, `##ing` for BERT
    unknown: list[bool]  # per token: True where the model saw its unknown-token embedding
    embeddings: torch.Tensor  # (n, d_model)  token embeddings
    positions: torch.Tensor  # (n, d_model)  added to them: positional encoding (+ BERT's token type)
    input: torch.Tensor  # (n, d_model)  what enters layer 0 (see above)
    layers: list[LayerTrace]
    output: torch.Tensor  # (n, d_model)  the last layer's output, after the final norm if any
    mask: torch.Tensor | None  # (n, n) bool: query i may attend to key j; None = all
    ablated: tuple[tuple[int, int], ...] = ()  # (layer, head) pairs whose context was set to zero before W_O

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_unknown(self) -> int:
        """How many tokens the vocabulary did not cover (0 for random weights)."""
        return sum(self.unknown)

    def to(self, device: str | torch.device) -> Trace:
        """The same trace with every tensor on `device` (e.g. "cpu" before drawing)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        layers = [LayerTrace(*(move(getattr(lt, n)) for n in LayerTrace.names())) for lt in self.layers]
        return Trace(
            config=self.config,
            tokens=list(self.tokens),
            unknown=list(self.unknown),
            embeddings=move(self.embeddings),
            positions=move(self.positions),
            input=move(self.input),
            layers=layers,
            output=move(self.output),
            mask=move(self.mask),
            ablated=self.ablated,
        )

    def rollout(self, residual: bool = True) -> np.ndarray:
        """(layers, n, n) attention rollout (Abnar & Zuidema 2020): how much each token's
        representation after layer l draws on each input token (see `attention_rollout`)."""
        return attention_rollout(torch.stack([layer.weights for layer in self.layers]).cpu().numpy(), residual)

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Every tensor as a numpy array under a flat name such as `layer0.weights`.

        The layout `np.savez` writes, so a download opens in any numpy session.
        """
        arrays: dict[str, np.ndarray] = {
            "tokens": np.array(self.tokens, dtype=str),
            "unknown": np.array(self.unknown, dtype=bool),
            "embeddings": self.embeddings.cpu().numpy(),
            "positions": self.positions.cpu().numpy(),
            "input": self.input.cpu().numpy(),
            "output": self.output.cpu().numpy(),
        }
        if self.mask is not None:
            arrays["mask"] = self.mask.cpu().numpy()
        for i, layer in enumerate(self.layers):
            for name in LayerTrace.names():
                arrays[f"layer{i}.{name}"] = getattr(layer, name).cpu().numpy()
        return arrays


def attention_rollout(weights: np.ndarray, residual: bool = True) -> np.ndarray:
    """(layers, n, n) attention rollout (Abnar & Zuidema 2020) of weights (layers, heads, n, n).

    R_0 = I and R_l = Â_l · R_(l−1), where Â_l is the mean over heads of layer l's weights; with
    `residual`, Â_l = ½·(that mean) + ½·I, each row renormalised to sum 1, for the residual
    connection that carries every token past attention. Row i of R_l: how much token i's
    representation after layer l draws on each input token. Returns R_1 .. R_L.
    """
    stack = np.asarray(weights, dtype=np.float64)  # (L, H, n, n)
    if stack.ndim != 4 or stack.shape[-1] != stack.shape[-2]:
        raise ValueError(f"weights has shape {stack.shape}; expected (layers, heads, n, n)")
    n = stack.shape[-1]
    rolled = np.eye(n)
    out = []
    for layer in stack:
        mixed = layer.mean(axis=0)  # (n, n)
        if residual:
            mixed = 0.5 * mixed + 0.5 * np.eye(n)
            mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        rolled = mixed @ rolled
        out.append(rolled)
    return np.stack(out)  # (L, n, n)
