"""The experiments, presentation mode, the causal mask and the dark theme in real Chromium, in
English and 中文: what a teacher clicks in class, read back the way the class sees it."""

from __future__ import annotations

import re

import pytest
from e2e_harness import ALERT, CHART, app_context, open_app, rerun, screenshot, screenshot_of
from playwright.sync_api import Browser, Page, expect
from test_app_e2e import LOVE, charts_in, choose, expect_no_exception, expect_ticks

from viz.i18n import texts

LANGS = ("en", "zh")


def open_experiment(page: Page, lang: str, lab: str, text: str = "我爱你") -> None:
    """Open the page, then choose the experiment with its radio, as a teacher would."""
    t = texts(lang)
    open_app(page, {"text": text, "lang": lang})
    expect(charts_in(page, "experiments")).to_have_count(0)  # nothing until one is chosen
    choose(page, t["lab"], t[f"lab_{lab}"], charts=1)
    expect(page).to_have_url(re.compile(f"[?&]lab={lab}(&|$)"))
    expect_no_exception(page)


@pytest.mark.parametrize("lang", LANGS)
def test_head_view_draws_lines_for_every_head_and_follows_one_token(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "heads")
    chart = charts_in(page, "experiments")
    expect(chart).to_have_count(1)
    expect(chart.locator(".legendtext")).to_have_text([f"{t['head']} {h}" for h in range(1, 5)])
    expect(chart.locator(".textpoint text")).to_have_text(LOVE + LOVE)  # the query and the key column
    expect(chart.locator("g.trace.scatter[style*='opacity: 0.08']")).to_have_count(0)
    page.get_by_label(t["hv_token"]).click()
    with rerun(page, charts=1):
        page.get_by_role("option", name="2 · 爱").click()
    expect(chart.locator("g.trace.scatter[style*='opacity: 0.08']").first).to_be_attached()  # the others fade
    # A click on a token in the diagram picks it too: the query column is the first trace of labels.
    query_column = chart.locator("g.trace.scatter").filter(has=page.locator("g.textpoint")).first
    with rerun(page, charts=1):
        query_column.locator("path.point").nth(2).click(force=True)
    expect(page.get_by_role("combobox", name=t["hv_token"])).to_have_value("3 · 你")
    screenshot_of(page.locator(".st-key-experiments"), f"lab-{lang}-head-view")


@pytest.mark.parametrize("lang", LANGS)
def test_why_divide_by_sqrt_dk_shows_saturation_variance_and_both_softmaxes(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "scaling")
    charts = charts_in(page, "experiments")
    expect(charts).to_have_count(4)
    expect(charts.nth(0).locator(".legendtext")).to_have_text([t["sc_scaled"], t["sc_unscaled"], t["sc_uniform"]])
    for i in (2, 3):  # scaled and unscaled weights, side by side
        expect_ticks(charts.nth(i), "x", LOVE)
    screenshot_of(page.locator(".st-key-experiments"), f"lab-{lang}-scaling")


@pytest.mark.parametrize("lang", LANGS)
def test_padding_marks_the_padded_keys(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "padding")
    chart = charts_in(page, "experiments")
    expect(chart).to_have_count(1)
    expect_ticks(chart, "x", [*LOVE, "[PAD]", "[PAD]"])
    cells = chart.locator("g.text-group text, .heatmaplayer text")  # Plotly's printed cell values
    expect(cells.filter(has_text="×")).to_have_count(2 * 5)  # two padded keys, five queries
    expect(page.locator(".st-key-experiments").get_by_text(t["pad_check"].split("{")[0].strip())).to_be_visible()
    screenshot_of(page.locator(".st-key-experiments"), f"lab-{lang}-padding")


@pytest.mark.parametrize("lang", LANGS)
def test_a_shuffle_without_positions_only_reorders_and_with_positions_changes(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "permute")
    lab = page.locator(".st-key-experiments")
    expect(charts_in(page, "experiments")).to_have_count(3)
    expect(lab.locator(ALERT)).to_contain_text(t["perm_same"].split("{")[0].strip())
    with rerun(page, charts=1):
        lab.get_by_text(t["perm_positions"], exact=True).click()
    expect(lab.locator(ALERT)).to_contain_text(t["perm_differs"].split("{")[0].strip())
    screenshot_of(lab, f"lab-{lang}-permute")


@pytest.mark.parametrize("lang", LANGS)
def test_compare_shows_both_runs_and_their_difference(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "compare")
    charts = charts_in(page, "experiments")
    expect(charts).to_have_count(3)
    expect(charts.nth(1).locator(".gtitle")).to_contain_text("B")
    for i in range(3):
        expect_ticks(charts.nth(i), "y", LOVE)
    sentence_b = page.get_by_label(t["cmp_sentence_b"], exact=True)
    with rerun(page):
        sentence_b.fill("the cat")
        sentence_b.press("Enter")
    expect(charts).to_have_count(2)  # three tokens against two: no difference map, a message instead
    expect(page.locator(".st-key-experiments").locator(ALERT)).to_be_visible()
    screenshot_of(page.locator(".st-key-experiments"), f"lab-{lang}-compare")


@pytest.mark.parametrize("lang", LANGS)
def test_presentation_mode_steps_with_the_arrow_keys(page: Page, lang: str) -> None:
    t = texts(lang)
    open_app(page, {"text": "我爱你", "lang": lang, "present": "1"})
    step_charts = page.locator(f"[class*='st-key-step-'] {CHART}")
    expect(step_charts).to_have_count(1)
    expect(charts_in(page, "step-qkv")).to_have_count(1)
    expect(page.get_by_text(t["present_position"].format(step=1, total=7))).to_be_visible()
    with rerun(page, charts=1):
        page.locator("body").press("ArrowRight")
    expect(charts_in(page, "step-scores")).to_have_count(1)
    expect(step_charts).to_have_count(1)
    expect_ticks(charts_in(page, "step-scores"), "x", LOVE)
    expect(page).to_have_url(re.compile(r"[?&]step=2(&|$)"))
    with rerun(page, charts=1):
        page.locator("body").press("ArrowRight")
    with rerun(page, charts=1):
        page.locator("body").press("ArrowLeft")
    expect(charts_in(page, "step-scores")).to_have_count(1)
    size = charts_in(page, "step-scores").locator(".xtick text").first.evaluate("e => parseFloat(e.style.fontSize)")
    assert size >= 20  # large type for the back of the classroom
    with rerun(page, charts=1):
        page.get_by_role("button", name=t["present_next"]).click()
    expect(charts_in(page, "step-scaled")).to_have_count(1)
    expect_no_exception(page)
    screenshot(page, f"app-{lang}-presentation", full_page=False)


@pytest.mark.parametrize("lang", LANGS)
def test_the_causal_mask_marks_every_later_key(page: Page, lang: str) -> None:
    t = texts(lang)
    open_app(page, {"text": "我爱你", "lang": lang, "causal": "1"})
    expect(page.get_by_label(t["causal"], exact=True)).to_be_checked()
    for key in ("step-scaled", "step-weights"):
        cells = charts_in(page, key).locator("g.text-group text, .heatmaplayer text")
        expect(cells.filter(has_text="×")).to_have_count(3)  # 我→爱, 我→你, 爱→你
    # The worked example (query 我) prints the two masked scores as −∞, and says why.
    keys_table = page.locator(".st-key-worked-example [data-testid='stTable']").first
    expect(keys_table.get_by_text("−∞", exact=True)).to_have_count(2)
    expect(keys_table).not_to_contain_text("Infinity")
    expect(page.locator(".st-key-worked-example").get_by_text(t["worked_masked"])).to_be_visible()
    expect_no_exception(page)


def test_the_dark_theme_follows_the_system_and_keeps_charts_readable(browser: Browser, app_url: str) -> None:
    context = app_context(browser, app_url, color_scheme="dark")
    try:
        page = context.new_page()
        open_app(page, {"text": "我爱你", "present": "1", "step": "4"})
        background = page.locator('[data-testid="stApp"]').evaluate("e => getComputedStyle(e).backgroundColor")
        assert _luminance(background) < 0.2, background
        tick = charts_in(page, "step-weights").locator(".ytick text").first
        assert _luminance(tick.evaluate("e => e.style.fill")) > 0.5  # light labels on the dark page
        screenshot(page, "app-dark-presentation", full_page=False)
    finally:
        context.close()


def _luminance(css_colour: str) -> float:
    """0 for black, 1 for white, from an `rgb(r, g, b)` or `rgba(...)` string."""
    red, green, blue = (float(part) for part in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255
