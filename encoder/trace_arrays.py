"""A trace as an interface keeps it: numpy arrays on the CPU with what computed them
(`TraceArrays`), and the bytes they will take, known before the run (`trace_nbytes`).

Apart from `encoder.trace` because it is built from a run of the model: the model imports the
trace's dataclasses, and this module imports the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from encoder.config import EncoderConfig
from encoder.model import Encoder
from encoder.trace import Trace


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
    key_tokens: list[str] | None = None  # the keys when they are not `tokens` (cross-attention: (L, H, n, n_keys))

    @classmethod
    def of_run(cls, model: Encoder, make_trace: Callable[[], Trace]) -> TraceArrays:
        """Call `make_trace` (a trace of `model`), timing it to the end of the device's work, and keep
        the trace as numpy arrays with the model's name, shape, device and parameter count."""
        start = time.perf_counter()
        trace = make_trace()
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        milliseconds = (time.perf_counter() - start) * 1000
        return cls.frozen(
            config=model.config,
            model_name=model.name,
            tokens=trace.tokens,
            unknown=list(trace.unknown),
            arrays=trace.to_numpy(),
            device=model.device.type.upper(),
            milliseconds=milliseconds,
            parameters=sum(p.numel() for p in model.parameters()),
        )

    @classmethod
    def frozen(cls, *, arrays: dict[str, np.ndarray], **fields: Any) -> TraceArrays:
        """`arrays` (named as `Trace.to_numpy` names them) made read-only, with every layer's weights
        stacked once and each `layerN.weights` a view of the stack; `fields` are the rest."""
        n_layers = fields["config"].n_layers
        weights = np.stack([arrays[f"layer{i}.weights"] for i in range(n_layers)])  # (L, H, n, n or n_keys)
        for array in (*arrays.values(), weights):
            array.flags.writeable = False
        arrays = arrays | {f"layer{i}.weights": weights[i] for i in range(n_layers)}  # read-only views
        return cls(arrays=arrays, weights=weights, **fields)

    def layer(self, index: int, name: str) -> np.ndarray:
        """One intermediate of one layer, e.g. layer(0, "weights") -> (heads, n, n)."""
        return self.arrays[f"layer{index}.{name}"]

    def residual_stream(self) -> np.ndarray:
        """(layers + 1, n, d_model): each token's vector entering layer 1, then after every layer."""
        outputs = [self.layer(i, "output") for i in range(self.config.n_layers)]
        return np.stack([self.arrays["input"], *outputs])
