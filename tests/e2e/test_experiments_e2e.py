"""The experiments, presentation mode, the causal mask and the dark theme in real Chromium, in
English and 中文: what a teacher clicks in class, read back the way the class sees it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from harness.chromium import app_context, screenshot, screenshot_of
from harness.page import (
    ALERT,
    CELL_TEXTS,
    CHART,
    STEP_VIEW,
    chart_of,
    figure,
    no_rerun,
    open_app,
    rerun,
    shown_view,
    view_text,
    wait_for_app,
    wait_for_report,
    wait_for_step_view,
)
from harness.runs import watch_runs
from tests.e2e.pages import (
    LOVE,
    charts_in,
    choose,
    expect_link,
    expect_no_exception,
    expect_ticks,
    expect_titles,
    expect_worked_example,
    open_page,
    pick,
    picker,
    select_option,
    step_view,
    trace_arrays,
)
from ui.i18n import texts

LANGS = ("en", "zh")


def open_experiment(page: Page, lang: str, experiment: str, text: str = "我爱你") -> None:
    """Open the page, then choose the experiment with its radio, as a teacher would."""
    t = texts(lang)
    open_app(page, {"text": text, "lang": lang})
    expect(charts_in(page, "experiments")).to_have_count(0)  # nothing until one is chosen
    choose(page, t["experiment"], t[f"experiment_{experiment}"], charts=1)
    expect(page).to_have_url(re.compile(f"[?&]experiment={experiment}(&|$)"))
    expect_no_exception(page)


@pytest.mark.parametrize("lang", LANGS)
def test_head_view_draws_lines_for_every_head_and_follows_one_token(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "head_view")
    chart = charts_in(page, "experiments")
    expect(chart).to_have_count(1)
    expect(chart.locator(".legendtext")).to_have_text([f"{t['head']} {h}" for h in range(1, 5)])
    expect(chart.locator(".textpoint text")).to_have_text(LOVE + LOVE)  # the query and the key column
    expect(chart.locator("g.trace.scatter[style*='opacity: 0.08']")).to_have_count(0)
    select_option(page, t["head_view_token"], "2 · 爱", charts=1)
    expect(chart.locator("g.trace.scatter[style*='opacity: 0.08']").first).to_be_attached()  # the others fade
    # A click on a token in the diagram picks it too: the query column is the first trace of labels.
    query_column = chart.locator("g.trace.scatter").filter(has=page.locator("g.textpoint")).first
    with rerun(page, charts=1):
        query_column.locator("path.point").nth(2).click(force=True)
    expect(page.get_by_role("combobox", name=t["head_view_token"])).to_have_value("3 · 你")
    screenshot_of(page.locator(".st-key-experiments"), f"experiment-{lang}-head-view")


@pytest.mark.parametrize("lang", LANGS)
def test_why_divide_by_sqrt_dk_shows_saturation_variance_and_both_softmaxes(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "scaling")
    charts = charts_in(page, "experiments")
    expect(charts).to_have_count(4)
    expect(charts.nth(0).locator(".legendtext")).to_have_text(
        [t["scaling_scaled"], t["scaling_unscaled"], t["scaling_uniform"]]
    )
    for i in (2, 3):  # scaled and unscaled weights, side by side
        expect_ticks(charts.nth(i), "x", LOVE)
    screenshot_of(page.locator(".st-key-experiments"), f"experiment-{lang}-scaling")


@pytest.mark.parametrize("lang", LANGS)
def test_padding_marks_the_padded_keys(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "padding")
    chart = charts_in(page, "experiments")
    expect(chart).to_have_count(1)
    expect_ticks(chart, "x", [*LOVE, "[PAD]", "[PAD]"])
    cells = chart.locator(CELL_TEXTS)  # Plotly's printed cell values
    expect(cells.filter(has_text="×")).to_have_count(2 * 5)  # two padded keys, five queries
    expect(page.locator(".st-key-experiments").get_by_text(t["padding_check"].split("{")[0].strip())).to_be_visible()
    screenshot_of(page.locator(".st-key-experiments"), f"experiment-{lang}-padding")


@pytest.mark.parametrize("lang", LANGS)
def test_a_shuffle_without_positions_only_reorders_and_with_positions_changes(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "shuffle")
    section = page.locator(".st-key-experiments")
    expect(charts_in(page, "experiments")).to_have_count(3)
    expect(section.locator(ALERT)).to_contain_text(t["shuffle_same"].split("{")[0].strip())
    with rerun(page, charts=1):
        section.get_by_text(t["shuffle_positions"], exact=True).click()
    expect(section.locator(ALERT)).to_contain_text(t["shuffle_differs"].split("{")[0].strip())
    screenshot_of(section, f"experiment-{lang}-shuffle")


@pytest.mark.parametrize("lang", LANGS)
def test_compare_shows_both_runs_and_their_difference(page: Page, lang: str) -> None:
    t = texts(lang)
    open_experiment(page, lang, "compare")
    charts = charts_in(page, "experiments")
    expect(charts).to_have_count(3)
    expect(charts.nth(1).locator(".gtitle")).to_contain_text("B")
    for i in range(3):
        expect_ticks(charts.nth(i), "y", LOVE)
    sentence_b = page.get_by_label(t["compare_sentence_b"], exact=True)
    with rerun(page):
        sentence_b.fill("the cat")
        sentence_b.press("Enter")
    expect(charts).to_have_count(2)  # three tokens against two: no difference map, a message instead
    expect(page.locator(".st-key-experiments").locator(ALERT)).to_be_visible()
    screenshot_of(page.locator(".st-key-experiments"), f"experiment-{lang}-compare")


def shown_step(page: Page) -> list[str]:
    """The steps the presentation shows (one, when it works)."""
    return (
        step_view(page)
        .locator("section[data-step]:not([hidden])")
        .evaluate_all("sections => sections.map((s) => s.dataset.step)")
    )


def step_by_key(page: Page, key: str, step: str, view: str) -> None:
    """Press `key` anywhere on the page: the presentation moves in the browser, no run at once, and
    the address bar follows within a second; then the report of the view runs."""
    with no_rerun(page) as mark:
        page.keyboard.press(key)
    assert shown_view(page) == view, key
    assert shown_step(page) == [step], key
    layer, head, query, number = (int(x) + 1 for x in view.split(","))
    expect_link(page, layer=layer, head=head, query=query, step=number)
    wait_for_report(page, mark)


@pytest.mark.parametrize("lang", LANGS)
def test_presentation_mode_steps_with_page_keys_and_buttons(page: Page, lang: str) -> None:
    t = texts(lang)
    open_page(page, {"text": "我爱你", "lang": lang, "present": "1"})
    expect(page.locator(CHART)).to_have_count(0)  # no overview, no rest of the layer: only the step
    expect(step_view(page)).to_have_class(re.compile(r"\bavi-present\b"))
    assert shown_step(page) == ["qkv"]
    position = step_view(page).locator(".avi-position")
    expect(position).to_have_text(t["present_position"].format(step=1, total=7))
    previous = step_view(page).get_by_role("button", name=t["present_prev"], exact=True)
    following = step_view(page).get_by_role("button", name=t["present_next"], exact=True)
    expect(previous).to_be_disabled()
    expect(chart_of(page, "qkv").locator("text.avi-ytick").first).to_be_visible()

    step_by_key(page, "PageDown", "scores", view_text(1, 1, 1, 2))
    expect(position).to_have_text(t["present_position"].format(step=2, total=7))
    expect_ticks(chart_of(page, "scores"), "x", LOVE)
    step_by_key(page, "PageDown", "scaled", view_text(1, 1, 1, 3))
    step_by_key(page, "PageUp", "scores", view_text(1, 1, 1, 2))
    tick = chart_of(page, "scores").locator("text.avi-xtick").first
    size = tick.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 20  # large type for the back of the classroom
    # The arrows still move between heads (and layers), with the focus anywhere on the page.
    step_by_key(page, "ArrowRight", "scores", view_text(1, 2, 1, 2))
    expect_titles(page, "L1H2", names=("scores",))
    step_by_key(page, "ArrowDown", "scores", view_text(2, 2, 1, 2))
    step_by_key(page, "ArrowUp", "scores", view_text(1, 2, 1, 2))

    with no_rerun(page) as mark:
        following.click()
    assert shown_step(page) == ["scaled"]
    expect(position).to_have_text(t["present_position"].format(step=3, total=7))
    announced = t["step_view_announce"].format(layer=1, head=2) + " · " + t["step_scaled"]
    expect(step_view(page).locator(".avi-live")).to_have_text(announced)
    expect(chart_of(page, "scaled").locator("text.avi-ytick").first).to_be_visible()
    expect_titles(page, "L1H2", names=("scaled",))  # drawn as it is shown, for the head chosen meanwhile
    expect_ticks(chart_of(page, "scaled"), "x", LOVE)
    with no_rerun(page):
        previous.click()
    assert shown_step(page) == ["scores"]
    with no_rerun(page):
        following.click()
    assert shown_step(page) == ["scaled"]
    expect_link(page, layer=1, head=2, step=3)
    wait_for_report(page, mark)
    expect_no_exception(page)
    screenshot(page, f"app-{lang}-presentation", full_page=False)

    # Then the softmax, the context, the worked example and the heads of the layer; Next stops at the last.
    for step in ("weights", "context", "worked", "heads"):
        with no_rerun(page):
            following.click()
        assert shown_step(page) == [step]
    expect(following).to_be_disabled()
    expect(step_view(page).locator(".avi-table-steps tbody tr")).to_have_count(3)
    expect(chart_of(page, "heads").locator("text.avi-ytick").first).to_be_visible()

    # The address bar reopens the same step of the same head in a new tab.
    for _ in range(4):
        with no_rerun(page):
            previous.click()
    assert shown_view(page) == view_text(1, 2, 1, 3)
    expect_link(page, layer=1, head=2, query=1, step=3)
    other = page.context.new_page()
    try:
        watch_runs(other)
        other.goto(page.url)
        wait_for_app(other, charts=0)
        wait_for_step_view(other, view_text(1, 2, 1, 3), complete=True)
        assert shown_step(other) == ["scaled"]
        expect(other.locator(f"{STEP_VIEW} .avi-position")).to_have_text(t["present_position"].format(step=3, total=7))
        expect_titles(other, "L1H2", names=("scaled",))
    finally:
        other.close()


@pytest.mark.parametrize("lang", LANGS)
def test_the_causal_mask_marks_every_later_key(page: Page, lang: str) -> None:
    t = texts(lang)
    open_page(page, {"text": "我爱你", "lang": lang, "causal": "1"})
    expect(page.get_by_label(t["causal"], exact=True)).to_be_checked()
    for name in ("scaled", "weights"):
        text = figure(page, name)["data"][0]["text"]
        marked = [[cell == "×" for cell in row] for row in text]
        assert marked == [[False, True, True], [False, False, True], [False, False, False]], name  # 我→爱, 我→你, 爱→你
        chart = chart_of(page, name)
        chart.scroll_into_view_if_needed()
        expect(chart.locator(CELL_TEXTS).filter(has_text="×")).to_have_count(3)
    # The worked example (query 我) prints the two masked scores as −∞ and their weights as 0, and
    # says why; every number is the independent trace's.
    tokens, arrays = trace_arrays("我爱你", causal=True)
    expect_worked_example(page, arrays, tokens, layer=1, head=1, query=1, lang=lang)
    steps = step_view(page).locator(".avi-table-steps tbody tr")
    assert [row.split("\t")[2] for row in steps.all_inner_texts()][1:] == ["−∞", "−∞"]
    assert [row.split("\t")[4] for row in steps.all_inner_texts()][1:] == ["0.0000", "0.0000"]
    expect(step_view(page).locator(".avi-table-steps")).not_to_contain_text("Infinity")
    expect(step_view(page).get_by_text(t["worked_masked"], exact=True)).to_be_visible()
    # Another head and query: one masked key left.
    pick(page, t["layer"], 2)
    pick(page, t["head"], 3)
    with no_rerun(page):
        step_view(page).locator("select.avi-query").select_option("1")
    expect_worked_example(page, arrays, tokens, layer=2, head=3, query=2, lang=lang)
    expect(step_view(page).locator(".avi-table-steps").get_by_text("−∞", exact=True)).to_have_count(1)
    assert picker(page, t["layer"]).count() == 1
    expect_no_exception(page)
    screenshot_of(step_view(page).locator("section[data-step=worked]"), f"app-{lang}-causal-worked")


def test_the_dark_theme_follows_the_system_and_keeps_charts_readable(browser: Browser, app_url: str) -> None:
    context = app_context(browser, app_url, color_scheme="dark")
    try:
        page = context.new_page()
        open_page(page, {"text": "我爱你", "present": "1", "step": "4"})
        assert shown_view(page) == view_text(1, 1, 1, 4)
        background = page.locator('[data-testid="stApp"]').evaluate("e => getComputedStyle(e).backgroundColor")
        assert _luminance(background) < 0.2, background
        font = figure(page, "weights")["layout"]["font"]["color"]
        assert _luminance(font) > 0.5, font  # the step view draws its charts in the theme's text colour
        tick = chart_of(page, "weights").locator("text.avi-ytick").first
        assert _luminance(tick.evaluate("e => getComputedStyle(e).fill")) > 0.5  # light labels on the dark page
        text = step_view(page).evaluate("e => getComputedStyle(e).color")
        assert _luminance(text) > 0.5, text
        screenshot(page, "app-dark-presentation", full_page=False)
    finally:
        context.close()


def _luminance(css_colour: str) -> float:
    """0 for black, 1 for white, from an `rgb(r, g, b)`, `rgba(...)` or `#rrggbb` string."""
    css_colour = css_colour.strip()
    if css_colour.startswith("#"):
        digits = css_colour[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits[:3])
        red, green, blue = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    else:
        red, green, blue = (float(part) for part in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("experiment", "charts"), [("rollout", 2), ("query_keys", 1)])
def test_rollout_and_queries_and_keys_draw_in_the_browser(page: Page, lang: str, experiment: str, charts: int) -> None:
    open_experiment(page, lang, experiment, text="the cat sat on the mat")
    expect(charts_in(page, "experiments")).to_have_count(charts)
    expect(charts_in(page, "experiments").first.locator("svg.main-svg").first).to_be_visible()
    expect_no_exception(page)


@pytest.mark.parametrize("lang", LANGS)
def test_head_habits_knock_out_and_several_tokens_open_from_a_link(page: Page, lang: str) -> None:
    t = texts(lang)
    open_app(page, {"text": "the cat sat on the mat", "lang": lang, "experiment": "habits"})
    table = page.get_by_test_id("stDataFrame")
    expect(table).to_be_visible()
    expect(table).to_contain_text(t["habits_habit"])
    open_app(page, {"text": "the cat sat on the mat", "lang": lang, "experiment": "knockout"})
    expect(page.get_by_text(t["knockout_none"])).to_be_visible()
    open_app(page, {"text": "the cat sat on the mat", "lang": lang, "experiment": "tokens"})
    expect(page.get_by_text(t["tokens_none"])).to_be_visible()
    expect_no_exception(page)
