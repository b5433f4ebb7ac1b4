"""The computations behind the experiments that explain attention: each function is one
experiment's numbers, computed from the real encoder or from its traces.

Each experiment runs `Encoder` itself and reads its trace; nothing is simulated with fresh
random matrices, so what a student sees is what the model computes:

- why Q·Kᵀ is divided by √d_k (`saturation_sweep`),
- why padding changes nothing for the real tokens (`padded_trace`, `padding_effect`),
- why a Transformer needs positions (`shuffled`, `unshuffle_weights`),
- what heads are for: queries and keys as points (`query_key_points`), what several tokens
  do together (`selected_attention`) and each head's habit (`head_habits`). These take numpy
  arrays, from a `Trace` or the page's `TraceArrays` alike. Knocking heads out is a run of the
  model (`trace_text(ablate=...)`), attention rollout a reading of a trace (`attention_rollout`).

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
from encoder.trace import Trace
from encoder.trace_arrays import TraceArrays

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

# The patterns a head's habit is named by, in the order `head_habits` scores them.
HABITS: tuple[str, ...] = ("previous", "next", "self", "first", "sep", "broad")
HABIT_THRESHOLD = 0.5  # a head whose best score is below this has no single habit ("mixed")
SEP_TOKENS = frozenset({"[SEP]", "</s>"})


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


def shuffle_difference(
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


# --- what heads are for ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryKeyPoints:
    """One head's queries and keys in one 2-D plane: the first two principal components of all
    2n vectors together, so that nearness between a query and a key is visible."""

    queries: np.ndarray  # (n, 2)
    keys: np.ndarray  # (n, 2)
    explained: np.ndarray  # (2,) share of the variance each axis holds


def query_key_points(q: np.ndarray, k: np.ndarray) -> QueryKeyPoints:
    """Project one head's q (n, d_head) and k (n, d_head) onto the principal plane fitted on both
    jointly (centred on their common mean), as AttentionViz does."""
    queries, keys = np.asarray(q, dtype=np.float64), np.asarray(k, dtype=np.float64)
    if queries.shape != keys.shape or queries.ndim != 2:
        raise ValueError(f"q {queries.shape} and k {keys.shape} must both be (n, d_head)")
    points = np.concatenate([queries, keys])  # (2n, d)
    centred = points - points.mean(axis=0)
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    axes = directions[:2]  # (≤2, d)
    projected = centred @ axes.T  # (2n, ≤2)
    if projected.shape[1] < 2:  # d_head 1: the second axis is empty
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    variance = singular**2
    total = variance.sum()
    explained = np.zeros(2)
    explained[: min(2, variance.size)] = (variance[:2] / total) if total > 0 else 0.0
    n = queries.shape[0]
    return QueryKeyPoints(projected[:n], projected[n:], explained)


def selected_attention(weights: np.ndarray, picked: Sequence[int], *, as_keys: bool = False) -> np.ndarray:
    """(layers, heads, n) what several tokens do together in every head of weights (layers, heads,
    n, n): as queries, the mean of their rows, over the keys (each row sums to 1, so the mean does
    too: where they look together); as keys, each query's weight on them, summed (≤ 1: who looks at
    them). The step view's strip and grid caption each head with the largest of these."""
    stack = np.asarray(weights, dtype=np.float64)  # (L, H, n, n)
    chosen = sorted(set(picked))
    if not chosen or not all(0 <= i < stack.shape[-1] for i in chosen):
        raise ValueError(f"picked={list(picked)!r}: choose at least one position from 0 to {stack.shape[-1] - 1}")
    if as_keys:
        return stack[..., chosen].sum(axis=-1)  # (L, H, n queries)
    return stack[..., chosen, :].mean(axis=-2)  # (L, H, n keys)


def head_habits(weights: np.ndarray, tokens: Sequence[str]) -> np.ndarray:
    """(layers, heads, len(HABITS)) how strongly each head follows each usual pattern, in [0, 1]:
    the mean weight its queries put on the previous token, the next one, themselves, the first
    token, the `[SEP]` tokens, and `broad`: 1 minus the rows' mean total-variation distance from the
    uniform row, over its largest (1 − 1/n), so 1 is uniform and 0 one-hot. A measure of weight,
    like the other scores: entropy over ln n would give a row with half its weight on one of 16
    keys 0.74 and call most heads of a trained model broad; this gives that row 0.53.
    A pattern with no query to score (the previous token of a one-token sentence) scores 0."""
    stack = np.asarray(weights, dtype=np.float64)  # (L, H, n, n)
    n = stack.shape[-1]
    if len(tokens) != n:
        raise ValueError(f"weights has {n} keys but {len(tokens)} tokens were given")
    scores = np.zeros((*stack.shape[:2], len(HABITS)))
    rows = np.arange(n)
    if n > 1:
        scores[..., 0] = stack[..., rows[1:], rows[1:] - 1].mean(axis=-1)  # previous
        scores[..., 1] = stack[..., rows[:-1], rows[:-1] + 1].mean(axis=-1)  # next
    scores[..., 2] = stack[..., rows, rows].mean(axis=-1)  # self
    scores[..., 3] = stack[..., :, 0].mean(axis=-1)  # first ([CLS] in BERT)
    separators = np.array([token in SEP_TOKENS for token in tokens])
    if separators.any():
        scores[..., 4] = stack[..., :, separators].sum(axis=-1).mean(axis=-1)
    if n > 1:
        distance = 0.5 * np.abs(stack - 1 / n).sum(axis=-1)  # (L, H, n): each row's from uniform
        scores[..., 5] = 1 - distance.mean(axis=-1) / (1 - 1 / n)
    return scores


def habit_names(scores: np.ndarray) -> np.ndarray:
    """(layers, heads) the name of each head's strongest habit, or "mixed" below `HABIT_THRESHOLD`."""
    best = scores.argmax(axis=-1)
    names = np.array(HABITS, dtype=object)[best]
    return np.where(scores.max(axis=-1) >= HABIT_THRESHOLD, names, "mixed")
