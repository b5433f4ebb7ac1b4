"""The step view's payload: what the browser is sent is the trace's own numbers, named, shaped
and sized as documented, without a browser (tests/e2e checks what the page draws from it)."""

from __future__ import annotations

import json

import numpy as np
import plotly.colors
import plotly.io as pio
import pytest

from encoder import Encoder, EncoderConfig
from ui.i18n import texts
from viz import ChartStyle, heads_grid_figure, token_labels
from viz.grid import tile_stride
from viz.step_view import (
    DEFAULT_BUDGET_BYTES,
    MAGIC,
    MATRIX_CHARTS,
    MAX_UNSHIFTED_EXPONENT,
    PER_HEAD_FIELDS,
    REPORT_DELAY_MS,
    STEP_ARRAYS,
    STEP_VIEW_STRING_KEYS,
    STEPS,
    VIEW_FIELDS,
    WHERE,
    WORKED_DIMENSIONS,
    StepViewStyle,
    View,
    decode_payload,
    plan_layers,
    step_view_payload,
    step_view_strings,
)

STEPS_IN_FORWARD_ORDER = ("q", "k", "v", "scores", "scaled_scores", "context")


def _trace(text: str = "我爱你", **config: object):
    model = Encoder(EncoderConfig(**config), device="cpu")
    return model.config, model.trace_text(text)


def _payload(config, trace, lang: str = "en", **options: object) -> bytes:
    arrays = trace.to_numpy()
    options.setdefault("layers", range(config.n_layers))
    return step_view_payload(
        trace_id="run",
        tokens=trace.tokens,
        arrays=arrays,
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        d_model=config.d_model,
        strings=step_view_strings(texts(lang), config.d_model, config.d_head, 8),
        **options,
    )


def test_every_array_is_the_traces_own_float32_bit_for_bit():
    config, trace = _trace("the cat sat on the mat", n_layers=3, n_heads=4, causal=True)
    header, arrays = decode_payload(_payload(config, trace))
    for layer, steps in enumerate(trace.layers):
        np.testing.assert_array_equal(arrays[f"layer{layer}.weights"], steps.weights.numpy())
        for name in STEPS_IN_FORWARD_ORDER:
            sent, kept = arrays[f"layer{layer}.{name}"], getattr(steps, name).numpy()
            assert sent.dtype == np.float32 and sent.shape == kept.shape
            # Equal as bits, -inf of the masked scaled scores included: the page prints the trace's numbers.
            assert sent.tobytes() == np.ascontiguousarray(kept, dtype=np.float32).tobytes(), (layer, name)
    np.testing.assert_array_equal(arrays["mask"].astype(bool), trace.mask.numpy())
    assert header["tokens"] == trace.tokens and header["masked"]


def test_the_format_is_magic_length_header_then_aligned_arrays():
    config, trace = _trace()
    payload = _payload(config, trace)
    assert payload[:4] == MAGIC
    length = int.from_bytes(payload[4:8], "little")
    header = json.loads(payload[8 : 8 + length])
    assert (8 + length) % 4 == 0
    for entry in header["arrays"]:
        assert entry["offset"] % 4 == 0 and entry["dtype"] in ("f4", "u1")
    last = header["arrays"][-1]
    assert len(payload) == 8 + length + last["offset"] + 4 * int(np.prod(last["shape"]))
    with pytest.raises(ValueError, match="not a step view payload"):
        decode_payload(b"PK\x03\x04" + payload[4:])


def test_the_constants_the_browser_shares_with_python_travel_in_the_header():
    """The browser's module writes none of these itself: each has one home, here, and the header."""
    config, trace = _trace()
    header, _ = decode_payload(_payload(config, trace, report_ms=150))
    assert header["steps"] == list(STEPS)
    assert header["view_fields"] == list(VIEW_FIELDS) == ["layer", "head", "query", "step"]
    assert list(header["view"]) == list(VIEW_FIELDS)
    assert header["step_arrays"] == list(STEP_ARRAYS)
    assert header["matrix_charts"] == list(MATRIX_CHARTS)
    assert set(MATRIX_CHARTS) <= set(header["templates"]) and set(MATRIX_CHARTS) <= set(STEPS)
    assert header["where"] == WHERE
    assert header["report_ms"] == 150
    assert decode_payload(_payload(config, trace))[0]["report_ms"] == REPORT_DELAY_MS
    assert header["worked_dimensions"] == WORKED_DIMENSIONS
    assert header["max_unshifted_exponent"] == MAX_UNSHIFTED_EXPONENT


def test_the_strip_of_heads_is_the_overview_grids_row_of_that_layer():
    """Each layer's strip is what the layers x heads grid shows in that layer's row of tiles."""
    text = " ".join(f"w{i}" for i in range(20))  # over 16 tokens: the tiles average blocks
    config, trace = _trace(text, n_layers=2, n_heads=4)
    header, arrays = decode_payload(_payload(config, trace))
    stack = np.stack([layer.weights.numpy() for layer in trace.layers])
    grid = np.asarray(heads_grid_figure(stack, trace.tokens).data[0].z, dtype=np.float32)
    tile = -(-len(trace.tokens) // header["grid_block"])
    for layer in range(config.n_layers):
        row = grid[layer * tile_stride(tile) : layer * tile_stride(tile) + tile]
        np.testing.assert_array_equal(arrays[f"strip{layer}"], row)
    assert header["grid_block"] == 2 and not header["strip_tokens"]


def test_a_run_over_the_budget_sends_every_layers_weights_and_one_layers_steps():
    shapes = {f"layer{i}.{name}": np.zeros((12, 64, 64), np.float32) for i in range(12) for name in STEP_ARRAYS}
    shapes |= {f"layer{i}.weights": np.zeros((12, 64, 64), np.float32) for i in range(12)}
    assert sum(a.nbytes for a in shapes.values()) > DEFAULT_BUDGET_BYTES
    assert plan_layers(shapes, 12, wanted=5) == (5,)
    assert plan_layers(shapes, 12, wanted=5, budget=10**9) == tuple(range(12))

    config, trace = _trace("我爱你", n_layers=3)
    header, arrays = decode_payload(_payload(config, trace, layers=[2], lazy=True))
    assert header["lazy"] and header["layers"] == [2] and header["base"]
    assert {f"layer{i}.weights" for i in range(3)} <= arrays.keys()
    assert not any(name.startswith(("layer0.q", "layer1.q")) for name in arrays)
    header, arrays = decode_payload(_payload(config, trace, layers=[1], include_base=False, lazy=True))
    assert sorted(arrays) == sorted(f"layer1.{name}" for name in STEP_ARRAYS)  # nothing sent twice


def test_the_chart_templates_come_without_the_numbers_of_a_head():
    config, trace = _trace("the cat sat", n_layers=3, n_heads=4)
    header, _ = decode_payload(_payload(config, trace, view=View(layer=2, head=1)))
    templates = header["templates"]
    assert set(templates) == {"qkv", "scores", "scaled", "weights", "context", "heads", "grid"}
    for name, figure in templates.items():
        for trace_ in figure["data"]:
            assert not set(PER_HEAD_FIELDS) & set(trace_), name
    assert templates["weights"]["layout"]["title"]["text"] == "softmax ({where})"
    assert templates["scores"]["layout"]["xaxis"]["ticktext"] == ["the", "cat", "sat"]
    assert len(templates["qkv"]["data"]) == 3
    # The strip of layer 3 is named layer 3, though it is built from that layer alone.
    assert templates["heads"]["layout"]["yaxis"]["ticktext"] == ["Layer 3"]
    # The grid of every head: a row of tiles per layer, the outline around layer 1, head 1.
    assert templates["grid"]["layout"]["yaxis"]["ticktext"] == ["Layer 1", "Layer 2", "Layer 3"]
    assert {(s["x0"], s["x1"], s["y0"], s["y1"]) for s in templates["grid"]["layout"]["shapes"]} == {
        (-0.5, 2.5, -0.5, 2.5)
    }
    assert header["view"] == {"layer": 2, "head": 1, "query": 0, "step": 0}
    # Plotly's theme, the bulk of every figure's JSON, travels once for all of them.
    assert not any("template" in figure["layout"] for figure in templates.values())
    assert header["plotly_template"] == json.loads(json.dumps(pio.templates[pio.templates.default].to_plotly_json()))


def test_a_view_past_the_end_is_fitted_to_the_model_and_the_sentence():
    config, trace = _trace("我爱你", n_layers=2, n_heads=4)
    header, _ = decode_payload(_payload(config, trace, view=View(layer=9, head=9, query=9, revision=3)))
    assert header["view"] == {"layer": 1, "head": 3, "query": 2, "step": 0}
    assert header["revision"] == 3


def test_tokens_travel_as_typed_and_their_chart_labels_escaped():
    config, trace = _trace("<b>x</b> <script>")
    header, _ = decode_payload(_payload(config, trace))
    assert "<" in header["tokens"]
    assert header["labels"] == token_labels(header["tokens"])
    assert "&lt;" in header["labels"] and "<" not in header["labels"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_strings_are_the_pages_language_with_the_runs_constants_filled_in(lang: str):
    t = texts(lang)
    strings = step_view_strings(t, 64, 16, 8)
    assert set(strings) == set(STEP_VIEW_STRING_KEYS)
    assert strings["step_scaled_text"] == t["step_scaled_text"].format(sqrt=4.0)
    assert "{query}" in strings["worked_intro"]  # the browser fills in what changes with the view
    assert strings["worked_dims"] == t["worked_dims"].format(shown=8, d_head=16)
    assert step_view_strings(t, 16, 4, 8)["worked_dims"] == ""  # every dimension shown: nothing to say


def test_style_and_cell_numbers_follow_the_display_settings():
    config, trace = _trace("我爱你")
    style = StepViewStyle(
        ChartStyle(palette="colorblind", font_size=22), fit_weights=True, present=True, image_format="svg"
    )
    header, _ = decode_payload(_payload(config, trace, style=style))
    assert header["style"] == {"palette": "colorblind", "font_size": 22, "fit_weights": True, "present": True}
    assert header["config"]["toImageButtonOptions"]["format"] == "svg"
    cividis = [colour for _, colour in plotly.colors.get_colorscale("cividis")]
    assert [colour for _, colour in header["templates"]["weights"]["data"][0]["colorscale"]] == cividis
    assert header["show_values"] == {"qkv": False, "matrix": True, "context": True}  # 3 × 48 columns do not fit
