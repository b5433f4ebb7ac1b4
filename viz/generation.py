"""The translation's generation, step by step, as the data of an element drawn in the browser.

A decoder is causal: row t of its cross-attention in the trace of the whole translation is
exactly what step t computed when it chose word t. So one trace replays every step, and the
browser (ui/generation_browser/generation.js) can scrub through them without asking the server.
This module checks the arrays against the tokens and packs them, with the words the element
draws and the colour scale of the page's weight maps, into one JSON-serialisable dict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from plotly import colors as px_colors

from viz.checks import float_array
from viz.style import HOVER_VALUE_FORMAT, SEQUENTIAL_SCALES, ChartStyle, number_text, token_labels

END_OF_SENTENCE = "</s>"  # what the decoder emits to stop (encoder.translation.EOS; viz does not import encoder)
PROBABILITY_DECIMALS = 2  # a probability beside its word: two decimals fit under a short word

# The words the element draws, as keys of the caller's `strings`; {placeholders} are filled in by
# the browser.
GENERATION_STRING_KEYS: tuple[str, ...] = (
    "generation_step_label",  # the scrubber's visible label
    "generation_step",  # "Step {t} of {n}"
    "generation_prev",
    "generation_next",
    "generation_layer",
    "generation_head",
    "generation_end",  # the end-of-sentence token, as the translation so far prints it
    "generation_emitted",  # "emitted “{token}” with probability {p}": the screen reader's news of a step
    "generation_looks",  # the bar chart's title: "“{token}” looks at the source"
    "generation_weight",  # the bar chart's y axis and every hover
    "generation_tiles",  # the overview's heading
    "generation_tile",  # a tile's name: "Layer {layer}, head {head}"
)


def weight_colorscale(style: ChartStyle) -> list[list[float | str]]:
    """The palette's scale for softmax weights, as viz's weight maps draw them, every colour
    written `rgb(r, g, b)`: the browser colours the bars from it too (and reads only that form)."""
    scale = px_colors.get_colorscale(SEQUENTIAL_SCALES[style.palette])  # [[position, colour], ...]
    colours, _ = px_colors.convert_colors_to_same_type([colour for _, colour in scale], colortype="rgb")
    return [[float(position), colour] for (position, _), colour in zip(scale, colours, strict=True)]


def generation_payload(
    source: Sequence[str],
    emitted: Sequence[str],
    probabilities: np.ndarray,  # (T,) the probability each step gave the token it emitted
    cross_weights: np.ndarray,  # (layers, heads, T, S) the decoder's cross-attention
    strings: Mapping[str, str],
    *,
    style: ChartStyle | None = None,
) -> dict[str, Any]:
    """What the generation element draws: the source characters, the emitted tokens with their
    probabilities, every head's cross-attention, the strings and the weights' colour scale.

    Tokens come twice: as typed (the browser writes them with textContent) and escaped as
    `token_labels` escapes them (Plotly reads a few tags in its text). The weights stay float32
    values, the trace's own precision, so the hover prints the number the model computed.
    """
    style = style or ChartStyle()
    if isinstance(source, str) or isinstance(emitted, str):
        raise TypeError("source and emitted must be sequences of tokens, not single strings")
    weights = float_array(cross_weights, "cross_weights", "(layers, heads, T, S)")  # (L, H, T, S)
    n_layers, n_heads, n_steps, n_source = weights.shape
    if n_layers == 0 or n_heads == 0:
        raise ValueError(f"cross_weights must hold at least one layer and one head, but has shape {weights.shape}")
    if n_steps != len(emitted):
        raise ValueError(f"cross_weights has {n_steps} target rows but {len(emitted)} tokens were emitted")
    if n_source != len(source):
        raise ValueError(f"cross_weights has {n_source} source columns but {len(source)} source tokens were given")
    if n_steps == 0 or n_source == 0:
        raise ValueError(f"nothing to show: {n_steps} tokens were emitted from {n_source} source tokens")
    chances = float_array(probabilities, "probabilities", "(T)")  # (T,)
    if len(chances) != n_steps:
        raise ValueError(f"probabilities has {len(chances)} entries but {n_steps} tokens were emitted")
    missing = [key for key in GENERATION_STRING_KEYS if key not in strings]
    if missing:
        raise ValueError(f"strings lacks {', '.join(missing)}")
    source_tokens = [str(token) for token in source]
    emitted_tokens = [str(token) for token in emitted]
    end = [step == n_steps - 1 and token == END_OF_SENTENCE for step, token in enumerate(emitted_tokens)]
    # What the page prints for each emitted token: the end-of-sentence token by its name.
    shown = [strings["generation_end"] if is_end else token for token, is_end in zip(emitted_tokens, end, strict=True)]
    payload: dict[str, Any] = {
        "n_layers": n_layers,
        "n_heads": n_heads,
        "n_steps": n_steps,
        "source": source_tokens,
        "source_labels": token_labels(source_tokens),
        "emitted": emitted_tokens,
        "shown": shown,
        "shown_labels": token_labels(shown),
        "end": end,
        "probabilities": chances.tolist(),  # float32 values, exactly
        "probability_texts": [number_text(p, PROBABILITY_DECIMALS) for p in chances.tolist()],
        "weights": weights.tolist(),  # [layer][head][t][s], float32 values, exactly
        "colorscale": weight_colorscale(style),
        "zmin": 0.0,  # fixed, as every weight map's: two heads compare by colour
        "zmax": 1.0,
        "hover_format": HOVER_VALUE_FORMAT,
        "font_size": style.font_size,
        "strings": {key: strings[key] for key in GENERATION_STRING_KEYS},
    }
    # The same translation sent again (a rerun) keeps the browser's step, layer and head.
    payload["id"] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return payload
