"""The real app in real Chromium: what a teacher projecting it, or a student at home, would see.

Each test opens the state it needs straight from the query string (every setting lives in
the link), then reads the page the way a person does: the axes' tick labels, the widgets'
labels and values, the messages. `tests/app` covers the same ground without a browser; these
catch what only a browser shows: charts that never draw, HTML injected from user text, a link
that does not reopen the same view, a language switch that breaks the page.

A page load costs about 5 s here (Plotly's bundle is parsed again for every tab), so the
tests that only type a sentence share one tab (`module_page`).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from e2e_harness import ALERT, CHART, CHART_SVG, EXCEPTION, open_app, rerun, screenshot, tick_texts, wait_for_app
from playwright.sync_api import Locator, Page, expect

LOVE = ["我", "爱", "你"]
STEPS = ("step-qkv", "step-scores", "step-scaled", "step-weights", "step-context")
MATRIX_STEPS = ("step-scores", "step-scaled", "step-weights")  # query tokens down, key tokens across
SECTIONS = (*STEPS, "worked-example", "heads-layer", "heads-grid")
STEP_CHARTS = len(STEPS)  # at least one chart per step (Q, K and V may share one figure)


# --- reading the page ------------------------------------------------------------------------


def charts_in(page: Page, key: str) -> Locator:
    return page.locator(f".st-key-{key} {CHART}")


def radio_group(page: Page, label: str) -> Locator:
    return page.get_by_role("radiogroup", name=label, exact=True)


def choose(page: Page, label: str, option: str, *, charts: int = 0) -> None:
    """Click a radio option's visible text, as a person does (the input itself is visually hidden),
    and wait for the run it starts to end."""
    with rerun(page, charts=charts):
        radio_group(page, label).get_by_test_id("stRadioOption").get_by_text(option, exact=True).click()


def checked(page: Page, label: str) -> str:
    return radio_group(page, label).get_by_role("radio", checked=True).evaluate("e => e.labels[0].innerText").strip()


def options(page: Page, label: str) -> list[str]:
    return [text.strip() for text in radio_group(page, label).get_by_test_id("stRadioOption").all_inner_texts()]


def slider(page: Page, label: str) -> Locator:
    """A slider's keyboard handle (its accessible name repeats the label, so match the aria-label)."""
    return page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')


def link(page: Page) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(page.url).query).items()}


def shown_tokens(page: Page) -> list[str]:
    """The tokens as the page lists them above the charts (`st.code`, joined by ' · ')."""
    return page.get_by_test_id("stCode").first.inner_text().split("  ·  ")


def type_sentence(page: Page, text: str, label: str = "Sentence") -> None:
    box = page.get_by_label(label, exact=True)
    with rerun(page):
        box.fill(text)
        box.press("Enter")


def expect_ticks(chart: Locator, axis: str, tokens: list[str]) -> None:
    """Wait (a rerun may still be drawing) until the chart's `axis` ticks are exactly `tokens`."""
    expect(chart.locator(f".{axis}tick text")).to_have_text(tokens, timeout=20_000)


def expect_step_charts_show(page: Page, tokens: list[str]) -> None:
    """Every step chart labels its token axes with exactly these tokens, in order."""
    qkv = charts_in(page, "step-qkv")
    expect(qkv.first).to_be_visible()
    for i in range(qkv.count()):  # Q, K, V (one figure or three): one row per token
        expect_ticks(qkv.nth(i), "y", tokens)
    for key in MATRIX_STEPS:
        chart = charts_in(page, key)
        expect(chart).to_have_count(1)
        expect_ticks(chart, "y", tokens)  # queries label the rows
        expect_ticks(chart, "x", tokens)  # keys label the columns
    expect_ticks(charts_in(page, "step-context"), "y", tokens)


def expect_no_exception(page: Page) -> None:
    expect(page.locator(EXCEPTION)).to_have_count(0)


def expect_no_message(page: Page) -> None:
    """No exception and no alert; on failure the report shows the alerts' text."""
    expect_no_exception(page)
    expect(page.locator(ALERT)).to_have_text([])


def expect_a_message(page: Page) -> None:
    expect(page.locator(ALERT).first).to_be_visible()
    expect_no_exception(page)


# --- the page and its charts -------------------------------------------------------------------


def test_default_page_shows_every_step_for_the_love_example(page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_app(page, charts=STEP_CHARTS)
    expect(page.get_by_role("heading", name="Attention Visualizer")).to_be_visible()
    expect(page.get_by_label("Sentence", exact=True)).to_have_value("我爱你")
    for key in SECTIONS:
        expect(page.locator(f".st-key-{key}")).to_have_count(1)
    for key in (*STEPS, "heads-layer", "heads-grid"):
        expect(page.locator(f".st-key-{key} {CHART_SVG}").first).to_be_attached()
    expect_step_charts_show(page, LOVE)
    for key in MATRIX_STEPS:
        assert tick_texts(charts_in(page, key)) == {"x": LOVE, "y": LOVE}, key
    expect_no_message(page)
    screenshot(page, "app-en-love")
    assert errors == []


def test_typing_a_sentence_and_the_example_button(page: Page) -> None:
    open_app(page, {"text": "hello world"}, charts=STEP_CHARTS)
    expect_step_charts_show(page, ["hello", "world"])
    type_sentence(page, "the cat sat")
    expect_step_charts_show(page, ["the", "cat", "sat"])
    assert link(page)["text"] == "the cat sat"
    with rerun(page):
        page.get_by_role("button", name="我爱你", exact=True).click()
    expect(page.get_by_label("Sentence", exact=True)).to_have_value("我爱你")
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)


def test_heads_and_layers_from_the_link(page: Page) -> None:
    open_app(page, {"text": "我爱你", "d_model": 64, "heads": 8, "layers": 3}, charts=STEP_CHARTS)
    assert options(page, "Head") == [str(h) for h in range(1, 9)]
    assert options(page, "Layer") == ["1", "2", "3"]
    expect(slider(page, "Heads")).to_have_attribute("aria-valuetext", "8")
    expect(slider(page, "Layers")).to_have_attribute("aria-valuetext", "3")
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)


def test_sidebar_widgets_change_heads_and_layers_and_the_pickers_follow(page: Page) -> None:
    open_app(page, {"text": "我爱你", "d_model": 64, "heads": 4, "layers": 2}, charts=STEP_CHARTS)
    with rerun(page):
        slider(page, "Layers").press("ArrowRight")  # 2 -> 3
    expect(radio_group(page, "Layer").get_by_role("radio")).to_have_count(3)
    with rerun(page):
        slider(page, "Heads").press("ArrowRight")  # 4 -> 8: the next divisor of 64
    expect(radio_group(page, "Head").get_by_role("radio")).to_have_count(8)
    assert (link(page)["heads"], link(page)["layers"]) == ("8", "3")

    choose(page, "Layer", "3")
    choose(page, "Head", "7")
    assert (checked(page, "Layer"), checked(page, "Head")) == ("3", "7")
    assert (link(page)["layer"], link(page)["head"]) == ("3", "7")
    for key in STEPS:  # every step chart says which head it shows
        expect(page.locator(f".st-key-{key} {CHART} .gtitle").first).to_contain_text("L3H7")
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)


def test_a_shared_link_reopens_the_same_view(page: Page) -> None:
    sentence = "the cat sat on the mat"
    state = {"text": sentence, "d_model": 32, "heads": 8, "layers": 3, "layer": 2, "head": 5, "query": 3, "seed": 7}
    open_app(page, state, charts=STEP_CHARTS)
    assert (checked(page, "Layer"), checked(page, "Head")) == ("2", "5")
    expect(page.get_by_label("Sentence", exact=True)).to_have_value(sentence)
    expect(page.get_by_role("combobox", name="Query token")).to_have_value("3 · sat")
    expect_step_charts_show(page, sentence.split())
    expect_no_message(page)

    # Change the head, then open the page's own link in a second tab: the same view comes back.
    choose(page, "Head", "6")
    expect(page.locator(f".st-key-step-weights {CHART} .gtitle")).to_contain_text("L2H6")
    shared = page.url
    expected = {name: str(value) for name, value in state.items()} | {"head": "6"}
    assert {name: link(page).get(name) for name in expected} == expected

    other = page.context.new_page()
    try:
        other.goto(shared)
        wait_for_app(other, charts=STEP_CHARTS)
        assert (checked(other, "Layer"), checked(other, "Head")) == ("2", "6")
        expect(other.get_by_role("combobox", name="Query token")).to_have_value("3 · sat")
        expect_step_charts_show(other, sentence.split())
        for key in STEPS:  # same titles, and the same heatmap pixels: the same numbers
            ours, theirs = (p.locator(f".st-key-{key} {CHART}") for p in (page, other))
            assert theirs.locator(".gtitle").all_text_contents() == ours.locator(".gtitle").all_text_contents()
            pixels = [
                p.locator("image").evaluate_all("images => images.map(i => i.getAttribute('href'))")
                for p in (ours, theirs)
            ]
            assert pixels[0] == pixels[1], key
    finally:
        other.close()


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


def test_absurd_link_values_fall_back_to_the_defaults_with_a_notice_each(page: Page) -> None:
    open_app(page, {"text": "我爱你", "d_model": "-5", "heads": "abc", "layers": "999"}, charts=STEP_CHARTS)
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
        open_app(module_page, {"text": "我爱你"}, charts=STEP_CHARTS)
    return module_page


@pytest.mark.parametrize("text", ["    ", "word " * 1000], ids=["only-spaces", "5000-character-paste"])
def test_typed_text_without_usable_tokens_gives_a_message(typing_page: Page, text: str) -> None:
    type_sentence(typing_page, text)
    expect_a_message(typing_page)
    expect(typing_page.locator(CHART)).to_have_count(0)


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
        injected = typing_page.locator(f"[data-testid='stMain'] {tag}, [data-testid='stSidebar'] {tag}")
        assert injected.count() == 0, injected.first.evaluate("e => e.outerHTML")
        # Plotly would draw a `<b>` it parsed from a token as a bold tspan (titles are bold on purpose).
        bold = typing_page.locator(f"{CHART} tspan[style*='bold']").filter(has_text="bold")
        assert bold.count() == 0, bold.all_text_contents()
        assert dialogs == []
        expect_no_message(typing_page)
    finally:
        typing_page.remove_listener("dialog", on_dialog)


# --- the Chinese UI ------------------------------------------------------------------------


def test_chinese_ui_from_the_link_and_back_to_english_with_the_radio(page: Page) -> None:
    open_app(page, {"text": "我爱你", "lang": "zh"}, charts=STEP_CHARTS)
    expect(page.get_by_label("句子", exact=True)).to_have_value("我爱你")
    expect(page.get_by_role("heading", name="注意力可视化")).to_be_visible()
    assert checked(page, "Language / 语言") == "中文"
    assert options(page, "层") == ["1", "2"] and options(page, "头") == ["1", "2", "3", "4"]
    expect_step_charts_show(page, LOVE)
    expect_no_message(page)
    screenshot(page, "app-zh-love")

    choose(page, "Language / 语言", "English")
    expect(page.get_by_label("Sentence", exact=True)).to_have_value("我爱你")
    assert link(page)["lang"] == "en"
    expect_no_message(page)
    expect_step_charts_show(page, LOVE)

    choose(page, "Language / 语言", "中文")
    expect(page.get_by_label("句子", exact=True)).to_be_visible()
    assert link(page)["lang"] == "zh"
    expect_no_message(page)
    expect_step_charts_show(page, LOVE)


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
