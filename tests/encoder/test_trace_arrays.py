"""TraceArrays: a trace as the page keeps it, built from a run of the model."""

from __future__ import annotations

import numpy as np
import torch

from encoder import Encoder, EncoderConfig, TraceArrays


def test_a_run_kept_as_arrays_holds_the_traces_numbers_and_what_computed_them():
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=3), device="cpu")
    trace = model.trace_text("the cat sat on the mat")
    kept = TraceArrays.of_run(model, lambda: model.trace_text("the cat sat on the mat"))
    assert kept.tokens == trace.tokens and kept.config == model.config and kept.device == "CPU"
    assert kept.parameters == sum(p.numel() for p in model.parameters()) and kept.milliseconds > 0
    expected = torch.stack([layer.weights for layer in trace.layers]).numpy()  # (layers, heads, n, n)
    np.testing.assert_array_equal(kept.weights, expected)
    np.testing.assert_array_equal(kept.layer(2, "context"), trace.layers[2].context.numpy())


def test_the_residual_stream_is_the_input_then_every_layers_output():
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=3), device="cpu")
    kept = TraceArrays.of_run(model, lambda: model.trace_text("我爱你"))
    trace = model.trace_text("我爱你")
    stream = kept.residual_stream()
    assert stream.shape == (4, 3, 32)
    np.testing.assert_array_equal(stream[0], trace.input.numpy())
    for i, layer in enumerate(trace.layers, start=1):
        np.testing.assert_array_equal(stream[i], layer.output.numpy())
