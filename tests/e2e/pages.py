"""Driving the real app in Chromium and reading it as a person does, in the words of tests/e2e's
modules: a radio's options, a link's values, the step view's pickers and charts, and the numbers
the step view must print, from a trace computed here by the same encoder, independently of the
server. The waiting underneath (a run started, a view reported) is harness.page's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from playwright.sync_api import Browser, Locator, Page, expect

from encoder import Encoder, EncoderConfig
from harness.page import (
    ALERT,
    CHART,
    EXCEPTION,
    STEP_CHART_NAMES,
    STEP_VIEW,
    chart_of,
    figure,
    no_rerun,
    open_app,
    rerun,
    tick_labels,
    title,
)
from ui.i18n import texts
from viz import number_text, token_labels
from viz.step_view import VIEW_FIELDS

LOVE = ["我", "爱", "你"]
MATRIX_CHARTS = ("scores", "scaled", "weights")  # query tokens down, key tokens across
TITLES = {  # each step chart's title, with the layer and head it shows ("L1H2")
    "qkv": "Q, K, V ({})",
    "scores": "Q·Kᵀ ({})",
    "scaled": "Q·Kᵀ/√d_k ({})",
    "weights": "softmax ({})",
    "context": "Z ({})",
}
WORKED_DIMENSIONS = 8  # columns of the weighted-sum table (viz.step_view.WORKED_DIMENSIONS)
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
    """The address bar says these values within `timeout` seconds. A view's first layer, head,
    query or step (1) is the default, which a link leaves out: then the name must be absent."""
    want = {name: None if name in VIEW_FIELDS and value == 1 else str(value) for name, value in values.items()}
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
    step_view(page).locator("h2").click()
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


def expect_step_view_in(page: Page, lang: str, layer: int = 1, head: int = 1) -> None:
    """The step view speaks `lang`: its pickers' names, headings, axes and worked example."""
    t = texts(lang)
    assert options(picker(page, t["layer"])) == ["1", "2"]
    assert options(picker(page, t["head"])) == ["1", "2", "3", "4"]
    root = step_view(page)
    expect(root.locator("h2")).to_have_text(t["inspect"])
    expect(root.locator("h3")).to_have_text(
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


def start_class(teacher: Page, t: dict[str, str]) -> str:
    """Start a class on the teacher's page; the students' link, as the page shows it."""
    with rerun(teacher):
        teacher.get_by_role("button", name=t["class_start"], exact=True).click()
    link = teacher.get_by_test_id("stExpander").filter(has_text=t["class_join"]).locator("code").first.inner_text()
    assert "class=" in link and "teach=" not in link
    return link


@contextmanager
def phone(browser: Browser, app_url: str, size: tuple[int, int] = (390, 844)) -> Iterator[Page]:
    """A phone's tab: Chromium's mobile emulation with touch (no hover, taps as touch events, a
    device pixel ratio of 2), in a context of its own."""
    width, height = size
    context = browser.new_context(
        viewport={"width": width, "height": height},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        base_url=app_url,
    )
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()
