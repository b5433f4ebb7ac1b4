"""The real app in real Chromium: what a teacher projecting it, or a student at home, would see.

Each test opens the state it needs straight from the query string (every setting lives in
the link), then reads the page the way a person does: the axes' tick labels, the widgets'
labels and values, the messages. `tests/app` covers the same ground without a browser; these
catch what only a browser shows: charts that never draw, HTML injected from user text, a link
that does not reopen the same view, a language switch that breaks the page.

The step view (the five steps, the worked example, the heads of a layer) is one element drawn
by the browser (ui/step_view_browser/): its layer, head, query and step change there with no script
run, which the tests check on the page's websocket (`no_rerun`), and every number it prints is
checked against a trace computed here, independently of the server, by the same encoder.

A page load costs about 10 s here (Plotly's bundle is parsed again for every tab), so the
tests that only type a sentence share one tab (`module_page`).
"""

from __future__ import annotations

import struct
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from plotly.colors import sample_colorscale, unlabel_rgb

from harness.chromium import screenshot, screenshot_of
from harness.page import (
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
    shown_view,
    view_text,
    wait_for_app,
    wait_for_report,
    wait_for_step_view,
)
from harness.runs import watch_runs
from tests.e2e.pages import (
    CAT,
    LOVE,
    charts_in,
    checked,
    choose,
    expect_a_message,
    expect_link,
    expect_no_exception,
    expect_no_message,
    expect_step_charts_show,
    expect_step_view_in,
    expect_ticks,
    expect_titles,
    expect_worked_example,
    focus_step_view,
    link,
    open_page,
    options,
    painted,
    pick,
    picker,
    press,
    radio_group,
    redrawn,
    shown_tokens,
    shown_worked_example,
    slider,
    step_view,
    trace_arrays,
    type_sentence,
    wait_until,
    watch_redraws,
)
from ui.i18n import texts
from viz import number_text
from viz.style import cell_texts, values_are_shown

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
    expect(root.locator("h3")).to_have_text(
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
    live = step_view(page).locator(".avi-live")  # a screen reader hears the change the eye sees
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_have_text(texts("en")["step_view_announce"].format(layer=1, head=3))
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
        expect(live).to_have_text(f"Layer {want_layer}, head {want_head}")
        expect_link(page, layer=want_layer, head=want_head)
        fragments = wait_for_report(page, mark)
        assert len(fragments) == 1 and fragments[0], (key, fragments)
    with no_rerun(page):
        page.keyboard.press("ArrowDown")  # no layer 3: the view stays
    assert shown_view(page) == view_text(2, 3, 1, 1)
    expect(step_view(page)).to_be_focused()
    # The heads strip shows the layer's heads, and says which layer.
    expect(chart_of(page, "heads")).to_have_attribute("data-where", "L2")
    expect(step_view(page).locator("section[data-step=heads] h3")).to_have_text("All heads of layer 2")
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
    assert "lang" not in link(page)  # English is the default, which a link leaves out
    expect_no_message(page)
    expect_step_view_in(page, "en", head=2)  # the view the browser chose survives the language
    expect_step_charts_show(page, LOVE)

    choose(page, "Language / 语言", "中文")
    expect(page.get_by_label("句子", exact=True)).to_be_visible()
    assert link(page)["lang"] == "zh"
    expect_no_message(page)
    expect_step_view_in(page, "zh", head=2)
    expect_step_charts_show(page, LOVE)


def test_the_default_pages_link_is_its_address_alone_and_a_head_adds_only_head(page: Page) -> None:
    """A link carries only what differs from the defaults: one that fits in a chat message."""
    open_app(page, step_view=True)
    assert urlsplit(page.url).query == ""
    with no_rerun(page) as mark:
        picker(page, "Head").get_by_role("radio", name="2", exact=True).click()
    expect_link(page, head=2)
    wait_for_report(page, mark)  # the server has heard of the view, and written the link itself
    assert urlsplit(page.url).query == "head=2"


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
    # English, random weights, the default palette, positions and colour scale are the defaults,
    # which a link leaves out: what is left is the head.
    assert link(page) == {"head": "3"}


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
