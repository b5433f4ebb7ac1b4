"""Every student's screen: a phone (one column that fits, a tap that does what hover and click do),
a keyboard and a screen reader (each chart a grid of cells with names, its numbers as a table), and
axe-core's rules on every kind of page.

The phones are Chromium's mobile emulation with touch (`is_mobile`, `has_touch`): no hover, a
device pixel ratio of 2 or more, taps as touch events. axe-core is the engine accessibility audits
use; `axe-playwright-python` runs it in the real page.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from harness.chromium import screenshot
from harness.page import CHART, cell_position, figure, no_rerun, open_app, shown_view, title, view_text, wait_for_app
from harness.runs import watch_runs
from tests.e2e.pages import CAT, focus_step_view, phone, start_class, step_view, trace_arrays
from ui.experiments import EXPERIMENTS
from ui.i18n import chart_labels, texts
from viz import token_labels

PHONES = [  # (width, height), the page's language, a sentence of 8 tokens in it
    pytest.param((390, 844), "en", "the cat sat on the mat with me", id="390x844-en"),
    pytest.param((412, 915), "zh", "我们一起学习注意", id="412x915-zh"),
]
MIN_SOFTMAX_CELL_PX = 24  # up to 8 tokens: a fingertip's target (WCAG 2.5.8's minimum)
MIN_TILE_PX = 56  # a thumbnail of a head's weights (ui/step_view_browser/tiles.js wraps below it)


# Elements drawn past the right edge of the screen, but for those inside a box of their own that
# clips or scrolls sideways (a wide table): the page itself must never scroll sideways.
BEYOND_THE_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const main = document.querySelector('[data-testid="stMain"]');
  const clippedInside = (node) => {
    for (let box = node.parentElement; box && box !== main; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") return true;
    }
    return false;
  };
  return [...main.querySelectorAll("*")]
    .filter((node) => {
      const r = node.getBoundingClientRect();
      return r.width > 0 && r.height > 0 && r.right > width + 1 && !clippedInside(node);
    })
    .slice(0, 10)
    .map((node) => {
      const where = Math.round(node.getBoundingClientRect().right);
      return `${node.tagName.toLowerCase()}.${node.getAttribute("class")} "${node.textContent.slice(0, 30)}" ${where}`;
    });
}"""

# Pairs of tick labels of one axis of one chart that overlap, as drawn: each label's box in its own
# turned frame (getBBox, then its rotation about its anchor undone), so slanted labels count only
# where their letters meet.
OVERLAPPING_LABELS = """(root) => {
  const found = [];
  for (const chart of root.querySelectorAll("[data-chart]")) {
    for (const kind of ["avi-xtick", "avi-ytick"]) {
      const boxes = [...chart.querySelectorAll(`text.${kind}`)].map((label) => {
        const turn = (label.getAttribute("transform") || "").match(/rotate\\(([-\\d.]+)/);
        const angle = turn ? (Number(turn[1]) * Math.PI) / 180 : 0;
        const [ax, ay] = [Number(label.getAttribute("x")), Number(label.getAttribute("y"))];
        const [rx, ry] = [Math.cos(angle) * ax + Math.sin(angle) * ay, -Math.sin(angle) * ax + Math.cos(angle) * ay];
        const b = label.getBBox();
        return { text: label.textContent, x: b.x - ax + rx, y: b.y - ay + ry, w: b.width, h: b.height };
      });
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const [p, q] = [boxes[i], boxes[j]];
        if (p.x < q.x + q.w - 0.5 && q.x < p.x + p.w - 0.5 && p.y < q.y + q.h - 0.5 && q.y < p.y + p.h - 0.5) {
          found.push(`${chart.dataset.chart}: "${p.text}" and "${q.text}"`);
        }
      }
    }
  }
  return found;
}"""

CLIPPED_FORMULAS = """(root) => [...root.querySelectorAll(".avi-formula math")]
  .filter((m) => m.scrollWidth > m.clientWidth + 1)
  .map((m) => `${m.closest("section").dataset.step}: ${m.scrollWidth} px in ${m.clientWidth} px`)"""


@pytest.mark.parametrize(("size", "lang", "text"), PHONES)
def test_a_phone_shows_the_step_view_in_one_column_that_fits(
    browser: Browser, app_url: str, size: tuple[int, int], lang: str, text: str
) -> None:
    with phone(browser, app_url, size) as page:
        open_app(page, {"lang": lang, "text": text}, step_view=True)
        root = step_view(page)
        # One column: the formula and its text above the chart, the chart the column's width.
        for step in ("scores", "weights"):
            side, chart = root.locator(f"section[data-step={step}] .avi-side"), root.locator(f"[data-chart={step}]")
            assert side.bounding_box()["y"] + side.bounding_box()["height"] <= chart.bounding_box()["y"] + 1
            assert chart.bounding_box()["width"] >= 0.8 * size[0]
        assert page.evaluate(BEYOND_THE_SCREEN) == []
        assert root.evaluate(OVERLAPPING_LABELS) == []
        assert root.evaluate(CLIPPED_FORMULAS) == []
        widths = root.locator("[data-chart=weights]").evaluate(
            "(div) => div.heatmapChart.panels.map((p) => (p.right - p.left) / p.columns)"
        )
        assert min(widths) >= MIN_SOFTMAX_CELL_PX, f"softmax cells {min(widths):.1f} px wide"
        # The thumbnails of every head wrap onto more rows rather than shrink: each keeps its size.
        for name in ("heads", "grid"):
            tile = root.locator(f"[data-chart={name}]").evaluate(
                "(div) => div.heatmapChart.panels.map((p) => (8 * (p.right - p.left)) / p.columns)[0]"
            )
            assert tile >= MIN_TILE_PX, f"{name}: thumbnails {tile:.0f} px wide"
        # Pinch-zoom is the browser's: nothing forbids it.
        assert "user-scalable=no" not in page.evaluate("document.querySelector('meta[name=viewport]').content")
        assert root.locator("[data-chart=weights]").evaluate("(div) => getComputedStyle(div).touchAction") == "auto"
        # No hover, no arrow keys: the phone is told what a tap does instead.
        expect(root.locator(".avi-keys")).to_be_hidden()
        expect(root.locator(".avi-touch")).to_have_text(texts(lang)["step_view_touch"])
        screenshot(page, f"app-{lang}-phone-{size[0]}", full_page=False)
        root.locator("section[data-step=weights]").scroll_into_view_if_needed()
        screenshot(page, f"app-{lang}-phone-{size[0]}-weights", full_page=False)


def test_a_tap_on_a_softmax_cell_outlines_its_query_in_every_step_and_the_worked_example_follows(
    browser: Browser, app_url: str
) -> None:
    with phone(browser, app_url) as page:
        open_app(page, {"text": CAT}, step_view=True)
        d = 16  # d_k of 64 / 4 heads
        i, j = 4, 1  # query "the" (the second one), key "cat"
        page.touchscreen.tap(*cell_position(page, "weights", i, j))
        expect(step_view(page)).to_have_attribute("data-hover", f"{i},{j}")
        qkv = figure(page, "qkv")["layout"]["shapes"]
        query_row = ("x", -0.5, d - 0.5, i - 0.5, i + 0.5)
        assert tuple(qkv[0][k] for k in ("xref", "x0", "x1", "y0", "y1")) == query_row
        expect(step_view(page).locator("[data-chart=qkv] rect.avi-outline")).to_have_count(3)  # Q's row, K's and V's
        expect(step_view(page)).to_have_attribute("data-query", str(i))  # the worked example follows the query
        expect(step_view(page).get_by_role("combobox")).to_have_value(str(i))
        # A second tap elsewhere moves it; a finger lifted does not take it away.
        page.touchscreen.tap(*cell_position(page, "scores", 2, 3))
        expect(step_view(page)).to_have_attribute("data-hover", "2,3")
        expect(step_view(page)).to_have_attribute("data-query", "2")
        screenshot(page, "app-en-phone-tap", full_page=False)
        # A tap on a thumbnail opens its head, wrapped onto a second row as it is on a phone.
        captions = figure(page, "heads")["layout"]["annotations"]
        corner = next(a for a in captions if a["text"].startswith("Head 4"))
        assert corner["y"] > 0  # the fourth head is on the second row of thumbnails
        page.touchscreen.tap(*cell_position(page, "heads", round(corner["y"] + 1.5), round(corner["x"] + 1.5)))
        expect(step_view(page)).to_have_attribute("data-head", "3")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_keyboard_walks_the_softmax_cells_and_hears_their_weights(page: Page, lang: str) -> None:
    open_app(page, {"text": CAT, "lang": lang}, step_view=True)
    tokens, arrays = trace_arrays(CAT)
    labels, names = chart_labels(lang), token_labels(tokens)
    join = texts(lang)["step_view_cell_join"]
    charts = step_view(page).locator("[data-chart]")
    expect(charts.locator("[role=grid][tabindex='0']")).to_have_count(charts.count())  # one Tab stop each
    focus_step_view(page)
    for _ in range(40):  # Tab, as a keyboard user would, until the softmax chart has the focus
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.closest('[data-chart]')?.dataset.chart") == "weights":
            break
    grid = step_view(page).locator("[data-chart=weights] [role=grid]")
    expect(grid).to_be_focused()
    expect(grid).to_have_accessible_name(title(page, "weights"))  # the chart's title, "… (L1H1)"
    with no_rerun(page):  # inside a chart the arrows move its cell, not the head
        for key in ("ArrowDown", "ArrowDown", "ArrowRight"):
            page.keyboard.press(key)
    i, j = 2, 1
    weight = float(arrays["layer0.weights"][0][i][j])
    cell = page.locator(f"#{grid.get_attribute('aria-activedescendant')}")
    expect(cell).to_have_attribute("role", "gridcell")
    expect(cell).to_have_text(
        f"{labels.query}: {names[i]}{join}{labels.key}: {names[j]}{join}{labels.weight}: {weight:.4f}"
    )
    expect(step_view(page)).to_have_attribute("data-hover", f"{i},{j}")  # linked across the steps
    expect(step_view(page).locator("[data-chart=weights] rect.avi-focus")).to_have_count(1)
    assert shown_view(page) == view_text(1, 1, 1, 1)
    page.keyboard.press("Enter")
    expect(step_view(page)).to_have_attribute("data-query", str(i))  # the worked example follows it
    expect(step_view(page).get_by_role("combobox")).to_have_value(str(i))
    page.keyboard.press("Escape")
    expect(grid).not_to_be_focused()
    expect(step_view(page)).to_be_focused()
    page.keyboard.press("ArrowRight")  # outside the chart, the arrows change the head again
    expect(step_view(page)).to_have_attribute("data-head", "1")


def test_each_chart_shows_its_numbers_as_a_table(page: Page) -> None:
    open_app(page, {"text": "我爱你"}, step_view=True)
    tokens, arrays = trace_arrays("我爱你")
    toggle = step_view(page).locator("details[data-table=weights]")
    toggle.locator("summary").click()
    table = toggle.get_by_role("table")
    expect(table.locator("tbody tr")).to_have_count(3)
    rows = table.locator("tbody tr").evaluate_all("(trs) => trs.map((r) => [...r.children].map((c) => c.textContent))")
    assert rows == [[tokens[q], *(f"{w:.4f}" for w in arrays["layer0.weights"][0][q])] for q in range(3)]
    with no_rerun(page):  # an open table follows the head
        step_view(page).get_by_role("radiogroup", name="Head").get_by_role("radio", name="2", exact=True).click()
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text(f"{arrays['layer0.weights'][1][0][0]:.4f}")


# --- axe-core -------------------------------------------------------------------------------------

PAGES = {
    "default": {},
    "zh": {"lang": "zh"},
    "presentation": {"present": 1},
    "minilm": {"model": "minilm"},
    "colorblind": {"palette": "colorblind", "text": CAT},
    **{f"experiment-{name}": {"experiment": name} for name in EXPERIMENTS},
}


def serious_violations(page: Page) -> list[str]:
    """What axe-core finds serious or critical on the page as it is now, one line per rule."""
    page.wait_for_function(  # Streamlit's own Plotly charts draw after the run: check them drawn
        "(chart) => [...document.querySelectorAll(chart)].every((c) => c.querySelector('svg.main-svg'))", arg=CHART
    )
    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_nothing_serious(module_page: Page, name: str) -> None:
    open_app(module_page, PAGES[name], step_view=True)
    assert serious_violations(module_page) == []


@pytest.mark.parametrize("params", [{}, {"present": 1}], ids=["default", "presentation"])
def test_axe_finds_nothing_serious_in_the_dark_theme(browser: Browser, app_url: str, params: dict) -> None:
    """A dark room wants the dark theme: the page follows the system's (prefers-color-scheme)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme="dark", base_url=app_url)
    try:
        page = context.new_page()
        open_app(page, params, step_view=True)
        background = page.evaluate("getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        assert sum(int(c) for c in background[4:-1].split(",")[:3]) < 3 * 64, f"not dark: {background}"
        assert serious_violations(page) == []
    finally:
        context.close()


def test_a_following_students_phone_opens_on_the_teachers_step_and_axe_finds_nothing_serious(
    browser: Browser, browser_context: BrowserContext, app_url: str
) -> None:
    t = texts("en")
    teacher = browser_context.new_page()
    try:
        open_app(teacher, {"text": CAT, "head": 2}, step_view=True)
        link = start_class(teacher, t)
        code = parse_qs(link.split("?", 1)[1])["class"][0]
        with phone(browser, app_url) as student:
            watch_runs(student)
            student.goto(link)
            wait_for_app(student, step_view=True)
            banner = student.get_by_text(t["class_banner"].format(code=code), exact=True)
            expect(banner).to_be_visible()
            assert banner.bounding_box()["height"] < 40  # one line
            expect(student.get_by_test_id("stCode")).to_be_hidden()  # the tokens, folded away
            # The first screen holds the teacher's step: Q, K and V's heading, and the step view on head 2.
            expect(step_view(student)).to_have_attribute("data-head", "1")
            first = step_view(student).locator("section[data-step=qkv] h3").bounding_box()
            assert first["y"] + first["height"] <= 844, f"the first step starts {first['y']:.0f} px down"
            screenshot(student, "class-student-phone", full_page=False)
            assert serious_violations(student) == []
    finally:
        teacher.close()
