"""The encoder–decoder in the real app and real Chromium: a translator trained on the page
translates 我爱你 in 中文 and in English; cross-attention's five steps and worked example print the
numbers of a trace computed here; the generation scrubber, its layer and head pickers and its tiles
change the view without a server run."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import Page, expect

from encoder import EncoderDecoderConfig, Translator
from harness.page import figure, no_rerun, open_app, rerun, wait_for_app
from tests.e2e.pages import (
    expect_link,
    expected_worked_example,
    shown_worked_example,
    step_view,
    type_sentence,
    wait_until,
)
from ui.i18n import texts

GENERATION = ".avi-generation"
STEP_NAMES = ("q", "k", "v", "scores", "scaled_scores", "weights", "context")


def cross_arrays(translation) -> dict[str, np.ndarray]:
    """The decoder's cross-attention by the step view's names, from a trace computed here."""
    return {
        f"layer{i}.{name}": getattr(layer.cross_attention, name).numpy()
        for i, layer in enumerate(translation.trace.decoder)
        for name in STEP_NAMES
    }


def test_cross_attentions_steps_and_the_generation_in_the_browser(page: Page) -> None:
    t = texts("en")
    open_app(page, {"model": "translation", "attention": "cross", "layers": 1, "d_model": 32, "heads": 2},
             step_view=True)  # fmt: skip
    config = EncoderDecoderConfig(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1)
    translation = Translator(config).translate("我爱你")
    arrays = cross_arrays(translation)
    weights = figure(page, "weights")
    np.testing.assert_array_equal(np.array(weights["data"][0]["z"], dtype=np.float32), arrays["layer0.weights"][0])
    assert weights["layout"]["xaxis"]["ticktext"] == ["我", "爱", "你"]  # keys: the source
    qkv = figure(page, "qkv")
    np.testing.assert_array_equal(np.array(qkv["data"][1]["z"], dtype=np.float32), arrays["layer0.k"][0])  # (S, d_k)
    # The worked example: query 2 (the decoder's position after <s>) over the three characters.
    with no_rerun(page):
        step_view(page).locator("select.avi-query").select_option("1")
    want = expected_worked_example(arrays, list(translation.source), 0, 0, 1, t)
    wait_until(page, lambda: shown_worked_example(page) == want, "the worked example shows the trace's numbers")

    # The generation: every step's row is in the page; the scrubber, the pickers and a tile move it.
    root = page.locator(GENERATION)
    expect(root).to_have_attribute("data-ready", "true")
    steps = len(translation.emitted)
    expect(root).to_have_attribute("data-step", str(steps))
    scrubber = root.locator("input.avi-generation-range")
    with no_rerun(page):
        scrubber.focus()
        page.keyboard.press("Home")
    expect(root).to_have_attribute("data-step", "1")
    expect(root.locator(".avi-generation-word:not([hidden])")).to_have_count(1)
    expect_link(page, timeout=5.0, word=1)  # told to the server once the keys stop: the link holds it
    with no_rerun(page):
        root.locator(".avi-generation-next").click()
    expect(root).to_have_attribute("data-step", "2")
    with no_rerun(page):
        root.locator('button.avi-generation-tile[data-layer="0"][data-head="1"]').click()
    expect(root).to_have_attribute("data-head", "1")
    # The tiles are one tab stop: the picked one; the arrow keys pick the next.
    expect(root.locator('button.avi-generation-tile[tabindex="0"]')).to_have_count(1)
    with no_rerun(page):
        page.keyboard.press("ArrowLeft")
    expect(root).to_have_attribute("data-head", "0")
    expect(root.locator('button.avi-generation-tile[data-head="0"]')).to_be_focused()
    with no_rerun(page):
        page.keyboard.press("ArrowDown")  # one layer: no row below, the same tile
    expect(root).to_have_attribute("data-head", "0")
    # A link opens the generation where it says.
    open_app(page, {"model": "translation", "layers": 1, "d_model": 32, "heads": 2, "word": 2, "word_head": 2},
             step_view=True)  # fmt: skip
    expect(root).to_have_attribute("data-step", "2")
    expect(root).to_have_attribute("data-head", "1")
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_a_translator_trained_on_the_page_translates_我爱你_in_both_languages(page: Page) -> None:
    t = texts("zh")
    open_app(page, {"trainer": 1, "train_task": "translate", "train_steps": 300, "lang": "zh"})
    page.get_by_role("button", name=t["train_start"], exact=True).click()
    inspect = page.get_by_role("button", name=t["train_inspect"], exact=True)
    expect(inspect).to_be_visible(timeout=90_000)
    with rerun(page):
        inspect.click()
    wait_for_app(page, step_view=True)
    type_sentence(page, "我爱你", label=t["sentence"])
    code = page.get_by_test_id("stCode").first
    expect(code).to_have_text("我爱你  →  I love you")
    words = page.locator(f"{GENERATION} .avi-generation-token")
    expect(words).to_have_text(["I", "love", "you", t["generation_end"]])
    with rerun(page):
        page.get_by_text("English", exact=True).click()
    expect(page.get_by_test_id("stCode").first).to_have_text("我爱你  →  I love you")
    expect(words.last).to_have_text(texts("en")["generation_end"])
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_the_decoders_mask_is_a_step_of_its_own_and_its_weights_are_zero(page: Page) -> None:
    open_app(page, {"model": "translation", "attention": "decoder", "layers": 1, "d_model": 32, "heads": 2},
             step_view=True)  # fmt: skip
    config = EncoderDecoderConfig(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1)
    translation = Translator(config).translate("我爱你")
    n = len(translation.target)
    mask = step_view(page).locator('section[data-part="mask"]')
    expect(mask).to_be_visible()
    drawn = figure(page, "mask")["data"][0]
    later = np.triu(np.ones((n, n), dtype=bool), 1)  # (T, T): a key after its query
    assert np.array_equal(np.array(drawn["text"]) == "×", later)  # marked, not blank
    assert all(
        value == 0
        for row, hidden in zip(drawn["z"], later, strict=True)
        for value, h in zip(row, hidden, strict=True)
        if not h
    )
    weights = np.array(figure(page, "weights")["data"][0]["z"], dtype=np.float32)
    expected = translation.trace.decoder[0].self_attention.weights[0].numpy()
    np.testing.assert_array_equal(weights, expected)
    assert (weights[later] == 0).all()
    with rerun(page):
        page.get_by_text("Encoder self-attention", exact=True).click()
    wait_for_app(page, step_view=True)
    expect(mask).to_have_count(0)  # the encoder has no mask
