"""The computations behind the experiments that explain attention, all on the real encoder.

Each experiment runs `Encoder` itself and reads its trace; nothing is simulated with fresh
random matrices, so what a student sees is what the model computes:

- why Q·Kᵀ is divided by √d_k (`saturation_sweep`),
- why padding changes nothing for the real tokens (`padded_trace`),
- why a Transformer needs positions (`shuffled`, `unshuffle_weights`).

Caching is the app's business: these functions recompute on every call.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from encoder.config import LIMITS, EncoderConfig, Positional
from encoder.model import Encoder
from encoder.tokenizer import check_token_count
from encoder.trace import Trace, TraceArrays

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def row_entropy(weights: torch.Tensor) -> torch.Tensor:
    """(..., n) the entropy in nats of each row of attention weights (..., n, n).

    0 for a one-hot row, ln(n) for a uniform one: how spread out a query's attention is.
    A masked key has weight 0, and 0·log 0 counts as 0 (its limit), not as NaN.
    """
    if weights.ndim < 2 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights have shape {tuple(weights.shape)}; expected (..., n, n)")
    return -torch.special.xlogy(weights, weights).sum(-1)  # (..., n)


@dataclass(frozen=True)
class SaturationPoint:
    """Layer 1 of one head width d_k, with and without the division by √d_k, on the same weights."""

    d_k: int
    score_variance: float  # variance of the raw Q·Kᵀ over all heads, queries and keys (population, ddof=0)
    max_weight_scaled: float  # mean over rows of the row's largest softmax weight, scores / √d_k
    max_weight_unscaled: float  # the same without the division: near 1 means one-hot rows
    entropy_scaled: float  # mean row entropy in nats, scores / √d_k
    entropy_unscaled: float  # the same without the division: near 0 means one-hot rows
    uniform_entropy: float  # ln(n): the entropy of a row that attends to every token equally


def saturation_config(
    d_k: int,
    *,
    n_heads: int = 1,
    seed: int = 0,
    positional: Positional = "sinusoidal",
) -> EncoderConfig:
    """A one-layer encoder with `n_heads` heads of width d_k: one point of the √d_k sweep.

    Its weights depend on the seed and the shape only: one model gives both the scaled and
    the unscaled trace (`trace_tokens(..., scale=False)`), on identical weights.
    """
    if not _is_int(n_heads) or not 1 <= n_heads <= LIMITS.max_heads:
        raise ValueError(f"n_heads={n_heads!r} is invalid: must be an integer from 1 to {LIMITS.max_heads}")
    max_d_k = LIMITS.max_d_model // n_heads
    if not _is_int(d_k) or not 1 <= d_k <= max_d_k:
        raise ValueError(
            f"d_k={d_k!r} is invalid: with n_heads={n_heads} it must be an integer from 1 to {max_d_k}, "
            f"so that d_model = d_k x n_heads stays within {LIMITS.max_d_model}"
        )
    return EncoderConfig(
        d_model=d_k * n_heads,
        n_heads=n_heads,
        n_layers=1,
        seed=seed,
        positional=positional,
    )


def saturation_sweep(
    tokens: Sequence[str],
    d_ks: Sequence[int] = (4, 8, 16, 32, 64, 128, 256),
    *,
    n_heads: int = 1,
    seed: int = 0,
    positional: Positional = "sinusoidal",
    temperature: float = 1.0,
) -> list[SaturationPoint]:
    """Why "Attention Is All You Need" divides Q·Kᵀ by √d_k, measured on the real encoder.

    A raw score q·k = Σ q_i·k_i sums d_k products of roughly independent, zero-mean,
    unit-variance terms, so its variance grows in proportion to d_k and its spread with
    √d_k. Fed to the softmax unscaled, wide heads give a few scores that dwarf the rest:
    the largest weight of each row tends to 1 and the row entropy to 0 (every query stares
    at one key, and the gradient through the softmax vanishes). Dividing by √d_k brings the
    variance back to about 1 whatever d_k is, so the scaled rows stay spread out.

    For each d_k this traces `tokens` through one `saturation_config(d_k, ...)` model, with
    and without the division, and summarises layer 1 over all heads and queries (see
    `SaturationPoint`).
    """
    if not d_ks:
        raise ValueError("d_ks is empty: give at least one head width")
    points = []
    for d_k in d_ks:
        model = Encoder(saturation_config(d_k, n_heads=n_heads, seed=seed, positional=positional))
        scaled = model.trace_tokens(tokens, temperature=temperature).layers[0]
        unscaled = model.trace_tokens(tokens, scale=False, temperature=temperature).layers[0]
        n = scaled.weights.shape[-1]
        points.append(
            SaturationPoint(
                d_k=d_k,
                score_variance=float(scaled.scores.double().var(unbiased=False)),
                max_weight_scaled=float(scaled.weights.amax(-1).mean()),
                max_weight_unscaled=float(unscaled.weights.amax(-1).mean()),
                entropy_scaled=float(row_entropy(scaled.weights).mean()),
                entropy_unscaled=float(row_entropy(unscaled.weights).mean()),
                uniform_entropy=math.log(n),
            )
        )
    return points


def padded_trace(model: Encoder, tokens: Sequence[str], n_padding: int, pad_token: str = "[PAD]") -> Trace:
    """Trace `tokens` followed by `n_padding` pad tokens that every query is forbidden to attend to.

    Batches pad short sentences to a common length; the key padding mask gives each pad key
    a score of -inf, hence a weight of exactly 0, so the real tokens' weights, contexts and
    outputs are those of the unpadded sentence. The pad rows are still computed (they
    attend to the real tokens) and are simply ignored downstream. The returned trace's
    `mask` marks the pad keys as not allowed.
    """
    max_tokens = model.config.limits.max_tokens
    tokens = check_token_count(list(tokens), max_tokens)
    max_padding = max_tokens - len(tokens)
    if not _is_int(n_padding) or not 0 <= n_padding <= max_padding:
        raise ValueError(
            f"n_padding={n_padding!r} is invalid: with {len(tokens)} tokens it must be an integer "
            f"from 0 to {max_padding}, so that at most {max_tokens} tokens are traced"
        )
    key_padding_mask = torch.tensor([False] * len(tokens) + [True] * n_padding)  # (n + pad,)
    return model.trace_tokens(tokens + [pad_token] * n_padding, key_padding_mask=key_padding_mask)


def shuffled(tokens: Sequence[str], seed: int = 0, *, keep: Collection[str] = ()) -> tuple[list[str], list[int]]:
    """A shuffled copy of `tokens` and the `order` with `shuffled[i] == tokens[order[i]]`.

    Drawn from a private generator seeded with `seed` (the global RNG is left alone), so a
    lesson shows the same shuffle every time. Tokens in `keep` stay where they are (a
    trained model's [CLS] first and [SEP] last: a sentence, not a shuffle of its markers);
    the others are shuffled among their places. For two or more movable tokens the order
    is never the identity: a draw that changes nothing is rotated by one place, so the
    demo always moves words.
    """
    tokens = list(tokens)
    movable = [i for i, token in enumerate(tokens) if token not in keep]  # the places that take part
    drawn = np.random.default_rng(seed).permutation(len(movable))  # (m,)
    if len(movable) >= 2 and np.array_equal(drawn, np.arange(len(movable))):
        drawn = np.roll(drawn, 1)  # (m,)
    order_list = list(range(len(tokens)))
    for place, source in zip(movable, drawn.tolist(), strict=True):
        order_list[place] = movable[source]
    return [tokens[i] for i in order_list], order_list


def unshuffle_weights(weights: ArrayT, order: Sequence[int]) -> ArrayT:
    """Weights (..., n, n) of the shuffled sentence, re-indexed into the original token order.

    The shuffled sentence's query i and key j are the original tokens order[i] and order[j];
    this puts each weight back at (order[i], order[j]). Without positions (and without a
    causal mask, which is tied to positions) self-attention is blind to order, so the
    result equals the original sentence's weights: evidence that order comes only from the
    positional encoding.
    """
    if weights.ndim < 2 or weights.shape[-2] != weights.shape[-1]:
        raise ValueError(f"weights have shape {tuple(weights.shape)}; expected (..., n, n)")
    n = weights.shape[-1]
    if sorted(order) != list(range(n)):
        raise ValueError(f"order={list(order)!r} is not a permutation of 0..{n - 1} for {n} tokens")
    inverse = np.argsort(np.asarray(order))  # (n,): original token a sits at position inverse[a]
    if isinstance(weights, torch.Tensor):
        index = torch.as_tensor(inverse, device=weights.device)  # (n,)
        return weights[..., index, :][..., index]  # (..., n, n)
    return weights[..., inverse, :][..., inverse]  # (..., n, n)


def _is_int(value: object) -> bool:
    # bool is an int subclass, but n_padding=True is a bug, not one pad token.
    return isinstance(value, int) and not isinstance(value, bool)


# Below this, a difference of two attention maps is float rounding: the maps are the same.
SAME_WEIGHTS_TOLERANCE = 1e-5


def permutation_difference(
    original: np.ndarray, shuffled_weights: np.ndarray, order: Sequence[int]
) -> tuple[np.ndarray, float]:
    """The shuffled sentence's weights (n, n) put back in the original order, and their largest
    difference from the original sentence's (n, n): below SAME_WEIGHTS_TOLERANCE when the
    model is blind to word order (no positions, no causal mask)."""
    restored = unshuffle_weights(shuffled_weights, order)  # (n, n)
    return restored, float(np.abs(restored - original).max())


@dataclass(frozen=True)
class PaddingEffect:
    """What masked padding does to a sentence: nothing, up to rounding."""

    output_change: float  # the largest change of a real token's output vector
    weight_on_padding: float  # the largest total weight a real token's query gives the pad keys


def padding_effect(plain: Trace | TraceArrays, padded: Trace | TraceArrays) -> PaddingEffect:
    """Compare a sentence's trace with its padded one (`padded_trace`): the real tokens' outputs
    and how much of their attention goes to the pad keys, over every layer and head."""
    plain_arrays = plain.arrays if isinstance(plain, TraceArrays) else plain.to_numpy()
    padded_arrays = padded.arrays if isinstance(padded, TraceArrays) else padded.to_numpy()
    n = plain_arrays["output"].shape[0]
    n_layers = sum(1 for name in plain_arrays if name.endswith(".weights"))
    change = float(np.abs(padded_arrays["output"][:n] - plain_arrays["output"]).max())
    on_padding = max(float(padded_arrays[f"layer{i}.weights"][:, :n, n:].sum(-1).max()) for i in range(n_layers))
    return PaddingEffect(change, on_padding)
