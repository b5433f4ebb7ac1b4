"""What heads are for: attention followed through the stack, queries and keys as points, and
each head's habit. Numpy in, numpy out: they work on a `Trace` (torch) or on the page's
`TraceArrays` (numpy) alike. Knocking heads out is a run of the model (`trace_text(ablate=...)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The patterns a head's habit is named by, in the order `head_habits` scores them.
HABITS: tuple[str, ...] = ("previous", "next", "self", "first", "sep", "broad")
HABIT_THRESHOLD = 0.5  # a head whose best score is below this has no single habit ("mixed")
SEP_TOKENS = frozenset({"[SEP]", "</s>"})


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
