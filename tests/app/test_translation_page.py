"""The encoder–decoder's page (ui.translation) through AppTest: a translator trained on the page
translates 我爱你 in both languages, the step view shows the encoder's and the decoder's masked
self-attention with the trace's numbers, the generation element gets every step's cross-attention,
random weights follow the sidebar's shape, and a sentence the model cannot read is refused in the
page's language."""

from __future__ import annotations

import json

import numpy as np
import pytest

from encoder import EncoderDecoderConfig, Translator
from encoder.translation import BOS, EOS, alignment_matrix, cross_weights, source_vocabulary
from tests.app import page
from ui import trainings
from ui.i18n import texts
from ui.trainings import TrainingKey

STEPS = 300  # the smallest choice: the default shape (d_model 32, 2 heads, 2 + 2 layers) learns the corpus
KEY = TrainingKey("translate", 32, 2, 2, STEPS, 0)


def _generation(at) -> dict:
    """The generation element's data, as the browser receives it."""
    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "generation"]
    return json.loads(element.proto.json)


@pytest.fixture(scope="module")
def trained_page():
    """The page after pressing Train with the task "translate" (one training for the module: the
    server keeps it, and both languages open it)."""
    at = page.run(trainer="1", train_task="translate", train_steps=str(STEPS))
    at = page.after(at.button(key="train_start").click())
    job = trainings.trainings().get(KEY)
    assert job is not None and job.done.wait(120), "the translation did not train within 120 s"
    assert job.error is None, job.error
    return page.after(at), job


def test_the_training_shows_the_probes_cross_attention_and_the_alignment(trained_page):
    at, job = trained_page
    t = texts("en")
    result = job.result
    assert next(s.value for s in at.success).startswith(t["train_translate_done"].split("{")[0])
    assert result.accuracy >= 0.9  # held out, never trained on
    probe = result.probe
    ideal = page.chart(at, "training_alignment")
    np.testing.assert_array_equal(page.decode(ideal["data"][0]["z"]), alignment_matrix(probe))
    assert page.ticks(ideal, "xaxis") == list(probe.source) and page.ticks(ideal, "yaxis") == list(probe.target)
    shown = page.chart(at, f"training_cross_{STEPS}")
    layer = result.snapshots[-1].weights.shape[0] - 1
    weights = page.decode(shown["data"][0]["z"])  # (words, S): one head of the last layer
    heads = result.snapshots[-1].weights[layer, :, : len(probe.target)]  # (heads, words, S)
    assert any(np.array_equal(weights, head) for head in heads)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_translator_trained_here_translates_我爱你_step_by_step(trained_page, lang):
    _, job = trained_page
    t = texts(lang)
    at = page.run(trainer="1", train_task="translate", train_steps=str(STEPS), lang=lang)
    at = page.after(at.button(key="train_inspect").click())
    at = page.after(at)
    assert at.radio(key="model").value == "translation" and at.radio(key="translation_weights").value == "trained"
    assert at.text_input(key="text").value == job.result.probe.source
    at = page.after(at.text_input(key="text").set_value("我爱你"))
    assert "我爱你  →  I love you" in [code.value for code in at.code]
    translator = job.result.model
    reference = translator.translate("我爱你")  # the model's own trace: the page must show its numbers
    assert reference.words == ["I", "love", "you"]

    header, arrays = page.step_view(at)  # the encoder's self-attention over the characters
    assert header["tokens"] == ["我", "爱", "你"] and not header["masked"]
    for i, layer in enumerate(reference.trace.encoder.layers):
        np.testing.assert_array_equal(arrays[f"layer{i}.weights"], layer.weights.numpy())

    at = page.after(at.radio(key="attention").set_value("decoder"))
    assert t["attention_decoder"] in at.radio(key="attention").options
    header, arrays = page.step_view(at)
    assert header["tokens"] == [BOS, "I", "love", "you"] and header["masked"]
    for i, layer in enumerate(reference.trace.decoder):
        np.testing.assert_array_equal(arrays[f"layer{i}.weights"], layer.self_attention.weights.numpy())
        np.testing.assert_array_equal(arrays[f"layer{i}.scores"], layer.self_attention.scores.numpy())
    weights = arrays["layer0.weights"]  # (heads, T, T): nothing above the diagonal
    assert (weights[:, np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0).all()
    assert np.isneginf(arrays["layer0.scaled_scores"][:, 0, 1:]).all()

    at = page.after(at.radio(key="attention").set_value("cross"))
    header, arrays = page.step_view(at)  # target positions ask, the source's characters answer
    assert header["tokens"] == [BOS, "I", "love", "you"] and header["key_tokens"] == ["我", "爱", "你"]
    assert header["cross"] and not header["masked"]
    for i, layer in enumerate(reference.trace.decoder):
        for name in ("q", "k", "v", "scores", "scaled_scores", "weights", "context"):
            np.testing.assert_array_equal(arrays[f"layer{i}.{name}"], getattr(layer.cross_attention, name).numpy())
    assert arrays["layer0.k"].shape[1] == 3 and arrays["layer0.weights"].shape[1:] == (4, 3)
    data = _generation(at)
    assert data["emitted"] == ["I", "love", "you", EOS]
    np.testing.assert_array_equal(np.asarray(data["weights"], dtype=np.float32), cross_weights(reference.trace))


def test_random_weights_follow_the_sidebars_shape_and_the_link():
    at = page.run(model="translation", d_model="32", heads="2", layers="1", seed="3", attention="decoder")
    config = EncoderDecoderConfig(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, seed=3)
    expected = Translator(config).translate("我爱你")  # built here, apart from the page's cache
    assert f"我爱你  →  {expected.text}" in [code.value for code in at.code]
    header, arrays = page.step_view(at)
    assert header["tokens"] == expected.target and header["n_layers"] == 1 and header["n_heads"] == 2
    np.testing.assert_array_equal(arrays["layer0.weights"], expected.trace.decoder[0].self_attention.weights.numpy())
    at = page.run(model="translation", attention="sideways")  # a bad link value: a notice, and the default
    assert any("sideways" in alert for alert in page.alerts(at))
    assert page.step_view(at)[0]["tokens"] == ["我", "爱", "你"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_characters_outside_the_vocabulary_are_refused_in_the_pages_language(lang):
    t = texts(lang)
    at = page.run(model="translation", text="我爱<b>猫</b>", lang=lang)
    [warning] = [w.value for w in at.warning]
    assert warning.startswith(t["err_translation_unknown"].split("{")[0])
    assert "猫" in warning and "\\<" in warning and " ".join(source_vocabulary()) in warning  # escaped, listed
    assert not page.has_step_view(at)
    at = page.after(at.text_input(key="text").set_value("他爱我们"))
    assert at.code[0].value.startswith("他爱我们  →  ")
    at = page.after(at.text_input(key="text").set_value("我爱你" * 50))  # past the encoder's 128 tokens
    [warning] = [w.value for w in at.warning]
    assert warning.startswith(t["err_too_many"].split("{")[0]) and not page.has_step_view(at)


def test_a_link_to_a_translator_not_trained_here_says_what_to_do():
    at = page.run(model="translation", tweights="trained", train_seed="4242")
    assert texts("en")["translation_trained_needed"] in page.alerts(at)
    assert not page.has_step_view(at)


def test_a_class_follows_the_teachers_translation_and_attention():
    teacher = page.run(model="translation", layers="1")
    [start] = [b for b in teacher.button if b.key == "class_start"]
    teacher = page.after(start.click())
    teacher = page.after(teacher.radio(key="attention").set_value("cross"))
    student = page.run(**{"class": teacher.session_state.class_code})
    header, _ = page.step_view(student)
    assert student.radio(key="model").value == "translation" and student.session_state.attention == "cross"
    assert header["cross"] and header["key_tokens"] == ["我", "爱", "你"] and header["n_layers"] == 1


def test_the_link_holds_the_generations_word_layer_and_head():
    at = page.run(model="translation", layers="2", d_model="32", heads="2", word="2", word_layer="2", word_head="2")
    command = _generation(at)["command"]
    assert (command["word"], command["layer"], command["head"]) == (2, 1, 1)  # 0-based layer and head
    revision = command["revision"]
    at = page.after(at.radio(key="attention").set_value("cross"))  # a rerun moves nothing
    assert _generation(at)["command"]["revision"] == revision
    at = page.run(model="translation", word="99", word_head="3", heads="2")  # past the translation: fitted
    command = _generation(at)["command"]
    assert command["word"] == len(_generation(at)["emitted"]) and command["head"] == 1
    at = page.run(model="translation", word="-1")
    assert any("-1" in alert for alert in page.alerts(at)) and _generation(at)["command"]["word"] == 0


def test_a_class_follows_the_teachers_word():
    teacher = page.run(model="translation", layers="1")
    [start] = [b for b in teacher.button if b.key == "class_start"]
    teacher = page.after(start.click())
    student = page.run(**{"class": teacher.session_state.class_code})
    before = _generation(student)["command"]
    teacher.session_state["word"] = 2  # as the teacher's browser reports its scrubber
    teacher = page.after(teacher)
    assert teacher.query_params["word"] == "2"  # the link holds it, and the class hears it
    student = page.after(student)
    after = _generation(student)["command"]
    assert after["word"] == 2 and after["revision"] != before["revision"]  # the student's view moves


def test_a_message_or_another_model_and_back_keeps_the_attention_chosen():
    """The Attention radio is not drawn under a message or on another model: its value must outlive
    those runs (a run that read it after one raised KeyError)."""
    at = page.run(model="translation", layers="1")
    at = page.after(at.radio(key="attention").set_value("decoder"))
    at = page.after(at.text_input(key="text").set_value("我爱猫"))  # refused: no radio on this run
    at = page.after(at.text_input(key="text").set_value("我爱他"))
    assert at.radio(key="attention").value == "decoder"
    at = page.after(at.radio(key="model").set_value("random"))
    at = page.after(at.text_input(key="text").set_value("我爱你"))
    at = page.after(at.radio(key="model").set_value("translation"))
    assert at.radio(key="attention").value == "decoder" and page.step_view(at)[0]["masked"]
