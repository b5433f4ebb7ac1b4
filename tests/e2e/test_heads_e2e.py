"""The strip of a layer's heads and the grid of every head in real Chromium, in English and 中文:
each thumbnail captioned with its head's habit, and several tokens chosen at once, drawn in the
browser with no server run. Every caption is checked against encoder.head_habits, computed here."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from encoder import HABIT_THRESHOLD, HABITS, head_habits, selected_attention
from harness.chromium import screenshot_of
from harness.page import chart_of, figure, no_rerun
from tests.e2e.pages import CAT, open_page, pick, step_view, trace_arrays
from ui.i18n import texts
from viz import number_text

LANGS = ("en", "zh")
HABIT_KEYS = {name: f"habit_{name}" for name in HABITS}


def captions(page: Page, name: str) -> list[str]:
    """The captions the chart `name` drew on its tiles, in order (layer by layer, head by head)."""
    return chart_of(page, name).locator("text.avi-annotation").all_text_contents()


def expected_habits(weights: np.ndarray, tokens: list[str], t: dict[str, str]) -> list[list[str]]:
    scores = head_habits(weights, tokens)  # (layers, heads, habits)
    rows = []
    for layer in scores:
        row = []
        for head in layer:
            best = int(head.argmax())
            if head[best] < HABIT_THRESHOLD:
                row.append(t["habit_mixed"])
            else:
                row.append(f"{t[HABIT_KEYS[HABITS[best]]]} {number_text(float(head[best]), 2)}")
        rows.append(row)
    return rows


def expected_picks(weights: np.ndarray, tokens: list[str], picked: list[int], as_keys: bool) -> list[list[str]]:
    together = selected_attention(weights, picked, as_keys=as_keys)  # (layers, heads, n)
    best = together.argmax(axis=-1)
    top = together.max(axis=-1)
    return [
        [
            f"{tokens[b]} → {number_text(float(v), 2)}" if as_keys else f"→ {tokens[b]} {number_text(float(v), 2)}"
            for b, v in zip(layer_best, layer_top, strict=True)
        ]
        for layer_best, layer_top in zip(best, top, strict=True)
    ]


def chip(page: Page, section: str, position: int):
    return step_view(page).locator(f'section[data-{section}] .avi-chip[data-token="{position}"]')


@pytest.mark.parametrize("lang", LANGS)
def test_every_thumbnail_is_captioned_with_its_heads_habit(page: Page, lang: str) -> None:
    t = texts(lang)
    tokens, arrays = trace_arrays(CAT)
    weights = np.stack([arrays[f"layer{i}.weights"] for i in range(2)])
    habits = expected_habits(weights, tokens, t)
    open_page(page, {"text": CAT, "lang": lang})
    expect(chart_of(page, "grid").locator("text.avi-annotation")).to_have_count(8)
    assert captions(page, "grid") == [caption for row in habits for caption in row]
    assert captions(page, "heads") == habits[0]
    pick(page, t["layer"], 2)  # the strip follows the layer, in the browser
    expect(chart_of(page, "heads").locator("text.avi-annotation").first).to_have_text(habits[1][0])
    assert captions(page, "heads") == habits[1]
    annotations = figure(page, "grid")["layout"]["annotations"]  # what a downloaded image draws too
    assert [a["text"] for a in annotations] == [caption for row in habits for caption in row]


@pytest.mark.parametrize("lang", LANGS)
def test_several_tokens_chosen_at_once_show_where_they_look_and_who_looks_at_them(page: Page, lang: str) -> None:
    t = texts(lang)
    tokens, arrays = trace_arrays(CAT)  # the cat sat on the mat
    weights = np.stack([arrays[f"layer{i}.weights"] for i in range(2)])  # (2, 4, 6, 6)
    open_page(page, {"text": CAT, "lang": lang})
    view = step_view(page)
    with no_rerun(page):
        chip(page, "step=heads", 1).click()  # "cat"
    with no_rerun(page):
        chip(page, "part=grid", 5).click()  # "mat", in the grid's picker: one choice for both
    expect(view).to_have_attribute("data-picked", "queries:1,5")
    expect(chip(page, "part=grid", 1)).to_have_attribute("aria-pressed", "true")
    expect(chip(page, "step=heads", 5)).to_have_attribute("aria-pressed", "true")
    looking = expected_picks(weights, tokens, [1, 5], as_keys=False)
    expect(chart_of(page, "heads").locator("text.avi-annotation").first).to_have_text(looking[0][0])
    assert captions(page, "grid") == [caption for row in looking for caption in row]
    expect(view.locator("section[data-step=heads] .avi-hint").last).to_have_text(t["pick_queries_hint"])
    z = np.array(figure(page, "grid")["data"][0]["z"], dtype=float)  # None (NaN) where nothing is shown
    stride = len(tokens) + 1
    tile = z[stride : stride + 6, 2 * stride : 2 * stride + 6]  # layer 2, head 3
    np.testing.assert_allclose(tile[[1, 5]], weights[1, 2][[1, 5]], rtol=1e-6)  # the chosen rows, exactly
    assert np.isnan(tile[[0, 2, 3, 4]]).all()  # and nothing else

    with no_rerun(page):
        view.locator("section[data-step=heads] .avi-radios input[value=keys]").check()
    expect(view).to_have_attribute("data-picked", "keys:1,5")
    looked_at = expected_picks(weights, tokens, [1, 5], as_keys=True)
    expect(chart_of(page, "heads").locator("text.avi-annotation").first).to_have_text(looked_at[0][0])
    assert captions(page, "grid") == [caption for row in looked_at for caption in row]
    z = np.array(figure(page, "grid")["data"][0]["z"], dtype=float)
    tile = z[:6, :6]  # layer 1, head 1: the chosen columns
    np.testing.assert_allclose(tile[:, [1, 5]], weights[0, 0][:, [1, 5]], rtol=1e-6)
    assert np.isnan(tile[:, [0, 2, 3, 4]]).all()
    screenshot_of(view.locator("section[data-part=grid]"), f"heads-{lang}-picked")

    with no_rerun(page):
        view.locator("section[data-part=grid] .avi-pick-clear").click()
    expect(view).to_have_attribute("data-picked", "")
    habits = expected_habits(weights, tokens, t)
    expect(chart_of(page, "heads").locator("text.avi-annotation").first).to_have_text(habits[0][0])
    assert captions(page, "grid") == [caption for row in habits for caption in row]
