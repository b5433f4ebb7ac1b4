"""The worked example shows the trace's numbers, and they satisfy every step of the formula."""

import math

import numpy as np
import pytest

from encoder import Encoder, EncoderConfig
from viz import (
    WORKED_EXAMPLE_COLUMNS,
    number_text,
    softmax_latex,
    weighted_sum_rows,
    worked_example,
    worked_example_rows,
)

TOKENS = ["the", "cat", "saw", "the", "dog"]


def _head(rng: np.random.Generator, n: int = 5, d_head: int = 8, causal: bool = False) -> dict[str, np.ndarray]:
    """One head's trace computed here with numpy, in float32 like the encoder."""
    q, k, v = (rng.standard_normal((n, d_head)).astype(np.float32) for _ in range(3))  # (n, d_head) each
    scores = q @ k.T  # (n, n)
    scaled_scores = scores / np.float32(math.sqrt(d_head))  # (n, n)
    if causal:
        scaled_scores = np.where(np.tril(np.ones((n, n), dtype=bool)), scaled_scores, -np.inf).astype(np.float32)
    shifted = np.exp(scaled_scores - scaled_scores.max(axis=1, keepdims=True))
    weights = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)  # (n, n): softmax per row
    context = weights @ v  # (n, d_head)
    return {
        "q": q,
        "k": k,
        "v": v,
        "scores": scores,
        "scaled_scores": scaled_scores,
        "weights": weights,
        "context": context,
    }


@pytest.mark.parametrize("causal", [False, True])
def test_every_step_holds_for_every_query(causal):
    head = _head(np.random.default_rng(0), causal=causal)
    n, d_head = head["q"].shape
    for i in range(n):
        example = worked_example(i, **head)
        assert example.query_index == i
        assert example.d_head == d_head
        assert example.sqrt_d_head == pytest.approx(math.sqrt(d_head))
        # Step 2: the dots are the trace's scores row, and that row is q_i·k_j.
        assert np.array_equal(example.dots, head["scores"][i])
        assert np.allclose(example.dots, [float(head["q"][i] @ head["k"][j]) for j in range(n)], atol=1e-5)
        # Step 3: scaled = dots / √d_k, -inf where masked.
        assert np.array_equal(example.scaled, head["scaled_scores"][i])
        visible = np.isfinite(example.scaled)
        assert np.allclose(example.scaled[visible], example.dots[visible] / math.sqrt(d_head), atol=1e-6)
        assert visible.sum() == (i + 1 if causal else n)
        # Step 4: exps / their sum are the trace's weights; masked keys get exp = 0.
        assert np.array_equal(example.weights, head["weights"][i])
        assert np.allclose(example.exps / example.exp_sum, head["weights"][i], atol=1e-6, rtol=0)
        assert (example.exps[~visible] == 0).all()
        assert example.shift == 0.0  # ordinary scores: the e^{s_j} of a hand calculation
        assert np.allclose(example.exps[visible], np.exp(example.scaled[visible]), rtol=1e-12)
        # Step 5: the weighted values add up to the trace's context row.
        assert example.weighted_values.shape == (n, d_head)
        assert np.allclose(example.weighted_values[2], head["weights"][i, 2] * head["v"][2], atol=1e-6)
        assert np.allclose(example.weighted_values.sum(axis=0), head["context"][i], atol=1e-5, rtol=0)
        assert np.array_equal(example.context, head["context"][i])


def test_the_identities_hold_on_a_real_encoder_trace():
    config = EncoderConfig(d_model=32, n_heads=4, n_layers=2, causal=True)
    trace = Encoder(config, device="cpu").trace_text("the cat saw the dog")
    layer = trace.layers[1]
    arrays = {name: getattr(layer, name)[3].numpy() for name in ("q", "k", "v", "scores", "scaled_scores", "weights")}
    arrays["context"] = layer.context[3].numpy()
    example = worked_example(2, **arrays)
    assert np.isneginf(example.scaled[3:]).all()
    assert np.allclose(example.exps / example.exp_sum, arrays["weights"][2], atol=1e-6, rtol=0)
    assert np.allclose(example.weighted_values.sum(axis=0), arrays["context"][2], atol=1e-5, rtol=0)


def test_slices_of_different_heads_are_refused():
    rng = np.random.default_rng(0)
    head, other = _head(rng), _head(rng)
    with pytest.raises(ValueError, match=r"scores row differs from q\[1\]·kᵀ by .*same head and layer"):
        worked_example(1, **{**head, "scores": other["scores"]})
    with pytest.raises(ValueError, match=r"context row differs from weights\[1\]·v"):
        worked_example(1, **{**head, "context": other["context"]})
    with pytest.raises(ValueError, match="weights row differs from softmax"):
        worked_example(1, **{**head, "weights": other["weights"]})


@pytest.mark.parametrize("query_index", [-1, 5, 1.0, True, "0"])
def test_a_query_index_outside_the_sentence_is_refused(query_index):
    with pytest.raises(ValueError, match=rf"query_index={query_index!r} is invalid"):
        worked_example(query_index, **_head(np.random.default_rng(0)))


def test_numpy_integers_are_accepted_as_query_index():
    assert worked_example(np.int64(3), **_head(np.random.default_rng(0))).query_index == 3


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"k": np.zeros((4, 8))}, r"k has shape \(4, 8\) but q has shape \(5, 8\)"),
        ({"v": np.zeros((5, 7))}, r"v has shape \(5, 7\) but q has shape \(5, 8\)"),
        ({"scores": np.zeros((5, 4))}, r"scores must be square \(n, n\), but has 5 rows and 4 columns"),
        ({"weights": np.zeros((4, 4))}, "weights is 4 x 4 but q has 5 tokens"),
        ({"scaled_scores": np.zeros((2, 5, 5))}, r"scaled_scores must be 2-D \(n, n\), but has shape \(2, 5, 5\)"),
        ({"q": np.zeros(8)}, r"q must be 2-D \(n, d_head\), but has shape \(8,\)"),
    ],
)
def test_shape_errors_name_the_numbers(replace, message):
    with pytest.raises(ValueError, match=message):
        worked_example(0, **{**_head(np.random.default_rng(0)), **replace})


def test_rows_give_each_key_under_stable_ids_rounded():
    head = _head(np.random.default_rng(0), causal=True)
    example = worked_example(1, **head)
    rows = worked_example_rows(example, ["<b>", *TOKENS[1:]], decimals=3)
    assert WORKED_EXAMPLE_COLUMNS == ("key", "q·k", "÷√d_k", "exp", "weight")
    assert len(rows) == 5
    for j, row in enumerate(rows):
        assert tuple(row) == WORKED_EXAMPLE_COLUMNS
        assert row["q·k"] == round(float(head["scores"][1, j]), 3)
        assert row["weight"] == round(float(head["weights"][1, j]), 3)
        assert row["exp"] == round(float(example.exps[j]), 3)
    assert rows[0]["key"] == "<b>"  # tables show text literally: no escaping here
    assert rows[0]["÷√d_k"] == round(float(head["scaled_scores"][1, 0]), 3)
    assert rows[4]["÷√d_k"] == -math.inf and rows[4]["weight"] == 0  # masked: query 1 cannot see key 4


def test_rows_refuse_a_token_count_that_does_not_match():
    example = worked_example(0, **_head(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="the example has 5 keys but 4 key tokens were given"):
        worked_example_rows(example, TOKENS[:4])


def test_scores_too_large_for_exp_are_shifted_by_the_row_maximum():
    q = np.array([[30.0, 30.0], [1.0, 0.0]], dtype=np.float32)  # (n=2, d_head=2)
    k = np.array([[30.0, 30.0], [1.0, 1.0]], dtype=np.float32)
    v = np.eye(2, dtype=np.float32)
    scores = (q @ k.T).astype(np.float32)  # row 0: [1800, 60]
    scaled = (scores / np.float32(math.sqrt(2))).astype(np.float32)
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    weights = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    example = worked_example(0, q, k, v, scores, scaled, weights, (weights @ v).astype(np.float32))
    assert example.shift == pytest.approx(float(scaled[0].max()))
    assert np.isfinite(example.exps).all() and example.exps.max() == 1.0
    assert np.allclose(example.exps / example.exp_sum, weights[0], atol=1e-6)


def test_softmax_latex_holds_the_rows_numbers_and_no_masked_key():
    head = _head(np.random.default_rng(4), causal=True)
    example = worked_example(2, **head)  # query 3 sees keys 1..3
    latex = softmax_latex(example)
    assert latex.count("&=") == 3
    for j in range(3):
        assert f"e^{{{example.scaled[j]:.3f}}}" in latex
        assert f"= {example.weights[j]:.4f}" in latex
    assert "inf" not in latex and r"A_{3,4}" not in latex


def test_weighted_sum_rows_end_with_the_sum_and_the_traces_context():
    head = _head(np.random.default_rng(5), causal=False)
    example = worked_example(1, **head)
    n = head["q"].shape[0]
    tokens = ["<b>", "a_b", *[f"t{i}" for i in range(n - 2)]]
    rows = weighted_sum_rows(example, tokens, 3, key="key", total="sum", trace="context", value="w·v")
    assert len(rows) == n + 2
    assert rows[0]["key"] == "\\<b\\>" and rows[1]["key"] == "a\\_b"  # Markdown-literal for st.table
    assert list(rows[0]) == ["key", "w·v[0]", "w·v[1]", "w·v[2]"]  # the header says the weight is in
    weights, values = head["weights"][1], head["v"]  # (n,), (n, d_head)
    for j in range(n):  # a key's row is weight_j · v_j, not v_j
        for d in range(3):
            assert rows[j][f"w·v[{d}]"] == pytest.approx(float(weights[j] * values[j, d]), abs=1e-4)
    for d in range(3):
        assert rows[-2][f"w·v[{d}]"] == pytest.approx(float(example.weighted_values[:, d].sum()), abs=1e-4)
        assert rows[-1][f"w·v[{d}]"] == pytest.approx(float(head["context"][1, d]), abs=1e-4)
        assert rows[-2][f"w·v[{d}]"] == pytest.approx(rows[-1][f"w·v[{d}]"], abs=2e-4)


def test_number_text_prints_fixed_decimals_and_a_masked_score_as_minus_infinity():
    assert number_text(0.5) == "0.5000"
    assert number_text(-1.23456, 3) == "-1.235"
    assert number_text(-math.inf) == "−∞"
    assert number_text(-0.0) == "0.0000" and number_text(-0.00004) == "0.0000"  # no sign on a zero


def test_weighted_sum_rows_escape_tokens_only_for_markdown():
    example = worked_example(0, **_head(np.random.default_rng(1), n=3))
    tokens = ["*a*", "<b>", "c"]
    escaped = weighted_sum_rows(example, tokens, 2, key="k", total="sum", trace="z")
    literal = weighted_sum_rows(example, tokens, 2, key="k", total="sum", trace="z", markdown=False)
    assert [row["k"] for row in literal[:3]] == tokens
    assert [row["k"] for row in escaped[:3]] == [r"\*a\*", r"\<b\>", "c"]
