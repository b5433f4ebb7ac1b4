"""What the browser's step view receives: one binary payload per run, drawn without the server.

The step view (the five steps, the worked example and the heads of a layer) lives in the
browser: a change of layer, head, query token or step redraws there, in a frame, with no
server round trip. For that the browser holds the trace, sent once per run as one binary
message:

    b"AVI1" | header length (uint32, little-endian) | header (UTF-8 JSON) | arrays

The header names every array (`name`, `dtype`, `shape`, `offset` into the array section)
and carries the run's constants: tokens and their axis labels, the model's shape, the
view the server asks for, the translated strings, the constants the browser shares with
Python (`STEPS`, `VIEW_FIELDS`, `STEP_ARRAYS`, `MATRIX_CHARTS`, the report delay, the worked
example's rules), which it takes from here alone, and one Plotly figure per chart (its
theme, `layout.template`, once for all of them as `plotly_template`). Those
figures are built here by the same builders as every other chart on the page (`matrix_figure`,
`qkv_figure`, `vectors_figure`, `heads_grid_figure`), for the view's own head, and sent
without their per-head arrays: the browser fills in z, the cell texts and the hover data
of the head it shows, so colours, margins, fonts and hover formats have one source.

Arrays are float32, the trace's own precision, so every number the page prints equals the
trace's. A run whose arrays fit `DEFAULT_BUDGET_BYTES` goes whole; a larger one sends every
layer's weights (the heads strip needs them) and the full arrays of one layer at a time,
as the browser asks for them (`plan_layers`).
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from viz.grid import (
    GRID_GAP,
    GRID_TOKEN_HOVER_MAX_CELLS,
    grid_block_size,
    heads_grid_figure,
    pool_blocks,
    tile_weights,
)
from viz.heatmaps import matrix_figure, qkv_figure, vectors_figure
from viz.labels import ChartLabels
from viz.style import MASK_MARK, ChartStyle, chart_config, token_labels, values_are_shown

MAGIC = b"AVI1"  # the payload's first bytes; the browser's module is given it (ui/step_view.py)
# Under this many bytes of arrays a run goes to the browser whole (64 tokens x 12 layers x 12
# heads at d_model 768 is 17 MB, the largest allowed run 63 MB): a message this size reaches
# the browser on a local network in well under a second and stays small in each tab's memory.
DEFAULT_BUDGET_BYTES = 8 * 1024 * 1024
# Per layer: the arrays a head's five steps need, besides the weights that the strip of heads
# needs for every layer (and so go in every payload).
STEP_ARRAYS: tuple[str, ...] = ("q", "k", "v", "scores", "scaled_scores", "context")
WHERE = "{where}"  # in chart titles: the browser writes the layer and head there, e.g. "L1H2"
# The charts that are maps of query × key (`matrix_figure`): a click on a cell picks its query,
# and the linked hover outlines the cell.
MATRIX_CHARTS: tuple[str, ...] = ("scores", "scaled", "weights")
# The figure fields that change with the head: left out of the templates, filled in by the browser.
PER_HEAD_FIELDS: tuple[str, ...] = ("z", "text", "customdata")
WORKED_DIMENSIONS = 8  # columns of the worked example's weighted-sum table: enough to check the sum by eye
# e^709 is the largest power of e a float64 holds; above it the worked example subtracts the
# row maximum, as every softmax implementation does.
MAX_UNSHIFTED_EXPONENT = 700.0
# How long the browser waits after the last click before it tells the server its view: the
# clicks of a quick run through the heads make one report, not one each.
REPORT_DELAY_MS = 400
# The step view's sections, in order: the five steps of attention, then the worked example and
# the heads of the layer. Presentation mode steps through them; `View.step` indexes them.
STEPS: tuple[str, ...] = ("qkv", "scores", "scaled", "weights", "context", "worked", "heads")


@dataclass(frozen=True)
class View:
    """What the step view shows, 0-based. `revision` grows when the server moves the view
    itself (a link, "Open in the step view"): only then does the browser give up its own."""

    layer: int = 0
    head: int = 0
    query: int = 0
    step: int = 0
    revision: int = 0


# The view's fields that the browser reads from the address bar and reports back, in order.
VIEW_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(View) if field.name != "revision")


@dataclass(frozen=True)
class StepViewStyle:
    chart: ChartStyle = ChartStyle()  # palette and font size, as every other chart of the page
    fit_weights: bool = False  # colour the softmax map from 0 to its largest weight, not to 1
    present: bool = False  # presentation mode: one step at a time, in large type
    image_format: str = "png"  # the charts' download button


def layer_bytes(arrays: Mapping[str, np.ndarray], layer: int) -> int:
    """What one layer's step arrays cost in the payload."""
    return sum(arrays[f"layer{layer}.{name}"].size * 4 for name in STEP_ARRAYS)


def plan_layers(
    arrays: Mapping[str, np.ndarray], n_layers: int, wanted: int, budget: int = DEFAULT_BUDGET_BYTES
) -> tuple[int, ...]:
    """The layers whose step arrays go in this payload: all when the whole run fits `budget`,
    else only `wanted` (the layer the browser shows or asks for)."""
    total = sum(layer_bytes(arrays, layer) + arrays[f"layer{layer}.weights"].size * 4 for layer in range(n_layers))
    return tuple(range(n_layers)) if total <= budget else (wanted,)


def step_view_payload(
    *,
    trace_id: str,
    tokens: Sequence[str],
    arrays: Mapping[str, np.ndarray],
    n_layers: int,
    n_heads: int,
    d_model: int,
    layers: Collection[int],
    include_base: bool = True,
    lazy: bool = False,
    view: View = View(),
    strings: Mapping[str, str],
    labels: ChartLabels = ChartLabels(),
    style: StepViewStyle = StepViewStyle(),
    plotly_url: str = "",
    report_ms: int = REPORT_DELAY_MS,
    tile_labels: Sequence[Sequence[str]] | None = None,
    mark: Mapping[str, Any] | None = None,
    key_tokens: Sequence[str] | None = None,
) -> bytes:
    """The payload for one run (see the module's docstring).

    `arrays` are the trace's, named as `Trace.to_numpy` names them (`layer0.q`, ...,
    `mask`). `layers` are the layers whose step arrays are included; `include_base` adds
    every layer's weights, the strips of heads and the mask, which a browser that already
    holds this `trace_id` does not need again. `lazy` tells the browser that layers
    missing here are to be asked for. `strings` are the interface's translated strings
    (`step_view_strings`), `labels` the charts' words in the same language; `plotly_url`
    is where the browser loads Plotly.js from; `report_ms` how long after the last click it
    reports its view (a class's teacher reports sooner: the students wait on it).
    `tile_labels` (layers, heads) caption each head's thumbnail in the strip and the grid (the
    page gives each head's habit). `mark` is a lesson's revealed answer, which the browser outlines:
    `chart` ("weights" or "heads"), `layer`, `head`, and for the weights `query` and `key` (None:
    the query's whole row), 0-based. `key_tokens` are the keys when they are not the queries
    (cross-attention: the target's positions ask, the source's characters answer): every map is
    then n × n_keys, and K and V have a row per key.
    """
    n = len(tokens)
    cross = key_tokens is not None
    key_tokens = list(tokens) if key_tokens is None else list(key_tokens)
    n_keys = len(key_tokens)
    view = replace(  # fitted to the model and the sentence
        view, layer=min(view.layer, n_layers - 1), head=min(view.head, n_heads - 1), query=min(view.query, n - 1)
    )
    d_head = d_model // n_heads
    block = grid_block_size(max(n, n_keys))
    tile, key_tile = -(-n // block), -(-n_keys // block)  # rows and columns of a (pooled) tile
    strip_cells = tile * (n_heads * (key_tile + GRID_GAP) - GRID_GAP)  # one layer's tiles and the gaps between
    grid_cells = (n_layers * (tile + GRID_GAP) - GRID_GAP) * (n_heads * (key_tile + GRID_GAP) - GRID_GAP)
    sections: list[tuple[str, np.ndarray]] = []
    if include_base:
        if "mask" in arrays:
            sections.append(("mask", np.asarray(arrays["mask"], dtype=np.uint8)))
        for layer in range(n_layers):
            weights = arrays[f"layer{layer}.weights"]  # (heads, n, n_keys)
            sections.append((f"layer{layer}.weights", weights))
            pooled = pool_blocks(np.where(np.isfinite(weights), weights, np.float32(np.nan))[None], block)
            sections.append((f"strip{layer}", tile_weights(pooled)))  # (m, heads·(m_keys+gap)-gap)
    for layer in sorted(layers):
        for name in STEP_ARRAYS:
            sections.append((f"layer{layer}.{name}", arrays[f"layer{layer}.{name}"]))

    index: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    offset = 0
    for name, array in sections:
        data = np.ascontiguousarray(array, dtype=np.uint8 if array.dtype == np.uint8 else np.float32)
        index.append({"name": name, "dtype": "u1" if data.dtype == np.uint8 else "f4", "shape": data.shape})
        index[-1]["offset"] = offset
        raw = data.tobytes()
        blobs.append(raw + b"\0" * (-len(raw) % 4))  # every array starts 4-byte aligned
        offset += len(blobs[-1])

    header = {
        "id": trace_id,
        "tokens": list(tokens),
        "labels": token_labels(tokens),
        "key_tokens": key_tokens,  # the queries' own tokens, but in cross-attention
        "key_labels": token_labels(key_tokens),
        "cross": cross,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "d_model": d_model,
        "d_head": d_head,
        "grid_block": block,
        "grid_gap": GRID_GAP,
        # As heads_grid_figure decides: the hover names tokens, or else positions.
        "strip_tokens": block == 1 and strip_cells <= GRID_TOKEN_HOVER_MAX_CELLS,
        "grid_tokens": block == 1 and grid_cells <= GRID_TOKEN_HOVER_MAX_CELLS,
        "show_values": {  # numbers in the cells, as the figure builders decide
            "qkv": values_are_shown(None, max(n, n_keys), 3 * d_head),
            "matrix": values_are_shown(None, n, n_keys),
            "context": values_are_shown(None, n, d_head),
        },
        "plotly_url": plotly_url,
        # Per layer, per head: the caption of its thumbnail; the strip's template has its view layer's.
        "tile_labels": [list(row) for row in tile_labels] if tile_labels is not None else None,
        # The constants the browser shares with Python, which it reads here and nowhere else.
        "steps": list(STEPS),
        "view_fields": list(VIEW_FIELDS),
        "step_arrays": list(STEP_ARRAYS),
        "matrix_charts": list(MATRIX_CHARTS),
        "where": WHERE,
        "report_ms": report_ms,
        # The worked example's rules.
        "worked_dimensions": WORKED_DIMENSIONS,
        "max_unshifted_exponent": MAX_UNSHIFTED_EXPONENT,
        "mask_mark": MASK_MARK,
        "masked": "mask" in arrays,
        "layers": sorted(layers),
        "base": include_base,
        "lazy": lazy,
        "view": {name: getattr(view, name) for name in VIEW_FIELDS},
        "revision": view.revision,
        "mark": None if mark is None else dict(mark),
        "style": {
            "palette": style.chart.palette,
            "font_size": style.chart.font_size,
            "fit_weights": style.fit_weights,
            "present": style.present,
        },
        "config": chart_config("attention", style.image_format),
        "strings": dict(strings),
        "templates": figure_templates(
            arrays,
            tokens,
            view.layer,
            view.head,
            n_layers,
            labels,
            style.chart,
            tile_labels,
            key_tokens if cross else None,
        ),
        "plotly_template": plotly_template(),
        "arrays": index,
    }
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # the arrays start 4-byte aligned
    return MAGIC + struct.pack("<I", len(text)) + text + b"".join(blobs)


def decode_payload(payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays of a payload: what the browser reads, read the same way."""
    if payload[:4] != MAGIC:
        raise ValueError(f"not a step view payload: it starts with {payload[:4]!r}, not {MAGIC!r}")
    (length,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8 : 8 + length])
    start = 8 + length
    arrays = {}
    for entry in header["arrays"]:
        dtype = np.dtype("<f4") if entry["dtype"] == "f4" else np.dtype(np.uint8)
        count = int(np.prod(entry["shape"]))
        flat = np.frombuffer(payload, dtype=dtype, count=count, offset=start + entry["offset"])
        arrays[entry["name"]] = flat.reshape(entry["shape"])
    return header, arrays


def figure_templates(
    arrays: Mapping[str, np.ndarray],
    tokens: Sequence[str],
    layer: int,
    head: int,
    n_layers: int,
    labels: ChartLabels,
    style: ChartStyle,
    tile_labels: Sequence[Sequence[str]] | None = None,
    key_tokens: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each chart of the step view as Plotly JSON, built for (layer, head) by the page's own
    figure builders and stripped of the fields that change with the head. `key_tokens`: the
    keys, in cross-attention."""

    def one(name: str) -> np.ndarray:
        return arrays[f"layer{layer}.{name}"][head]

    chart = {"labels": labels, "style": style}
    mask = arrays.get("mask")
    keys = tokens if key_tokens is None else key_tokens
    figures = {
        "qkv": qkv_figure(
            one("q"), one("k"), one("v"), tokens, key_tokens=key_tokens, title=f"Q, K, V ({WHERE})", **chart
        ),
        "scores": matrix_figure(
            one("scores"), tokens, keys, kind="scores", title=f"Q·Kᵀ ({WHERE})", value_label="q·k", **chart
        ),
        "scaled": matrix_figure(
            one("scaled_scores"),
            tokens,
            keys,
            kind="scores",
            title=f"Q·Kᵀ/√d_k ({WHERE})",
            value_label="q·k/√d_k",
            mask=mask,
            **chart,
        ),
        "weights": matrix_figure(
            one("weights"),
            tokens,
            keys,
            kind="weights",
            title=f"softmax ({WHERE})",
            mask=mask,
            **chart,
        ),
        "context": vectors_figure(one("context"), tokens, title=f"Z ({WHERE})", **chart),
        "heads": heads_grid_figure(
            arrays[f"layer{layer}.weights"][None],
            tokens,
            key_tokens=key_tokens,
            first_layer=layer,
            tile_labels=None if tile_labels is None else tile_labels[layer : layer + 1],
            **chart,
        ),
        # Every layer's strip, one under the other; its outline (`shapes`) is around layer 1, head 1.
        "grid": heads_grid_figure(
            np.stack([arrays[f"layer{i}.weights"] for i in range(n_layers)]),
            tokens,
            key_tokens=key_tokens,
            selected=(0, 0),
            tile_labels=tile_labels,
            **chart,
        ),
    }
    if mask is not None:  # a causal run's mask, a step of its own: 0 where a query may look, −∞ (marked) where not
        allowed = np.asarray(mask, dtype=bool)  # (n, n)
        figures["mask"] = matrix_figure(
            np.where(allowed, 0.0, -np.inf),
            tokens,
            keys,
            kind="scores",
            title="M",
            value_label="M",
            mask=allowed,
            **chart,
        )
        figures["mask"].update_traces(showscale=False)  # two values, each written in its cell: no colour bar
    templates = {}
    for name, figure in figures.items():
        figure.update_traces({field: None for field in PER_HEAD_FIELDS})
        figure.layout.template = None  # the same for every chart: sent once, as `plotly_template`
        templates[name] = json.loads(pio.to_json(figure, validate=False, engine="json"))
    return templates


@functools.cache
def plotly_template() -> dict[str, Any]:
    """Plotly's default theme (`layout.template`), which every figure of viz's carries: the
    step view draws without it, and gives it back to each figure that Plotly saves as an image."""
    return json.loads(pio.to_json(go.Figure(), validate=False, engine="json"))["layout"]["template"]


# The strings the step view draws, as keys of `ui.i18n.texts`; those with placeholders that do
# not change within a run are filled in by `step_view_strings`, the rest by the browser.
STEP_VIEW_STRING_KEYS: tuple[str, ...] = (
    "inspect",
    "layer",
    "head",
    "step_qkv",
    "step_qkv_text",
    "step_scores",
    "step_scores_text",
    "step_scaled",
    "step_scaled_text",
    "step_mask",
    "step_mask_text",
    "step_weights",
    "step_weights_text",
    "step_context",
    "step_context_text",
    "worked_example",
    "worked_query",
    "worked_intro",
    "worked_step1",
    "worked_step2",
    "worked_step3",
    "worked_shift",
    "worked_step4",
    "worked_step5",
    "worked_dims",
    "col_key",
    "col_dot",
    "col_scaled",
    "col_exp",
    "col_weight",
    "col_weighted",
    "weighted_sum_row",
    "context_row",
    "worked_masked",
    "heads_layer",
    "heads_layer_text",
    "pick_tokens",
    "pick_as_queries",
    "pick_as_keys",
    "pick_clear",
    "pick_queries_hint",
    "pick_keys_hint",
    "heads_grid",
    "heads_grid_text",
    "heads_grid_pooled",
    "present_prev",
    "present_next",
    "step_view_announce",
    "present_position",
    "step_view_keys",
    "step_view_touch",
    "step_view_cell_join",
    "chart_table",
    "step_view_loading",
    "step_view_no_plotly",
    "download_chart",
)


def step_view_strings(
    texts: Mapping[str, str], d_model: int, d_head: int, worked_dimensions: int = WORKED_DIMENSIONS
) -> dict[str, str]:
    """The step view's strings in the page's language, with what is fixed for the run filled in."""
    strings = {key: texts[key] for key in STEP_VIEW_STRING_KEYS}
    sqrt = float(np.sqrt(d_head))
    strings["step_qkv_text"] = strings["step_qkv_text"].format(d_head=d_head, d_model=d_model)
    strings["step_scaled_text"] = strings["step_scaled_text"].format(sqrt=sqrt)
    strings["step_mask_text"] = strings["step_mask_text"].format(mark=MASK_MARK)
    strings["worked_step2"] = strings["worked_step2"].format(sqrt=sqrt)
    shown = min(d_head, worked_dimensions)
    strings["worked_dims"] = strings["worked_dims"].format(shown=shown, d_head=d_head) if shown < d_head else ""
    return strings
