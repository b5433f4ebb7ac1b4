"""Named intermediates of one encoder run: what the app draws and the tests check.

Every tensor is detached and belongs to one sequence of `n` tokens (no batch axis). The
field order of each dataclass is the order in which the encoder computes the values, and
`tests/encoder/test_trace.py` holds that list so a rename cannot slip through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import torch

from encoder.config import EncoderConfig

if TYPE_CHECKING:  # model.py imports this module
    from encoder.model import Encoder


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
        representation after layer l draws on each input token (see `encoder.analysis`)."""
        from encoder.analysis import attention_rollout

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


def trace_nbytes(config: EncoderConfig, tokens: Sequence[str]) -> int:
    """The bytes a `TraceArrays` of these tokens holds, known before the run: per layer twelve
    (n, d_model) float32 arrays (Q, K, V and the context among them), three (heads, n, n) maps,
    the FFN's (n, d_ff) and the weights again in the stack of every layer's; then the
    embeddings, positions, input and output, the tokens as text and which are unknown, and the
    mask (counted whether or not the run has one). A cache sizes its entries by it."""
    n, d, heads = len(tokens), config.d_model, config.n_heads
    per_layer = 12 * n * d + 4 * heads * n * n + n * config.d_ff
    text = 4 * n * max((len(token) for token in tokens), default=0) + n  # numpy's UTF-32 strings, bools
    return 4 * (config.n_layers * per_layer + 4 * n * d) + text + n * n


@dataclass(frozen=True)
class TraceArrays:
    """A trace as numpy arrays on the CPU, with what computed it and how long it took.

    What an interface keeps between redraws: no tensors and no device. Every array is
    read-only, so one copy can be shared by every session of a server that shows the same
    run (a class of thirty on the largest model would otherwise hold thirty copies); each
    layer's `weights` array is a view of the stacked `weights`, not a second copy.
    """

    config: EncoderConfig
    model_name: str | None  # the checkpoint's name; None for random weights
    tokens: list[str]
    unknown: list[bool]  # per token: not in the checkpoint's vocabulary ([UNK])
    arrays: dict[str, np.ndarray]  # Trace.to_numpy(): "layer0.weights" -> (heads, n, n), ...
    weights: np.ndarray  # (layers, heads, n, n): every head's attention, stacked for the overviews
    device: str  # "CPU", "CUDA" or "MPS": where the encoder ran
    milliseconds: float  # how long the encoder ran
    parameters: int  # the model's parameter count

    @classmethod
    def of_run(cls, model: Encoder, run: Callable[[], Trace]) -> TraceArrays:
        """Run `run` (a trace of `model`), timing it to the end of the device's work, and keep
        the trace as numpy arrays with the model's name, shape, device and parameter count."""
        start = time.perf_counter()
        trace = run()
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        milliseconds = (time.perf_counter() - start) * 1000
        arrays = trace.to_numpy()
        weights = np.stack([arrays[f"layer{i}.weights"] for i in range(model.config.n_layers)])  # (L, H, n, n)
        for array in (*arrays.values(), weights):
            array.flags.writeable = False
        arrays |= {f"layer{i}.weights": weights[i] for i in range(model.config.n_layers)}  # read-only views
        return cls(
            config=model.config,
            model_name=model.name,
            tokens=trace.tokens,
            unknown=list(trace.unknown),
            arrays=arrays,
            weights=weights,
            device=model.device.type.upper(),
            milliseconds=milliseconds,
            parameters=sum(p.numel() for p in model.parameters()),
        )

    def layer(self, index: int, name: str) -> np.ndarray:
        """One intermediate of one layer, e.g. layer(0, "weights") -> (heads, n, n)."""
        return self.arrays[f"layer{index}.{name}"]

    def residual_stream(self) -> np.ndarray:
        """(layers + 1, n, d_model): each token's vector entering layer 1, then after every layer."""
        outputs = [self.layer(i, "output") for i in range(self.config.n_layers)]
        return np.stack([self.arrays["input"], *outputs])
