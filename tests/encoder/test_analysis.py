"""What heads are for (encoder.analysis, and knocking heads out), each checked against an
independent computation: rollout by a plain product, ablation by editing the weights, the
principal plane by numpy's SVD, habits on weights written by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder import Encoder, EncoderConfig
from encoder.analysis import HABITS, habit_names, head_habits, query_key_points, selected_attention

CONFIG = EncoderConfig(d_model=32, n_heads=4, n_layers=3, seed=5)
SENTENCE = "the cat sat on the mat"


@pytest.fixture(scope="module")
def model() -> Encoder:
    return Encoder(CONFIG, device="cpu")


def test_rollout_is_the_product_of_the_layers_mixed_with_the_identity(model):
    trace = model.trace_text(SENTENCE)
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


def test_knocking_a_head_out_is_zeroing_its_columns_of_w_o(model):
    ablated = model.trace_text(SENTENCE, ablate=[(1, 2)])
    edited = Encoder(CONFIG, device="cpu")  # the same seed: the same weights
    d_head = CONFIG.d_model // CONFIG.n_heads
    with torch.no_grad():
        edited.layers[1].out_proj.weight[:, 2 * d_head : 3 * d_head] = 0.0  # head 3 of layer 2 reaches nothing
    reference = edited.trace_text(SENTENCE)
    original = model.trace_text(SENTENCE)
    assert ablated.ablated == ((1, 2),)
    torch.testing.assert_close(ablated.output, reference.output, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ablated.layers[2].weights, reference.layers[2].weights, atol=1e-6, rtol=1e-6)
    # The knocked-out layer still attends as before; what changes starts after its W_O.
    torch.testing.assert_close(ablated.layers[1].weights, original.layers[1].weights)
    assert torch.all(ablated.layers[1].context[2] == 0)
    assert not torch.allclose(ablated.layers[2].weights, original.layers[2].weights)


def test_every_head_can_be_knocked_out_and_a_bad_pair_is_refused(model):
    everything = [(layer, head) for layer in range(3) for head in range(4)]
    trace = model.trace_text("我爱你", ablate=everything)
    for ours, layer in zip(model.layers, trace.layers, strict=True):  # attention adds only W_O's bias
        torch.testing.assert_close(layer.attn_output, ours.out_proj.bias.expand_as(layer.attn_output))
    with pytest.raises(ValueError, match=r"ablate=\(3, 0\) is out of range"):
        model.trace_text("我爱你", ablate=[(3, 0)])


def test_queries_and_keys_lie_on_the_joint_principal_plane_numpy_finds(model):
    trace = model.trace_text(SENTENCE)
    q, k = trace.layers[0].q[1].numpy(), trace.layers[0].k[1].numpy()  # (n, d_head)
    points = query_key_points(q, k)
    both = np.concatenate([q, k]).astype(np.float64)
    centred = both - both.mean(axis=0)
    _, s, vt = np.linalg.svd(centred)
    reference = centred @ vt[:2].T  # (2n, 2)
    got = np.concatenate([points.queries, points.keys])
    for axis in range(2):  # a principal axis is defined up to its sign
        sign = np.sign(reference[:, axis] @ got[:, axis])
        np.testing.assert_allclose(got[:, axis], sign * reference[:, axis], atol=1e-6)
    np.testing.assert_allclose(points.explained, s[:2] ** 2 / (s**2).sum(), atol=1e-12)
    one = query_key_points(q[:1], k[:1])  # one token: two points, still a plane
    assert one.queries.shape == one.keys.shape == (1, 2)


def test_habits_of_heads_written_by_hand():
    n = 5
    previous = np.eye(n, k=-1)
    previous[0, 0] = 1.0
    weights = np.stack([previous, np.eye(n), np.full((n, n), 1 / n), np.eye(n, k=1)])[None]
    weights[0, 3, -1, -1] = 1.0  # the last query has no next token: it looks at itself
    tokens = ["[CLS]", "a", "b", "c", "[SEP]"]
    scores = head_habits(weights, tokens)
    assert scores.shape == (1, 4, len(HABITS))
    by = dict(zip(HABITS, range(len(HABITS)), strict=True))
    assert scores[0, 0, by["previous"]] == 1.0
    assert scores[0, 1, by["self"]] == 1.0
    assert scores[0, 2, by["broad"]] == pytest.approx(1.0)
    assert scores[0, 2, by["sep"]] == pytest.approx(1 / n) and scores[0, 2, by["first"]] == pytest.approx(1 / n)
    assert scores[0, 3, by["next"]] == 1.0
    assert list(habit_names(scores)[0]) == ["previous", "self", "broad", "next"]
    half = np.full((1, 1, 5, 5), 0.125)
    half[..., 0] = 0.5  # half of every row on the first key, the rest spread evenly
    # distance from uniform 0.5·(0.3 + 4·0.075) = 0.3, over the largest 0.8: broad 1 − 0.375
    assert head_habits(half, tokens)[0, 0, by["broad"]] == pytest.approx(0.625)
    single = head_habits(np.ones((1, 1, 1, 1)), ["我"])  # one token: nothing before or after it
    assert single[0, 0, by["previous"]] == 0.0 and single[0, 0, by["self"]] == 1.0


def test_several_tokens_together_as_queries_and_as_keys():
    weights = np.zeros((1, 1, 3, 3))
    weights[0, 0] = [[0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]]
    np.testing.assert_allclose(selected_attention(weights, [0, 1])[0, 0], [0.25, 0.35, 0.4])  # rows' mean
    np.testing.assert_allclose(selected_attention(weights, [1, 2], as_keys=True)[0, 0], [0.5, 1.0, 0.0])  # sums
    np.testing.assert_allclose(selected_attention(weights, [2, 2, 0])[0, 0], [0.75, 0.25, 0.0])  # each once
    for bad in ([], [3], [-1]):
        with pytest.raises(ValueError, match="from 0 to 2"):
            selected_attention(weights, bad)
