"""The words viz's charts draw besides their titles: axis titles, colour-bar titles, legend
entries and hover names, in one language.

One object for all of them, so a figure builder takes `labels=` once instead of a keyword
per word, and a page in another language makes one `ChartLabels` from its translations
(the app's `ui.i18n.chart_labels`). The defaults are English, so a notebook needs none.
Symbols that read the same in every language (Q, K, V, d_k, q·k, ‖x‖) are not labels: the
builders write them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartLabels:
    token: str = "Token"
    dimension: str = "Dimension"
    query: str = "Query"
    key: str = "Key"
    value: str = "value"  # a colour bar of signed values (Q, K, V, scores, vectors)
    weight: str = "weight"  # a colour bar of softmax weights
    layer: str = "Layer"
    head: str = "Head"
    position: str = "Position"
    cosine: str = "cosine"
    # The √d_k experiment's curves.
    mean_max_weight: str = "mean max weight"
    mean_entropy: str = "mean entropy (nats)"
    scaled: str = "÷√d_k"
    unscaled: str = "not scaled"
    uniform: str = "uniform"
    score_variance: str = "variance of q·k"
    proportional_to_d_k: str = "∝ d_k"
    # Training's curves.
    step: str = "step"
    loss: str = "loss"
    accuracy: str = "accuracy"
