"""TraceArrays: a trace as the page keeps it, built from a run of the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder import Encoder, EncoderConfig, TraceArrays, trace_nbytes


def test_a_run_kept_as_arrays_holds_the_traces_numbers_and_what_computed_them():
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=3), device="cpu")
    trace = model.trace_text("the cat sat on the mat")
    kept = TraceArrays.of_run(model, lambda: model.trace_text("the cat sat on the mat"))
    assert kept.tokens == trace.tokens and kept.config == model.config and kept.device == "CPU"
    assert kept.parameters == sum(p.numel() for p in model.parameters()) and kept.milliseconds > 0
    expected = torch.stack([layer.weights for layer in trace.layers]).numpy()  # (layers, heads, n, n)
    np.testing.assert_array_equal(kept.weights, expected)
    np.testing.assert_array_equal(kept.layer(2, "context"), trace.layers[2].context.numpy())


def test_a_kept_run_is_read_only_so_every_session_can_share_one_copy():
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=3), device="cpu")
    kept = TraceArrays.of_run(model, lambda: model.trace_text("我爱你"))
    for name, array in [*kept.arrays.items(), ("weights", kept.weights)]:
        assert not array.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0
    for layer in range(3):  # a layer's weights are the stack's, not a second copy
        assert np.shares_memory(kept.layer(layer, "weights"), kept.weights)
        np.testing.assert_array_equal(kept.layer(layer, "weights"), kept.weights[layer])


def test_the_residual_stream_is_the_input_then_every_layers_output():
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=3), device="cpu")
    kept = TraceArrays.of_run(model, lambda: model.trace_text("我爱你"))
    trace = model.trace_text("我爱你")
    stream = kept.residual_stream()
    assert stream.shape == (4, 3, 32)
    np.testing.assert_array_equal(stream[0], trace.input.numpy())
    for i, layer in enumerate(trace.layers, start=1):
        np.testing.assert_array_equal(stream[i], layer.output.numpy())


def test_the_size_of_a_trace_is_known_before_the_run():
    """What the page's caches size their entries by: exact, whatever the shape and mask."""
    for config, text in (
        (EncoderConfig(), "我爱你"),
        (EncoderConfig(d_model=96, n_heads=6, n_layers=3, d_ff=384, causal=True), "the cat sat on the mat"),
        (EncoderConfig(d_model=32, n_heads=2, n_layers=1, d_ff=32), " ".join(f"w{i}" for i in range(40))),
    ):
        model = Encoder(config, device="cpu")
        kept = TraceArrays.of_run(model, lambda model=model, text=text: model.trace_text(text))
        held = sum(a.nbytes for a in kept.arrays.values()) + kept.weights.nbytes
        extra_mask = 0 if "mask" in kept.arrays else len(kept.tokens) ** 2  # counted whether or not there is one
        assert trace_nbytes(config, kept.tokens) == held + extra_mask, config
