"""Input checks shared by the figure builders.

A renderer that receives the wrong slice (another head, a transposed matrix, the tokens
of another sentence) would still draw a plausible picture. These checks turn such a bug
into an error that names the numbers that disagree, as bertviz does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from viz.style import token_labels


def float_array(values: np.ndarray, name: str, layout: str) -> np.ndarray:
    """`values` as float32 (what Plotly sends base64-encoded), if it has the axes of `layout`.

    `layout` spells the expected axes, e.g. "(n_queries, n_keys)"; its number of names is
    the number of dimensions required.
    """
    array = np.asarray(values)
    ndim = len(layout.strip("()").split(","))
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, but has shape {array.shape}")
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers, but has dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def labels_for(tokens: Sequence[str], count: int, *, array_name: str, axis_name: str, token_kind: str) -> list[str]:
    """Escaped labels for `tokens`, after checking there is one per row or column.

    The message reads e.g. "values has 5 rows but 4 query tokens were given".
    """
    labels = token_labels(tokens)
    if len(labels) != count:
        raise ValueError(f"{array_name} has {count} {axis_name} but {len(labels)} {token_kind} were given")
    return labels


def require_square(array: np.ndarray, name: str) -> None:
    """Attention maps are n x n: one row per query, one column per key of the same sentence."""
    n_rows, n_columns = array.shape[-2:]
    if n_rows != n_columns:
        raise ValueError(f"{name} must be square (n, n), but has {n_rows} rows and {n_columns} columns")
