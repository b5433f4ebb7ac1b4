"""The trace (encoder.trace): its intermediates' names, order and shapes, its numpy form, and the
attention rollout read from it, checked against a plain product of the layers' weights."""

from __future__ import annotations

import numpy as np
import torch

from encoder import Encoder, EncoderConfig, LayerTrace


def test_trace_shapes_and_forward_order():
    config = EncoderConfig(d_model=48, n_heads=6, n_layers=3, d_ff=80)
    trace = Encoder(config).trace_text("我爱你 and you")
    assert trace.tokens == ["我", "爱", "你", "and", "you"]
    n, d, h, dh, ff = 5, 48, 6, 8, 80
    assert LayerTrace.names() == [
        "input",
        "attn_input",
        "q",
        "k",
        "v",
        "scores",
        "scaled_scores",
        "weights",
        "context",
        "attn_output",
        "attn_residual",
        "ffn_input",
        "ffn_hidden",
        "ffn_output",
        "ffn_residual",
        "output",
    ]
    expected_shapes = {
        "q": (h, n, dh),
        "k": (h, n, dh),
        "v": (h, n, dh),
        "context": (h, n, dh),
        "scores": (h, n, n),
        "scaled_scores": (h, n, n),
        "weights": (h, n, n),
        "ffn_hidden": (n, ff),
    }
    assert len(trace.layers) == 3
    for layer in trace.layers:
        for name in LayerTrace.names():
            tensor = getattr(layer, name)
            assert tuple(tensor.shape) == expected_shapes.get(name, (n, d)), name
            assert not tensor.requires_grad and tensor.dtype == torch.float32
    for a, b in zip(trace.layers, trace.layers[1:], strict=False):
        assert b.input is a.output
    assert trace.output.shape == (n, d)
    assert trace.mask is None


def test_trace_to_numpy_names_every_array():
    trace = Encoder(EncoderConfig(n_layers=2)).trace_text("hello world")
    arrays = trace.to_numpy()
    assert list(arrays["tokens"]) == ["hello", "world"]
    assert np.array_equal(arrays["layer1.weights"], trace.layers[1].weights.numpy())
    assert {f"layer{i}.{name}" for i in range(2) for name in LayerTrace.names()} <= arrays.keys()


def test_rollout_is_the_product_of_the_layers_mixed_with_the_identity():
    trace = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=3, seed=5)).trace_text("the cat sat on the mat")
    weights = [layer.weights.numpy().astype(np.float64) for layer in trace.layers]  # L × (H, n, n)
    n = len(trace.tokens)
    expected, product = [], np.eye(n)
    for layer in weights:
        a = 0.5 * layer.mean(axis=0) + 0.5 * np.eye(n)
        a = a / a.sum(axis=1, keepdims=True)
        product = a @ product
        expected.append(product.copy())
    np.testing.assert_allclose(trace.rollout(residual=True), np.stack(expected), atol=1e-12)
    raw = np.linalg.multi_dot([w.mean(axis=0) for w in reversed(weights)])  # Â_3 · Â_2 · Â_1
    np.testing.assert_allclose(trace.rollout(residual=False)[-1], raw, atol=1e-12)
    np.testing.assert_allclose(trace.rollout().sum(axis=-1), 1.0, atol=1e-12)  # rows stay distributions
