"""The five steps of attention for one query token, with the numbers of the trace.

The classic walk-through: dot products with every key, divided by √d_k, exponentiated,
normalised into weights, and the value vectors summed with those weights. The numbers
shown are the trace's own (its scores, scaled scores, weights and context row); only the
exponentials and the weighted values, which the encoder never stores, are computed here.
Before anything is shown, the trace's rows are checked against the formulas, so that a
slice of the wrong head or layer fails loudly instead of teaching wrong arithmetic.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from viz.checks import float_array, require_square
from viz.style import markdown_literal

# Ids of the columns of `worked_example_rows`, in order. Stable on purpose: the app maps
# them to headers in the user's language.
WORKED_EXAMPLE_COLUMNS: tuple[str, ...] = ("key", "q·k", "÷√d_k", "exp", "weight")
# How far the trace's rows may stray from the formulas (relative to the row's largest value)
# before they are taken to be slices of different heads. float32 rounding stays below 1e-5;
# TF32 matmuls on a GPU below 1e-3.
CONSISTENCY_TOLERANCE = 1e-2
# e^709 is the largest power of e a float64 holds; above it the walk-through subtracts the
# row maximum, as every softmax implementation does.
MAX_UNSHIFTED_EXPONENT = 700.0


@dataclass(frozen=True)
class WorkedExample:
    """Attention of one query token over every key, step by step (one head).

    `exps` are exp(scaled - shift). The shift is 0, so the numbers are the e^{s_j} a
    student computes by hand, unless the largest score would overflow a float
    (e^710 does); then it is that largest score, as softmax implementations subtract.
    The shift cancels in exps / exp_sum, so the weights are the same either way; say so
    when it is not 0.
    """

    query_index: int
    d_head: int
    sqrt_d_head: float  # √d_k, the divisor of step 3
    dots: np.ndarray  # (n,)  q_i·k_j: the trace's scores row
    scaled: np.ndarray  # (n,)  the trace's scaled scores row, -inf where the key is masked
    shift: float  # subtracted before exponentiating: 0 unless e^max(scaled) would overflow
    exps: np.ndarray  # (n,)  exp(scaled - shift); 0 where masked
    exp_sum: float  # sum of exps: the softmax denominator
    weights: np.ndarray  # (n,)  the trace's weights row: exps / exp_sum
    weighted_values: np.ndarray  # (n, d_head)  weights[j] · v_j
    context: np.ndarray  # (d_head,)  the trace's context row: the sum of weighted_values


def worked_example(
    query_index: int,
    q: np.ndarray,  # (n, d_head), one head
    k: np.ndarray,  # (n, d_head)
    v: np.ndarray,  # (n, d_head)
    scores: np.ndarray,  # (n, n)
    scaled_scores: np.ndarray,  # (n, n)
    weights: np.ndarray,  # (n, n)
    context: np.ndarray,  # (n, d_head)
) -> WorkedExample:
    """The walk-through for query `query_index` (0-based) of one head of the trace."""
    q, k, v, context = (
        float_array(array, name, "(n, d_head)") for array, name in ((q, "q"), (k, "k"), (v, "v"), (context, "context"))
    )
    scores, scaled_scores, weights = (
        float_array(array, name, "(n, n)")
        for array, name in ((scores, "scores"), (scaled_scores, "scaled_scores"), (weights, "weights"))
    )
    n, d_head = q.shape
    for name, array in (("k", k), ("v", v), ("context", context)):
        if array.shape != q.shape:
            raise ValueError(f"{name} has shape {array.shape} but q has shape {q.shape}")
    for name, array in (("scores", scores), ("scaled_scores", scaled_scores), ("weights", weights)):
        require_square(array, name)
        if array.shape[0] != n:
            raise ValueError(f"{name} is {array.shape[0]} x {array.shape[0]} but q has {n} tokens")
    index = query_position(query_index, n)

    sqrt_d_head = math.sqrt(d_head)
    dots = scores[index].astype(np.float64)  # (n,)
    scaled = scaled_scores[index].astype(np.float64)  # (n,)
    row_weights = weights[index].astype(np.float64)  # (n,)
    if not np.isfinite(scaled).any():
        raise ValueError(f"query {index} has no key to attend to: its scaled scores are all -inf")
    largest = float(scaled.max())
    shift = largest if largest > MAX_UNSHIFTED_EXPONENT else 0.0
    exps = np.exp(scaled - shift)  # (n,): exp(-inf) = 0 for masked keys
    exp_sum = float(exps.sum())
    weighted_values = row_weights[:, None] * v.astype(np.float64)  # (n, d_head)
    context_row = context[index].astype(np.float64)  # (d_head,)

    finite = np.isfinite(scaled)
    require_close("scores", dots, q[index].astype(np.float64) @ k.astype(np.float64).T, f"q[{index}]·kᵀ")
    require_close("scaled_scores", scaled[finite], dots[finite] / sqrt_d_head, f"scores[{index}] / √{d_head}")
    require_close("weights", row_weights, exps / exp_sum, f"softmax(scaled_scores[{index}])")
    require_close("context", context_row, weighted_values.sum(axis=0), f"weights[{index}]·v")
    return WorkedExample(
        query_index=index,
        d_head=d_head,
        sqrt_d_head=sqrt_d_head,
        dots=dots,
        scaled=scaled,
        shift=shift,
        exps=exps,
        exp_sum=exp_sum,
        weights=row_weights,
        weighted_values=weighted_values,
        context=context_row,
    )


def query_position(query_index: int, n_tokens: int) -> int:
    """`query_index` as a plain int, if it names one of the n tokens (0-based, no wrap-around)."""
    try:
        index = operator.index(query_index)
    except TypeError:
        raise ValueError(f"query_index={query_index!r} is invalid: must be an integer") from None
    if isinstance(query_index, (bool, np.bool_)) or not 0 <= index < n_tokens:
        raise ValueError(f"query_index={query_index!r} is invalid: must be from 0 to {n_tokens - 1}")
    return index


def require_close(name: str, row: np.ndarray, recomputed: np.ndarray, formula: str) -> None:
    """Fail when a row of the trace disagrees with its formula beyond rounding."""
    scale = max(1.0, float(np.abs(recomputed).max(initial=0.0)))
    error = float(np.abs(row - recomputed).max(initial=0.0))
    if error > CONSISTENCY_TOLERANCE * scale:
        raise ValueError(
            f"{name} row differs from {formula} by {error:.3g}: the arrays do not come from the same head and layer"
        )


def worked_example_rows(
    example: WorkedExample, key_tokens: Sequence[str], decimals: int = 4
) -> list[dict[str, object]]:
    """One row per key for a table, under the ids of `WORKED_EXAMPLE_COLUMNS`.

    "key" is the key token as given (a table shows text literally, so it is not escaped);
    "q·k", "÷√d_k", "exp" and "weight" are the row's dots, scaled scores, exps and weights
    rounded to `decimals`. A masked key's "÷√d_k" is -inf, as in the trace.
    """
    if isinstance(key_tokens, str):
        raise TypeError(f"key_tokens must be a sequence of strings, not the single string {key_tokens!r}")
    tokens = list(key_tokens)
    if len(tokens) != example.dots.size:
        raise ValueError(f"the example has {example.dots.size} keys but {len(tokens)} key tokens were given")
    columns = zip(tokens, example.dots, example.scaled, example.exps, example.weights, strict=True)
    return [
        dict(zip(WORKED_EXAMPLE_COLUMNS, (str(token), *(round(float(x), decimals) for x in numbers)), strict=True))
        for token, *numbers in columns
    ]


def softmax_latex(example: WorkedExample, decimals: int = 3) -> str:
    """Step 4 for one query row as LaTeX, with its numbers: A_ij = e^s_j / Σ_m e^s_m = w_j.

    Only numbers go into the formula, never a token, so nothing typed by a user reaches
    the LaTeX renderer. Masked keys (-inf) are left out, as they are of the softmax.
    """
    visible = [
        (j, s, w) for j, (s, w) in enumerate(zip(example.scaled, example.weights, strict=True)) if np.isfinite(s)
    ]
    terms = " + ".join(rf"e^{{{s:.{decimals}f}}}" for _, s, _ in visible)
    rows = [
        rf"A_{{{example.query_index + 1},{j + 1}}} &= \frac{{e^{{{s:.{decimals}f}}}}}{{{terms}}} = {w:.4f}"
        for j, s, w in visible
    ]
    return r"\begin{aligned}" + r" \\[4pt] ".join(rows) + r"\end{aligned}"


def weighted_sum_rows(
    example: WorkedExample,
    key_tokens: Sequence[str],
    dims: int,
    *,
    key: str,
    total: str,
    trace: str,
    value: str = "weight·v",
    decimals: int = 4,
    markdown: bool = True,
) -> list[dict[str, object]]:
    """Step 5 as table rows: weight_j · v_j for each key, their sum, and the trace's context row.

    The last two rows agree when the trace is right, which is the point of showing both.
    `dims` keeps the first dimensions only; `key`, `total` and `trace` are the (translated)
    header of the first column and the labels of the two last rows. The other columns are
    `value[0]`, `value[1]`, ...: a key's row holds its weighted value vector, not v_j itself,
    and the header says so, or a reader checking by hand multiplies by the weight twice.
    With `markdown`, tokens are made Markdown-literal, for st.table; without, they stay as
    typed (st.dataframe).
    """
    columns = [f"{value}[{d}]" for d in range(dims)]

    def row(label: str, values: np.ndarray) -> dict[str, object]:
        return {key: label, **{c: round(float(x), decimals) for c, x in zip(columns, values[:dims], strict=True)}}

    rows = [
        row(markdown_literal(str(token)) if markdown else str(token), vector)
        for token, vector in zip(key_tokens, example.weighted_values, strict=True)
    ]
    rows.append(row(total, example.weighted_values.sum(axis=0)))
    rows.append(row(trace, example.context))
    return rows
