"""The generation element's payload carries exactly the trace's numbers and tokens, and refuses mismatches."""

import json

import numpy as np
import pytest
from plotly import colors as px_colors

from viz.generation import GENERATION_STRING_KEYS, generation_payload
from viz.style import SEQUENTIAL_SCALES, ChartStyle

SOURCE = ["我", "爱", "你", "我"]  # 我 twice: two columns, not one
EMITTED = ["I", "love", "<b>you</b>", "</s>"]
STRINGS = {key: f"[{key}]" for key in GENERATION_STRING_KEYS}


def _cross(rng: np.random.Generator, layers: int, heads: int, n_target: int, n_source: int) -> np.ndarray:
    logits = rng.standard_normal((layers, heads, n_target, n_source))
    exps = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exps / exps.sum(axis=-1, keepdims=True)).astype(np.float32)  # (L, H, T, S), rows sum to 1


@pytest.fixture
def cross() -> np.ndarray:
    return _cross(np.random.default_rng(0), 2, 3, len(EMITTED), len(SOURCE))


@pytest.fixture
def probabilities() -> np.ndarray:
    return np.array([0.91, 0.5, 0.123456, 0.99], dtype=np.float32)


def test_every_head_and_step_is_the_input_slice(cross, probabilities):
    payload = generation_payload(SOURCE, EMITTED, probabilities, cross, STRINGS)
    assert (payload["n_layers"], payload["n_heads"], payload["n_steps"]) == (2, 3, 4)
    for layer in range(2):
        for head in range(3):
            for step in range(4):
                row = np.asarray(payload["weights"][layer][head][step], dtype=np.float32)
                np.testing.assert_array_equal(row, cross[layer, head, step, :])


def test_weights_are_the_float32_values_exactly(cross, probabilities):
    payload = generation_payload(SOURCE, EMITTED, probabilities, cross.astype(np.float64), STRINGS)
    as_sent = np.asarray(json.loads(json.dumps(payload))["weights"])  # through JSON, as the browser gets it
    np.testing.assert_array_equal(as_sent, cross.astype(np.float64))


def test_probabilities_round_trip(cross, probabilities):
    payload = json.loads(json.dumps(generation_payload(SOURCE, EMITTED, probabilities, cross, STRINGS)))
    np.testing.assert_array_equal(np.asarray(payload["probabilities"], dtype=np.float32), probabilities)
    assert payload["probability_texts"] == ["0.91", "0.50", "0.12", "0.99"]


def test_tokens_come_as_typed_and_escaped_for_plotly(cross, probabilities):
    payload = generation_payload(SOURCE, EMITTED, probabilities, cross, STRINGS)
    assert payload["source"] == SOURCE
    assert payload["source_labels"] == SOURCE
    assert payload["emitted"] == EMITTED
    assert payload["shown"] == ["I", "love", "<b>you</b>", "[generation_end]"]
    assert payload["shown_labels"] == ["I", "love", "&lt;b&gt;you&lt;/b&gt;", "[generation_end]"]
    assert payload["end"] == [False, False, False, True]


def test_an_end_token_only_ends_the_sentence(probabilities):
    emitted = ["</s>", "a", "b", "c"]  # a word spelled like the end token, not at the end, stays a word
    cross = _cross(np.random.default_rng(1), 1, 1, 4, 4)
    payload = generation_payload(SOURCE, emitted, probabilities, cross, STRINGS)
    assert payload["end"] == [False, False, False, False]
    assert payload["shown"] == emitted


def test_colour_scale_is_the_weight_maps_with_a_fixed_range(cross, probabilities):
    for palette in ("default", "colorblind"):
        payload = generation_payload(SOURCE, EMITTED, probabilities, cross, STRINGS, style=ChartStyle(palette=palette))
        scale = px_colors.get_colorscale(SEQUENTIAL_SCALES[palette])
        assert [position for position, _ in payload["colorscale"]] == [position for position, _ in scale]
        assert all(colour.startswith("rgb(") for _, colour in payload["colorscale"])
        assert (payload["zmin"], payload["zmax"]) == (0.0, 1.0)


def test_the_payload_is_json_and_its_id_follows_the_content(cross, probabilities):
    payload = generation_payload(SOURCE, EMITTED, probabilities, cross, STRINGS)
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    again = generation_payload(SOURCE, EMITTED, probabilities, cross.copy(), STRINGS)
    assert again["id"] == payload["id"]
    changed = cross.copy()
    changed[1, 2, 3, 0] += np.float32(0.001)
    assert generation_payload(SOURCE, EMITTED, probabilities, changed, STRINGS)["id"] != payload["id"]
    assert payload["strings"] == STRINGS


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 3, 3, 4), "cross_weights has 3 target rows but 4 tokens were emitted"),
        ((2, 3, 4, 5), "cross_weights has 5 source columns but 4 source tokens were given"),
        ((3, 4, 4), "cross_weights must be 4-D (layers, heads, T, S), but has shape (3, 4, 4)"),
        ((0, 3, 4, 4), "at least one layer and one head"),
    ],
)
def test_mismatched_shapes_name_the_numbers(shape, message, probabilities):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generation_payload(SOURCE, EMITTED, probabilities, np.zeros(shape, dtype=np.float32), STRINGS)


def test_probabilities_must_have_one_per_step(cross):
    with pytest.raises(ValueError, match="probabilities has 3 entries but 4 tokens were emitted"):
        generation_payload(SOURCE, EMITTED, np.ones(3), cross, STRINGS)


def test_missing_strings_are_named(cross, probabilities):
    strings = {key: value for key, value in STRINGS.items() if key not in ("generation_step", "generation_tile")}
    with pytest.raises(ValueError, match="strings lacks generation_step, generation_tile"):
        generation_payload(SOURCE, EMITTED, probabilities, cross, strings)


def test_a_single_string_is_not_a_token_list(cross, probabilities):
    with pytest.raises(TypeError, match="sequences of tokens"):
        generation_payload("我爱你我", EMITTED, probabilities, cross, STRINGS)
