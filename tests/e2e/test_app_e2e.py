"""The real app in real Chromium: what a teacher projecting it, or a student at home, would see.

Each test opens the state it needs straight from the query string (every setting lives in
the link), then reads the page the way a person does: the axes' tick labels, the widgets'
labels and values, the messages. `tests/app` covers the same ground without a browser; these
catch what only a browser shows: charts that never draw, HTML injected from user text, a link
that does not reopen the same view, a language switch that breaks the page.

The step view (the five steps, the worked example, the heads of a layer) is one element drawn
by the browser (ui/step_view.js): its layer, head, query and step change there with no script
run, which the tests check on the page's websocket (`no_rerun`), and every number it prints is
checked against a trace computed here, independently of the server, by the same encoder.

A page load costs about 10 s here (Plotly's bundle is parsed again for every tab), so the
tests that only type a sentence share one tab (`module_page`).
"""

from __future__ import annotations

import functools
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect
from plotly.colors import sample_colorscale, unlabel_rgb

from encoder import Encoder, EncoderConfig
from tests.e2e.e2e_harness import (
    ALERT,
    CELL_TEXTS,
    CHART,
    EXCEPTION,
    STEP_CHART_NAMES,
    STEP_NAMES,
    STEP_VIEW,
    STEP_VIEW_CHART_NAMES,
    cell_position,
    chart_of,
    figure,
    no_rerun,
    open_app,
    rerun,
    screenshot,
    screenshot_of,
    shown_view,
    tick_labels,
    title,
    view_text,
    wait_for_app,
    wait_for_report,
    wait_for_step_view,
    watch_runs,
)
from ui.i18n import texts
from viz import number_text, token_labels
from viz.style import cell_texts, values_are_shown

LOVE = ["我", "爱", "你"]
MATRIX_CHARTS = ("scores", "scaled", "weights")  # query tokens down, key tokens across
TITLES = {  # each step chart's title, with the layer and head it shows ("L1H2")
    "qkv": "Q, K, V ({})",
    "scores": "Q·Kᵀ ({})",
    "scaled": "Q·Kᵀ/√d_k ({})",
    "weights": "softmax ({})",
    "context": "Z ({})",
}
WORKED_DIMENSIONS = 8  # columns of the weighted-sum table (ui/step_view.js)
CAT = "the cat sat on the mat"


# --- reading the page ------------------------------------------------------------------------


def charts_in(page: Page, key: str) -> Locator:
    """Streamlit's own charts in the container with this key (the grid, the experiments...)."""
    return page.locator(f".st-key-{key} {CHART}")


def step_view(page: Page) -> Locator:
    return page.locator(STEP_VIEW)


def radio_group(page: Page, label: str) -> Locator:
    """A Streamlit radio (language, experiment...)."""
    return page.get_by_role("radiogroup", name=label, exact=True)


def picker(page: Page, label: str) -> Locator:
    """The step view's Layer or Head radiogroup (层 / 头 in Chinese)."""
    return step_view(page).get_by_role("radiogroup", name=label, exact=True)


def choose(page: Page, label: str, option: str, *, charts: int = 0) -> None:
    """Click a Streamlit radio option's visible text, as a person does (the input itself is visually
    hidden), and wait for the run it starts to end."""
    with rerun(page, charts=charts):
        radio_group(page, label).get_by_test_id("stRadioOption").get_by_text(option, exact=True).click()


def select_option(page: Page, label: str, option: str, *, charts: int = 0) -> None:
    """Open a Streamlit selectbox, click one of its options and wait for the run it starts to end.
    (The step view's own query picker is a native <select>: its options are not in the listbox.)"""
    box = page.get_by_label(label, exact=True)
    box.scroll_into_view_if_needed()
    expect(box).to_be_in_viewport()
    listbox = page.get_by_role("listbox")
    box.click()
    try:
        expect(listbox).to_be_visible(timeout=3_000)
    except AssertionError:  # a click that came while the page still scrolled opens nothing: once more
        box.click()
        expect(listbox).to_be_visible()
    with rerun(page, charts=charts):
        listbox.get_by_role("option", name=option, exact=True).click()


def pick(page: Page, label: str, number: int) -> None:
    """Click the step view's Layer or Head radio `number` (1-based): no run is asked for."""
    with no_rerun(page):
        picker(page, label).get_by_role("radio", name=str(number), exact=True).click()


def checked(group: Locator) -> str:
    return group.get_by_role("radio", checked=True).evaluate("e => e.labels[0].innerText").strip()


def options(group: Locator) -> list[str]:
    return group.get_by_role("radio").evaluate_all("inputs => inputs.map((e) => e.labels[0].innerText.trim())")


def streamlit_options(page: Page, label: str) -> list[str]:
    return [text.strip() for text in radio_group(page, label).get_by_test_id("stRadioOption").all_inner_texts()]


def slider(page: Page, label: str) -> Locator:
    """A slider's keyboard handle (its accessible name repeats the label, so match the aria-label)."""
    return page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')


def link(page: Page) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(page.url).query).items()}


def expect_link(page: Page, timeout: float = 1.0, **values: object) -> None:
    """The address bar says these values within `timeout` seconds."""
    want = {name: str(value) for name, value in values.items()}
    deadline = time.monotonic() + timeout
    while {name: link(page).get(name) for name in want} != want:
        if time.monotonic() > deadline:
            got = {name: link(page).get(name) for name in want}
            raise AssertionError(f"after {timeout} s the address bar says {got}, not {want}")
        page.wait_for_timeout(20)


def shown_tokens(page: Page) -> list[str]:
    """The tokens as the page lists them above the charts (`st.code`, joined by ' · ')."""
    return page.get_by_test_id("stCode").first.inner_text().split("  ·  ")


def type_sentence(page: Page, text: str, label: str = "Sentence") -> None:
    box = page.get_by_label(label, exact=True)
    with rerun(page):
        box.fill(text)
        box.press("Enter")


def focus_step_view(page: Page) -> None:
    """Click the step view's heading: the element takes the focus (tabindex 0), so the keys reach it."""
    step_view(page).locator("h3").click()
    expect(step_view(page)).to_be_focused()


def press(page: Page, key: str) -> None:
    with no_rerun(page):
        page.keyboard.press(key)


def wait_until(page: Page, check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something true (Playwright handles the page's events meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        page.wait_for_timeout(50)


def titles(page: Page, names: tuple[str, ...] = STEP_CHART_NAMES) -> dict[str, str | None]:
    return {name: title(page, name) for name in names}


def expect_titles(page: Page, where: str, names: tuple[str, ...] = STEP_CHART_NAMES) -> None:
    """Every step chart's title (or those of `names`: presentation mode draws only the step it
    shows) names the layer and head shown, e.g. "softmax (L2H3)"."""
    want = {name: TITLES[name].format(where) for name in names}
    try:
        wait_until(page, lambda: titles(page, names) == want, f"titles {want}")
    except AssertionError as error:
        raise AssertionError(f"{error}; the charts say {titles(page, names)}") from None


def expect_ticks(chart: Locator, axis: str, tokens: list[str]) -> None:
    """Wait (a rerun may still be drawing) until the chart's `axis` ticks are exactly `tokens`."""
    expect(chart.locator(tick_labels(axis))).to_have_text(tokens, timeout=20_000)


def expect_step_charts_show(page: Page, tokens: list[str]) -> None:
    """Every step chart labels its token axes with exactly these tokens, in order, as drawn text
    (the figures hold them HTML-escaped, which Plotly prints literally)."""
    for name in STEP_CHART_NAMES:
        chart = chart_of(page, name)
        expect(chart).to_have_count(1)
        chart.scroll_into_view_if_needed()  # drawn at once, rather than when the browser is idle
        expect_ticks(chart, "y", tokens)  # queries (or tokens) label the rows; Q, K, V share them
        if name in MATRIX_CHARTS:
            expect_ticks(chart, "x", tokens)  # keys label the columns
        assert figure(page, name)["layout"]["yaxis"]["ticktext"] == token_labels(tokens), name


def expect_no_exception(page: Page) -> None:
    expect(page.locator(EXCEPTION)).to_have_count(0)


def expect_no_message(page: Page) -> None:
    """No exception and no alert; on failure the report shows the alerts' text."""
    expect_no_exception(page)
    expect(page.locator(ALERT)).to_have_text([])


def expect_a_message(page: Page) -> None:
    expect(page.locator(ALERT).first).to_be_visible()
    expect_no_exception(page)


def open_page(page: Page, params: dict[str, object] | None = None) -> None:
    """Open the app at this link and wait until the step view has drawn every chart of its view."""
    open_app(page, params, charts=0, step_view=True)


def watch_redraws(page: Page) -> None:
    """Remember each step-view chart's figure object: `redrawn` then names the charts drawn again."""
    page.evaluate(
        """(selector) => {
             window.__aviFigures = {};
             for (const div of document.querySelectorAll(selector + ' [data-chart]')) {
               window.__aviFigures[div.dataset.chart] = div.heatmapChart.figure;
             }
           }""",
        STEP_VIEW,
    )


def redrawn(page: Page) -> list[str]:
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector + ' [data-chart]')]
             .filter((div) => window.__aviFigures[div.dataset.chart] !== div.heatmapChart.figure)
             .map((div) => div.dataset.chart)""",
        STEP_VIEW,
    )


# --- the numbers, from a trace computed here ----------------------------------------------------


@functools.cache
def trace_arrays(text: str, **config: Any) -> tuple[list[str], dict[str, np.ndarray]]:
    """The tokens and arrays of an independent trace: the app's random model for these settings
    (the link's defaults: d_model 64, 4 heads, 2 layers, seed 0)."""
    trace = Encoder(EncoderConfig(**config)).trace_text(text)
    return trace.tokens, trace.to_numpy()


def expected_worked_example(
    arrays: dict[str, np.ndarray], tokens: list[str], layer: int, head: int, query: int, t: dict[str, str]
) -> dict[str, list[list[str]]]:
    """What the worked example prints for (layer, head, query), 0-based, from the trace's arrays:
    the step table (key, q·k, ÷√d_k, exp, weight) and the weighted-sum table with its two sums,
    every number at 4 decimals as `viz.number_text` writes it."""

    def row(name: str) -> np.ndarray:
        return arrays[f"layer{layer}.{name}"][head][query].astype(np.float64)

    dots, scaled, weights, context = row("scores"), row("scaled_scores"), row("weights"), row("context")
    largest = float(scaled[np.isfinite(scaled)].max())
    exps = np.exp(scaled - (largest if largest > 700 else 0.0))  # e^-inf = 0 for a masked key
    values = arrays[f"layer{layer}.v"][head].astype(np.float64)  # (n, d_head)
    dims = min(values.shape[1], WORKED_DIMENSIONS)
    weighted = weights[:, None] * values[:, :dims]
    sums = [sum(float(weighted[j, c]) for j in range(len(tokens))) for c in range(dims)]  # in key order

    def text(numbers: Any) -> list[str]:
        return [number_text(float(x), 4) for x in numbers]

    return {
        "steps_header": [[t["col_key"], t["col_dot"], t["col_scaled"], t["col_exp"], t["col_weight"]]],
        "steps": [[token, *text(numbers)] for token, *numbers in zip(tokens, dots, scaled, exps, weights, strict=True)],
        "sum_header": [[t["col_key"], *(f"{t['col_weighted']}[{c}]" for c in range(dims))]],
        "sum": [[token, *text(vector)] for token, vector in zip(tokens, weighted, strict=True)],
        "sum_foot": [[t["weighted_sum_row"], *text(sums)], [t["context_row"], *text(context[:dims])]],
    }


def shown_worked_example(page: Page) -> dict[str, list[list[str]]]:
    """The worked example's tables as the page prints them (each cell's text)."""
    return step_view(page).evaluate(
        """(root) => {
             const rows = (selector) => [...root.querySelectorAll(selector)]
               .map((tr) => [...tr.children].map((cell) => cell.textContent));
             return {
               steps_header: rows('.avi-table-steps thead tr'), steps: rows('.avi-table-steps tbody tr'),
               sum_header: rows('.avi-table-sum thead tr'), sum: rows('.avi-table-sum tbody tr'),
               sum_foot: rows('.avi-table-sum tfoot tr'),
             };
           }"""
    )


def expect_worked_example(
    page: Page, arrays: dict[str, np.ndarray], tokens: list[str], layer: int, head: int, query: int, lang: str = "en"
) -> None:
    """The worked example shows (layer, head, query), 1-based, with exactly the trace's numbers."""
    t = texts(lang)
    query_select = step_view(page).locator("select.avi-query")
    expect(query_select).to_have_value(str(query - 1))
    selected = query_select.evaluate("(select) => select.selectedOptions[0].textContent")
    assert selected == f"{query} · {tokens[query - 1]}"
    intro = t["worked_intro"].format(query=query, layer=layer, head=head)
    expect(step_view(page).locator("div.avi-worked p").first).to_have_text(intro)
    want = expected_worked_example(arrays, tokens, layer - 1, head - 1, query - 1, t)
    try:
        wait_until(page, lambda: shown_worked_example(page) == want, "the worked example shows the trace's numbers")
    except AssertionError:
        shown = shown_worked_example(page)
        for part, rows in want.items():  # name the first table and row that differ
            assert shown[part] == rows, f"{part} (layer {layer}, head {head}, query {query})"
        raise


# --- the page and its charts -------------------------------------------------------------------


def test_default_page_shows_every_step_for_the_love_example(page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_app(page, step_view=True)  # every chart of the default page is the step view's
    expect(page.get_by_role("heading", name="Attention Visualizer")).to_be_visible()
    expect(page.get_by_label("Sentence", exact=True)).to_have_value("我爱你")
    root = step_view(page)
    expect(root).to_have_count(1)
    assert shown_view(page) == view_text(1, 1, 1, 1)
    expect(root).to_have_attribute("data-complete", view_text(1, 1, 1, 1))
    steps = root.locator("section[data-step]")
    expect(steps).to_have_count(len(STEP_NAMES))
    assert steps.evaluate_all("sections => sections.map((s) => s.dataset.step)") == list(STEP_NAMES)
    t = texts("en")
    expect(root.locator("h4")).to_have_text(
        [
            *(t[f"step_{name}"] for name in STEP_CHART_NAMES),
            t["worked_example"],
            t["heads_layer"].format(layer=1),
            t["heads_grid"],
        ]
    )
    for name in STEP_VIEW_CHART_NAMES:  # every chart drawn, the ones below the fold too
        expect(chart_of(page, name).locator("text.avi-ytick").first).to_be_attached()
    expect(chart_of(page, "heads")).to_have_attribute("data-where", "L1")
    expect_titles(page, "L1H1")
    expect_step_charts_show(page, LOVE)
    assert figure(page, "heads")["layout"]["yaxis"]["ticktext"] == ["Layer 1"]
    # Below the steps, every layer and head, with an outline around the one on show.
    grid = figure(page, "grid")
    assert grid["layout"]["yaxis"]["ticktext"] == ["Layer 1", "Layer 2"]
    assert grid["layout"]["xaxis"]["ticktext"] == ["Head 1", "Head 2", "Head 3", "Head 4"]
    assert [(s["x0"], s["y0"]) for s in grid["layout"]["shapes"]] == [(-0.5, -0.5)] * 2
    expect(page.locator(CHART)).to_have_count(0)  # no Plotly chart of Streamlit's left to redraw on a run
    expect_no_message(page)
    screenshot(page, "app-en-love")
    screenshot_of(root, "app-en-love-step-view")
    assert errors == []


def test_typing_a_sentence_and_the_example_button(page: Page) -> None:
    open_page(page, {"text": "hello world"})
    expect_step_charts_show(page, ["hello", "world"])
    type_sentence(page, "the cat sat")
    expect_step_charts_show(page, ["the", "cat", "sat"])
    assert link(page)["text"] == "the cat sat"
    with rerun(page):
        page.get_by_role("button", name="我爱你", exact=True).click()
    expect(page.get_by_label("Sentence", exact=True)).to_have_value("我爱你")
    expect_step_charts_show(page, LOVE)
    expect(step_view(page).locator(".avi-table-steps tbody tr")).to_have_count(3)  # one row per key
    expect_no_message(page)


def test_heads_and_layers_from_the_link(page: Page) -> None:
    open_page(page, {"text": "我爱你", "d_model": 64, "heads": 8, "layers": 3})
    assert options(picker(page, "Head")) == [str(h) for h in range(1, 9)]
    assert options(picker(page, "Layer")) == ["1", "2", "3"]
    expect(slider(page, "Heads")).to_have_attribute("aria-valuetext", "8")
    expect(slider(page, "Layers")).to_have_attribute("aria-valuetext", "3")
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)


def test_sidebar_widgets_change_heads_and_layers_and_the_pickers_follow(page: Page) -> None:
    open_page(page, {"text": "我爱你", "d_model": 64, "heads": 4, "layers": 2})
    with rerun(page):
        slider(page, "Layers").press("ArrowRight")  # 2 -> 3
    expect(picker(page, "Layer").get_by_role("radio")).to_have_count(3)
    with rerun(page):
        slider(page, "Heads").press("ArrowRight")  # 4 -> 8: the next divisor of 64
    expect(picker(page, "Head").get_by_role("radio")).to_have_count(8)
    assert (link(page)["heads"], link(page)["layers"]) == ("8", "3")

    pick(page, "Layer", 3)
    pick(page, "Head", 7)
    assert (checked(picker(page, "Layer")), checked(picker(page, "Head"))) == ("3", "7")
    expect_link(page, layer=3, head=7)
    expect_titles(page, "L3H7")  # every step chart says which head it shows
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)


def test_head_clicks_and_arrow_keys_change_the_view_without_a_server_run(page: Page) -> None:
    open_page(page, {"text": "我爱你", "d_model": 64, "heads": 4, "layers": 2})
    layer, head = picker(page, "Layer"), picker(page, "Head")
    watch_redraws(page)
    with no_rerun(page) as mark:
        head.get_by_role("radio", name="3", exact=True).click()
    assert shown_view(page) == view_text(1, 3, 1, 1)
    expect_titles(page, "L1H3")
    expect(chart_of(page, "weights")).to_have_attribute("data-where", "L1H3")
    expect_link(page, layer=1, head=3, query=1)
    # ~400 ms after the last click the browser reports the view: one run, of the step view's
    # fragment alone, which draws nothing again (the figures are the same objects).
    watch_redraws(page)
    fragments = wait_for_report(page, mark)
    assert len(fragments) == 1 and fragments[0], fragments  # a fragment's id: not the whole page
    assert redrawn(page) == []
    assert shown_view(page) == view_text(1, 3, 1, 1)

    focus_step_view(page)
    for key, (want_layer, want_head) in [
        ("ArrowRight", (1, 4)),
        ("ArrowLeft", (1, 3)),
        ("ArrowDown", (2, 3)),
        ("ArrowUp", (1, 3)),
        ("ArrowDown", (2, 3)),
    ]:
        with no_rerun(page) as mark:
            page.keyboard.press(key)
        assert shown_view(page) == view_text(want_layer, want_head, 1, 1), key
        expect_titles(page, f"L{want_layer}H{want_head}")
        assert (checked(layer), checked(head)) == (str(want_layer), str(want_head))
        expect_link(page, layer=want_layer, head=want_head)
        fragments = wait_for_report(page, mark)
        assert len(fragments) == 1 and fragments[0], (key, fragments)
    with no_rerun(page):
        page.keyboard.press("ArrowDown")  # no layer 3: the view stays
    assert shown_view(page) == view_text(2, 3, 1, 1)
    expect(step_view(page)).to_be_focused()
    # The heads strip shows the layer's heads, and says which layer.
    expect(chart_of(page, "heads")).to_have_attribute("data-where", "L2")
    expect(step_view(page).locator("section[data-step=heads] h4")).to_have_text("All heads of layer 2")
    expect_no_message(page)


def test_hovering_a_softmax_cell_outlines_its_query_and_key_in_every_step(page: Page) -> None:
    open_page(page, {"text": CAT})
    n, d = 6, 16  # tokens; d_k of 64 / 4 heads
    i, j = 4, 1  # query "the" (the second one), key "cat"
    x, y = cell_position(page, "weights", i, j)
    with no_rerun(page):
        page.mouse.move(x, y)
    expect(step_view(page)).to_have_attribute("data-hover", f"{i},{j}")

    def rect(xref: str, x0: float, x1: float, y0: float, y1: float) -> tuple:
        return (xref, "y", x0, x1, y0, y1)

    query_row, cell = rect("x", -0.5, d - 0.5, i - 0.5, i + 0.5), rect("x", j - 0.5, j + 0.5, i - 0.5, i + 0.5)
    want = {
        "qkv": [query_row, rect("x2", -0.5, d - 0.5, j - 0.5, j + 0.5), rect("x3", -0.5, d - 0.5, j - 0.5, j + 0.5)],
        "scores": [cell],
        "scaled": [cell],
        "weights": [rect("x", -0.5, n - 0.5, i - 0.5, i + 0.5), cell],
        "context": [query_row],
        "heads": [],
    }

    def shapes() -> dict[str, list[tuple]]:
        out = {}
        for name in STEP_VIEW_CHART_NAMES:
            layout = figure(page, name)["layout"]
            out[name] = [(s["xref"], s["yref"], s["x0"], s["x1"], s["y0"], s["y1"]) for s in layout.get("shapes") or []]
        return out

    wait_until(page, lambda: shapes() == want, f"the outlines {want}; the charts have {shapes()}")
    for name, rects in want.items():  # drawn, not only in the figure
        expect(chart_of(page, name).locator("rect.avi-outline")).to_have_count(len(rects))
    screenshot_of(step_view(page).locator("section[data-step=weights]"), "app-en-hover")
    # The mouse leaves: the outlines go.
    page.mouse.move(5, 5)
    expect(step_view(page)).not_to_have_attribute("data-hover", f"{i},{j}")
    wait_until(page, lambda: all(not rects for rects in shapes().values()), "no outline left")
    assert shown_view(page) == view_text(1, 1, 1, 1)  # a hover does not change the view
    expect_no_exception(page)


def test_clicking_a_softmax_cell_makes_the_worked_example_follow_that_query(page: Page) -> None:
    open_page(page, {"text": CAT, "head": 2})
    tokens, arrays = trace_arrays(CAT)
    expect_worked_example(page, arrays, tokens, layer=1, head=2, query=1)
    x, y = cell_position(page, "weights", 2, 5)  # query "sat", key "mat"
    with no_rerun(page) as mark:
        page.mouse.click(x, y)
    assert shown_view(page) == view_text(1, 2, 3, 1)
    expect_worked_example(page, arrays, tokens, layer=1, head=2, query=3)
    expect_link(page, query=3)
    wait_for_report(page, mark)
    x, y = cell_position(page, "scaled", 5, 0)  # the scaled scores' cells pick the query too
    with no_rerun(page):
        page.mouse.click(x, y)
    expect_worked_example(page, arrays, tokens, layer=1, head=2, query=6)
    # A tile of the strip of heads opens its head: 6 tokens and a gap a tile, the fourth from column 21.
    x, y = cell_position(page, "heads", 2, 23)
    with no_rerun(page):
        page.mouse.click(x, y)
    assert shown_view(page) == view_text(1, 4, 6, 1)
    expect_titles(page, "L1H4")
    expect_no_exception(page)


def test_a_shared_link_reopens_the_same_view(page: Page) -> None:
    state = {"text": CAT, "d_model": 32, "heads": 8, "layers": 3, "layer": 2, "head": 5, "query": 3, "seed": 7}
    open_page(page, state)
    assert shown_view(page) == view_text(2, 5, 3, 1)
    assert (checked(picker(page, "Layer")), checked(picker(page, "Head"))) == ("2", "5")
    expect(page.get_by_label("Sentence", exact=True)).to_have_value(CAT)
    query = step_view(page).get_by_role("combobox", name="Query token")
    expect(query).to_have_value("2")
    assert query.evaluate("(select) => select.selectedOptions[0].textContent") == "3 · sat"
    expect_step_charts_show(page, CAT.split())
    expect_no_message(page)

    # Change the view in the browser: the address bar says so within a second, before the server
    # has heard of it; a second tab opened at that address shows the same view.
    pick(page, "Head", 6)
    focus_step_view(page)
    press(page, "ArrowDown")  # layer 3
    with no_rerun(page):
        query.select_option("3")  # 4 · on
    expect_titles(page, "L3H6")
    expect_link(page, layer=3, head=6, query=4)
    shared = page.url
    expected = {name: str(value) for name, value in state.items()} | {"layer": "3", "head": "6", "query": "4"}
    assert {name: link(page).get(name) for name in expected} == expected

    other = page.context.new_page()
    try:
        watch_runs(other)
        other.goto(shared)
        wait_for_app(other, charts=0)
        wait_for_step_view(other, view_text(3, 6, 4, 1), complete=True)
        assert (checked(picker(other, "Layer")), checked(picker(other, "Head"))) == ("3", "6")
        expect(other.get_by_role("combobox", name="Query token")).to_have_value("3")
        expect_step_charts_show(other, CAT.split())
        for name in STEP_VIEW_CHART_NAMES:  # the same figures: titles, numbers, cell texts
            ours, theirs = figure(page, name), figure(other, name)
            assert theirs["layout"].get("title") == ours["layout"].get("title"), name
            assert [trace.get("z") for trace in theirs["data"]] == [trace.get("z") for trace in ours["data"]], name
            assert [trace.get("text") for trace in theirs["data"]] == [trace.get("text") for trace in ours["data"]]
        assert shown_worked_example(other) == shown_worked_example(page)
        tokens, arrays = trace_arrays(CAT, d_model=32, n_heads=8, n_layers=3, seed=7)
        expect_worked_example(other, arrays, tokens, layer=3, head=6, query=4)
    finally:
        other.close()


@pytest.mark.parametrize(
    ("text", "views"),
    [
        (CAT, [(1, 2, 3), (2, 4, 1), (2, 1, 6)]),
        ("我爱你", [(1, 1, 1), (2, 3, 2)]),
    ],
    ids=["the-cat-sat", "love"],
)
def test_the_worked_example_shows_the_traces_numbers(page: Page, text: str, views: list[tuple[int, int, int]]) -> None:
    """Every number of both tables, at 4 decimals, equals the independent trace's, for several
    heads and queries reached with the pickers and the query select (no server run)."""
    tokens, arrays = trace_arrays(text)
    open_page(page, {"text": text})
    for layer, head, query in views:
        if checked(picker(page, "Layer")) != str(layer):
            pick(page, "Layer", layer)
        if checked(picker(page, "Head")) != str(head):
            pick(page, "Head", head)
        with no_rerun(page):
            step_view(page).locator("select.avi-query").select_option(str(query - 1))
        assert shown_view(page) == view_text(layer, head, query, 1)
        expect_worked_example(page, arrays, tokens, layer, head, query)
    expect(step_view(page).locator("div.avi-worked")).to_contain_text(
        texts("en")["worked_dims"].format(shown=8, d_head=16)
    )
    screenshot_of(step_view(page).locator("section[data-step=worked]"), f"app-en-worked-{len(tokens)}")
    expect_no_exception(page)


def test_the_cell_texts_of_the_scores_and_weights_are_the_traces(page: Page) -> None:
    tokens, arrays = trace_arrays(CAT)
    open_page(page, {"text": CAT, "layer": 2, "head": 3})
    n = len(tokens)
    for name, array in (("scores", "scores"), ("scaled", "scaled_scores"), ("weights", "weights")):
        values = arrays[f"layer1.{array}"][2]
        want = cell_texts(values, ~np.isfinite(values), show_values=values_are_shown(None, n, n)).tolist()
        shown = figure(page, name)
        assert shown["where"] == "L2H3"
        assert shown["data"][0]["text"] == want, name
        assert np.allclose(np.array(shown["data"][0]["z"], dtype=float), values), name  # the colours too
        chart = chart_of(page, name)
        chart.scroll_into_view_if_needed()
        expect(chart.locator(CELL_TEXTS)).to_have_text([c for r in want for c in r])
        # Each cell is painted the colour that Plotly's own colour scale gives its value.
        shown_range = (0.0, 1.0) if name == "weights" else (-np.nanmax(np.abs(values)), np.nanmax(np.abs(values)))
        scale = shown["data"][0]["colorscale"]
        for (i, j), value in np.ndenumerate(values):
            t = (value - shown_range[0]) / (shown_range[1] - shown_range[0])
            want_rgb = unlabel_rgb(sample_colorscale(scale, [t])[0])
            got = painted(page, name, i, j)
            assert got[3] == 255 and all(abs(a - b) <= 3 for a, b in zip(got, want_rgb, strict=False)), (name, i, j)
    expect_no_exception(page)


def painted(page: Page, name: str, row: int, column: int) -> list[int]:
    """The RGBA the step view's chart `name` painted at the centre of cell (row, column)."""
    return chart_of(page, name).evaluate(
        """(div, [row, column]) => {
             const chart = div.heatmapChart;
             const box = div.getBoundingClientRect();
             const [x, y] = chart.cellCentre(row, column);
             const ratio = chart.canvas.width / box.width;
             const at = [Math.floor((x - box.left) * ratio), Math.floor((y - box.top) * ratio)];
             return Array.from(chart.canvas.getContext("2d").getImageData(...at, 1, 1).data);
           }""",
        [row, column],
    )


@pytest.mark.parametrize("image_format", ["png", "svg"])
def test_a_step_chart_downloads_as_the_image_of_its_view(page: Page, image_format: str) -> None:
    """The step view draws its charts itself; Plotly makes the downloaded image from the same figure."""
    _, arrays = trace_arrays("我爱你")
    open_page(page, {"text": "我爱你", "head": 2, "img": image_format})
    chart = chart_of(page, "weights")
    chart.scroll_into_view_if_needed()
    chart.hover()
    with page.expect_download(timeout=30_000) as download_info:
        chart.get_by_role("button", name=texts("en")["download_chart"], exact=True).click()
    download = download_info.value
    assert download.suggested_filename == f"weights_L1H2.{image_format}"
    data = Path(download.path()).read_bytes()
    box = chart.bounding_box()
    if image_format == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", data[16:24])  # IHDR: twice the chart's size, for slides
        assert (width, height) == (2 * round(box["width"]), 2 * round(box["height"]))
    else:
        image = data.decode()
        assert image.startswith("<svg") and "softmax (L1H2)" in image
        weights = arrays["layer0.weights"][1]
        for value in weights.ravel():  # every cell's number, as the page prints it
            assert f">{number_text(float(value), 2)}<" in image
    expect_no_exception(page)


def test_a_click_on_the_grid_of_every_head_opens_that_head_in_the_step_view(page: Page) -> None:
    open_page(page, {"text": "我爱你"})
    x, y = cell_position(page, "grid", 5, 9)  # 3 tokens and a gap a tile: layer 2, head 3
    with no_rerun(page) as mark:
        page.mouse.click(x, y)
    assert shown_view(page) == view_text(2, 3, 1, 1)
    expect_titles(page, "L2H3")
    assert (checked(picker(page, "Layer")), checked(picker(page, "Head"))) == ("2", "3")
    stride = 4
    grid = figure(page, "grid")  # the outline has moved to the head opened
    assert [(s["x0"], s["y0"]) for s in grid["layout"]["shapes"]] == [(2 * stride - 0.5, stride - 0.5)] * 2
    expect(chart_of(page, "grid").locator("rect.avi-outline")).to_have_count(2)
    expect_link(page, layer=2, head=3)
    wait_for_report(page, mark)
    # A gap between tiles opens nothing; the browser's own changes still work from there.
    x, y = cell_position(page, "grid", 3, 9)
    with no_rerun(page):
        page.mouse.click(x, y)
    assert shown_view(page) == view_text(2, 3, 1, 1)
    pick(page, "Head", 4)
    expect_titles(page, "L2H4")
    expect_no_exception(page)


def test_a_run_too_large_to_send_whole_loads_a_layer_when_it_is_opened(page: Page) -> None:
    """64 tokens through 12 layers of 12 heads at d_model 768 is 16 MB of arrays, over the
    payload's 8 MB: the page gets one layer's numbers, and the others when they are opened."""
    text = " ".join(f"w{i}" for i in range(64))
    config = {"d_model": 768, "heads": 12, "layers": 12}
    open_app(page, {"text": text, **config}, charts=0, step_view=True)
    assert shown_view(page) == view_text(1, 1, 1, 1)
    status = step_view(page).locator(".avi-status")
    expect(status).to_have_text("")
    # What the status and the view go through, as the page sees it (not racing it from here).
    step_view(page).evaluate(
        """(root) => {
             window.__aviSeen = [];
             const status = root.querySelector('.avi-status');
             const note = () => window.__aviSeen.push([root.dataset.ready, status.textContent]);
             new MutationObserver(note).observe(root, {attributes: true, attributeFilter: ['data-ready']});
             new MutationObserver(note).observe(status, {childList: true, characterData: true, subtree: true});
           }"""
    )
    loading = texts("en")["step_view_loading"]
    with rerun(page):  # the layer asked of the server: a run of the step view's fragment
        picker(page, "Layer").get_by_role("radio", name="5", exact=True).click()
        expect(status).to_have_text(loading)
    wait_for_step_view(page, view_text(5, 1, 1, 1), complete=True)
    expect(status).to_have_text("")
    seen = page.evaluate("window.__aviSeen")
    assert ["loading", loading] in seen, seen
    expect_titles(page, "L5H1")
    tokens, arrays = trace_arrays(text, d_model=768, n_heads=12, n_layers=12)
    expect_worked_example(page, arrays, tokens, layer=5, head=1, query=1)
    assert len(figure(page, "scores")["data"][0]["z"]) == 64

    # Back to layer 1, which the page holds: at once, without the server, never "loading".
    page.evaluate("window.__aviSeen = []")
    pick(page, "Layer", 1)
    assert shown_view(page) == view_text(1, 1, 1, 1)
    expect_titles(page, "L1H1")
    assert all(ready != "loading" for ready, _ in page.evaluate("window.__aviSeen"))
    expect_worked_example(page, arrays, tokens, layer=1, head=1, query=1)
    pick(page, "Layer", 5)  # and layer 5 is now held too
    assert shown_view(page) == view_text(5, 1, 1, 1)
    expect_no_exception(page)


# --- bad input: a message or a sensible result, never a traceback, never user text as HTML ---

BAD_LINKS = {
    "empty-text": {"text": ""},
    "text-over-5000-characters": {"text": "a " * 2600},
    "out-of-range-picks": {"text": "我爱你", "layer": "0", "head": "99", "query": "-1"},
}


@pytest.mark.parametrize("params", BAD_LINKS.values(), ids=BAD_LINKS.keys())
def test_a_bad_link_gives_a_message_not_a_traceback(page: Page, params: dict[str, str]) -> None:
    open_app(page, params, charts=0)
    expect_a_message(page)


def test_out_of_range_picks_are_fitted_to_the_model(page: Page) -> None:
    open_page(page, BAD_LINKS["out-of-range-picks"])
    expect_a_message(page)
    view = shown_view(page).split(",")
    assert 0 <= int(view[0]) < 2 and 0 <= int(view[1]) < 4 and 0 <= int(view[2]) < 3, view
    expect_step_charts_show(page, LOVE)


def test_absurd_link_values_fall_back_to_the_defaults_with_a_notice_each(page: Page) -> None:
    open_page(page, {"text": "我爱你", "d_model": "-5", "heads": "abc", "layers": "999"})
    alerts = page.locator(ALERT)
    for name in ("d_model", "heads", "layers"):
        expect(alerts.filter(has_text=name)).to_have_count(1)
    expect(slider(page, "d_model")).to_have_attribute("aria-valuetext", "64")
    expect(slider(page, "Heads")).to_have_attribute("aria-valuetext", "4")
    expect(slider(page, "Layers")).to_have_attribute("aria-valuetext", "2")
    expect_step_charts_show(page, LOVE)
    expect_no_exception(page)


@pytest.fixture
def typing_page(module_page: Page) -> Page:
    """The module's shared tab, reloaded only when it is new or a test before left an exception."""
    if not module_page.url.startswith("http") or module_page.locator(EXCEPTION).count():
        open_page(module_page, {"text": "我爱你"})
    return module_page


@pytest.mark.parametrize("text", ["    ", "word " * 1000], ids=["only-spaces", "5000-character-paste"])
def test_typed_text_without_usable_tokens_gives_a_message(typing_page: Page, text: str) -> None:
    type_sentence(typing_page, text)
    expect_a_message(typing_page)
    expect(typing_page.locator(CHART)).to_have_count(0)
    expect(typing_page.locator(STEP_VIEW)).to_have_count(0)


ODD_TEXT = {
    "emoji": ("I ❤️ 🤖 👍🏽", ["I", "❤️", "🤖", "👍🏽"]),
    "hebrew-right-to-left": ("שלום עולם", ["שלום", "עולם"]),
    "arabic-right-to-left": ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
    "control-characters": ("a\x07b\x1bc\td", None),
}


@pytest.mark.parametrize(("text", "tokens"), ODD_TEXT.values(), ids=ODD_TEXT.keys())
def test_odd_text_is_tokenized_and_drawn(typing_page: Page, text: str, tokens: list[str] | None) -> None:
    type_sentence(typing_page, text)
    expect_no_exception(typing_page)
    if tokens is None:  # whatever the tokenizer keeps, the charts show exactly the tokens the page lists
        if typing_page.locator(ALERT).count():
            return
        tokens = shown_tokens(typing_page)
    expect_step_charts_show(typing_page, tokens)
    assert shown_tokens(typing_page) == tokens
    expect(step_view(typing_page).locator(".avi-table-steps tbody .avi-token")).to_have_text(tokens)


MARKUP = {
    "script-tag": ("<script>alert(1)</script>", "script"),
    "bold-tag": ("<b>bold</b>", "b"),
}


@pytest.mark.parametrize(("text", "tag"), MARKUP.values(), ids=MARKUP.keys())
def test_user_text_is_never_rendered_as_html(typing_page: Page, text: str, tag: str) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    typing_page.on("dialog", on_dialog)
    try:
        type_sentence(typing_page, text)
        expect(typing_page.get_by_label("Sentence", exact=True)).to_have_value(text)
        tokens = shown_tokens(typing_page)
        assert "<" in tokens and ">" in tokens, tokens  # the brackets are shown as text
        expect_step_charts_show(typing_page, tokens)
        root = step_view(typing_page)
        # The step view prints every token as typed: the query select, the tables' key cells.
        query = root.locator("select.avi-query option")
        expect(query).to_have_text([f"{i} · {token}" for i, token in enumerate(tokens, 1)])
        expect(root.locator(".avi-table-steps tbody .avi-token")).to_have_text(tokens)
        expect(root.locator(".avi-table-sum tbody .avi-token")).to_have_text(tokens)
        injected = typing_page.locator(f"[data-testid='stMain'] {tag}, [data-testid='stSidebar'] {tag}")
        assert injected.count() == 0, injected.first.evaluate("e => e.outerHTML")
        # Plotly would draw a `<b>` it parsed from a token as a bold tspan (titles are bold on purpose).
        bold = typing_page.locator(f"{CHART} tspan[style*='bold'], {STEP_VIEW} tspan[style*='bold']")
        assert bold.filter(has_text="bold").count() == 0, bold.all_text_contents()
        assert dialogs == []
        expect_no_message(typing_page)
    finally:
        typing_page.remove_listener("dialog", on_dialog)


# --- the Chinese UI ------------------------------------------------------------------------


def expect_step_view_in(page: Page, lang: str, layer: int = 1, head: int = 1) -> None:
    """The step view speaks `lang`: its pickers' names, headings, axes and worked example."""
    t = texts(lang)
    assert options(picker(page, t["layer"])) == ["1", "2"]
    assert options(picker(page, t["head"])) == ["1", "2", "3", "4"]
    root = step_view(page)
    expect(root.locator("h3")).to_have_text(t["inspect"])
    expect(root.locator("h4")).to_have_text(
        [
            *(t[f"step_{name}"] for name in STEP_CHART_NAMES),
            t["worked_example"],
            t["heads_layer"].format(layer=layer),
            t["heads_grid"],
        ]
    )
    expect(root.get_by_role("combobox", name=t["worked_query"], exact=True)).to_be_visible()
    weights = figure(page, "weights")["layout"]
    assert (weights["xaxis"]["title"]["text"], weights["yaxis"]["title"]["text"]) == (t["key_axis"], t["query_axis"])
    assert figure(page, "heads")["layout"]["yaxis"]["ticktext"] == [f"{t['layer']} {layer}"]
    expect_titles(page, f"L{layer}H{head}")
    tokens, arrays = trace_arrays("我爱你")
    expect_worked_example(page, arrays, tokens, layer, head, 1, lang=lang)
    expect(root.locator("div.avi-worked")).to_contain_text(t["worked_step5"])


def test_chinese_ui_from_the_link_and_back_to_english_with_the_radio(page: Page) -> None:
    open_page(page, {"text": "我爱你", "lang": "zh"})
    expect(page.get_by_label("句子", exact=True)).to_have_value("我爱你")
    expect(page.get_by_role("heading", name="注意力可视化")).to_be_visible()
    expect(page).to_have_title(texts("zh")["page_title"])  # the browser's tab says it too
    assert checked(radio_group(page, "Language / 语言")) == "中文"
    expect_step_view_in(page, "zh")
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)
    screenshot(page, "app-zh-love")
    with no_rerun(page) as mark:  # the Chinese pickers work as the English ones
        picker(page, "头").get_by_role("radio", name="2", exact=True).click()
    expect_titles(page, "L1H2")
    wait_for_report(page, mark)  # the server knows the view before the language changes

    choose(page, "Language / 语言", "English")
    expect(page.get_by_label("Sentence", exact=True)).to_have_value("我爱你")
    expect(page).to_have_title(texts("en")["page_title"])
    assert link(page)["lang"] == "en"
    expect_no_message(page)
    expect_step_view_in(page, "en", head=2)  # the view the browser chose survives the language
    expect_step_charts_show(page, LOVE)

    choose(page, "Language / 语言", "中文")
    expect(page.get_by_label("句子", exact=True)).to_be_visible()
    assert link(page)["lang"] == "zh"
    expect_no_message(page)
    expect_step_view_in(page, "zh", head=2)
    expect_step_charts_show(page, LOVE)


def test_the_step_view_reports_its_view_after_a_language_switch(page: Page) -> None:
    """Switch 中文 -> English, then change the head in the step view: its report of the view (a run
    of its fragment) must leave the page and the link as they were, in English."""
    open_page(page, {"text": "我爱你", "lang": "zh"})
    choose(page, "Language / 语言", "English")
    expect_step_view_in(page, "en")
    with no_rerun(page) as mark:
        picker(page, "Head").get_by_role("radio", name="3", exact=True).click()
    expect_titles(page, "L1H3")
    wait_for_report(page, mark)
    expect_no_message(page)
    assert {name: link(page)[name] for name in ("lang", "model", "palette", "pos", "wscale", "head")} == {
        "lang": "en",
        "model": "random",
        "palette": "default",
        "pos": "sinusoidal",
        "wscale": "fixed",
        "head": "3",
    }


# --- after attention: the rest of the layer and the stack ------------------------------------


@pytest.mark.parametrize(
    ("lang", "toggle", "first_title"),
    [
        ("en", "Show the rest of the layer and the stack", "Token embeddings"),
        ("zh", "显示该层的其余部分以及层的堆叠", "词元嵌入"),
    ],
)
def test_the_rest_of_the_layer_opens_from_its_toggle(page: Page, lang: str, toggle: str, first_title: str) -> None:
    open_app(page, {"text": "我爱你", "lang": lang})
    rest = charts_in(page, "rest-of-layer")
    expect(rest).to_have_count(0)  # off by default
    with rerun(page, charts=1):
        page.get_by_text(toggle, exact=True).click()
    expect(rest).to_have_count(3 + 5 + 2)  # embeddings, positions, waves; five stages; similarity, norms
    expect(rest.first.locator(".gtitle")).to_have_text(first_title)
    for i in (0, 1, 3, 7):  # token rows on the embeddings, positions, layer input and output
        expect_ticks(rest.nth(i), "y", LOVE)
    assert link(page)["rest"] == "1"
    expect_no_exception(page)
    screenshot(page, f"app-{lang}-rest-of-layer")
