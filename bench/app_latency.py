"""How long the app takes, in real Chromium, from a user's input to the last chart drawn.

Serves app.py and drives headless Chromium through harness/ (as the e2e tests do). For each
scenario it repeats one interaction and prints the median of the rounds against its target and
as a ratio to bench/reference_app.py, the least a Streamlit page can do for the same input,
served and timed in the same browser in the same run. The clock starts at the input event and
stops, in the page, at the first frame painted after every chart the input changes is drawn. The
memory scenario reads the tab's JavaScript heap after 10 head changes and after 100. Nothing
here is a pass/fail test; bench/README.md has the scenarios, their targets and the latest figures.

    python -m bench.app_latency --rounds 6          # every scenario
    python -m bench.app_latency --rounds 3 --only head,layer,memory

Run from the repository's root, as a module.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from playwright.sync_api import Browser, Locator, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from harness.chromium import CHROMIUM_ARGS, INSTALL_HINT, app_context, find_chromium
from harness.page import STEP_VIEW, AppException, wait_for_app
from harness.runs import ScriptRuns
from harness.server import ROOT, streamlit_server
from viz.step_view import REPORT_DELAY_MS, VIEW_FIELDS

QUIET_MS = 300  # no websocket message for this long, every run asked for ended: the page is at rest

# In every page of the run: what each chart shows, the conditions a round waits for, and the
# clock. Once armed, the first input event starts the clock and a loop of animation frames; at
# each frame every condition not yet met is checked, and a met one is timed at the message task
# that follows the frame (posted from the frame's callback, it runs once the frame is painted).
BENCH_JS = """
(() => {
  const STEP_VIEW = '[data-testid="step-view"]';
  const stepView = () => document.querySelector(STEP_VIEW);
  // A chart's visible content: every text it drew, its heatmaps' pixels and its shapes.
  const signature = (chart) => {
    const svgs = chart.querySelectorAll('svg.main-svg');
    if (!svgs.length) return null;
    let s = '';
    for (const svg of svgs) s += svg.textContent + '|';
    for (const image of chart.querySelectorAll('image')) s += (image.getAttribute('href') || '') + '|';
    for (const shape of chart.querySelectorAll('.shapelayer path')) s += (shape.getAttribute('d') || '') + '|';
    return s;
  };
  // Streamlit's own Plotly charts (the step view's are not among them).
  window.__benchSignatures = () => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map(signature);
  const settled = (value) => value !== undefined && value !== 'loading' && value !== 'error';
  // The step view's charts on show (not in a hidden step), once it has taken a payload that came
  // after the clock was armed (its data-run counts the payloads it has drawn).
  const freshCharts = (b) => {
    const root = stepView();
    if (!root || root.dataset.run === b.oldRun) return null;
    const charts = [...root.querySelectorAll('[data-chart]')].filter((c) => !c.closest('[hidden]'));
    return charts.length ? charts : null;
  };
  const drawn = (chart) => Boolean(chart.heatmapChart && chart.heatmapChart.panels);
  const offScreen = (chart) => {
    const box = chart.getBoundingClientRect();
    return box.bottom <= 0 || box.top >= innerHeight;
  };
  const streamlitDrawn = (b) => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const now = window.__benchSignatures();
    if (now.length !== b.before.length || now.some((s) => s === null)) return false;
    return !b.mustChange.some((i) => now[i] === b.before[i]);
  };
  const conditions = {
    // a view the browser draws by itself: the element names it
    ready: (b) => stepView()?.dataset.ready === b.target,
    complete: (b) => stepView()?.dataset.complete === b.target,
    // tokens chosen above the strip and the grid: both redrawn for them
    picked: (b) => stepView()?.dataset.picked === b.target,
    // a new run from the server: a new payload, its charts on screen drawn
    runReady: (b) => {
      const root = stepView();
      const charts = root && freshCharts(b);
      return Boolean(charts && settled(root.dataset.ready) && charts.every((c) => drawn(c) || offScreen(c)));
    },
    runComplete: (b) => {
      const root = stepView();
      const charts = root && freshCharts(b);
      return Boolean(charts && settled(root.dataset.complete) && root.dataset.complete === root.dataset.ready
        && charts.every(drawn) && streamlitDrawn(b));
    },
    // a page of Streamlit widgets only (the reference)
    page: streamlitDrawn,
  };
  const afterPaint = (callback) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => callback(performance.now());
    channel.port2.postMessage(null);
  };
  const tick = () => {
    const b = window.__bench;
    if (!b || b.done) return;
    const error = document.querySelector('[data-testid="stException"]');
    if (error) { b.error = error.innerText; b.done = true; return; }
    if (stepView()?.dataset.ready === 'error') { b.error = 'the step view says error'; b.done = true; return; }
    for (const [mark, condition] of Object.entries(b.marks)) {
      if (b.seen.has(mark) || !conditions[condition](b)) continue;
      b.seen.add(mark);
      afterPaint((t) => { b.times[mark] = t - b.t0; });
    }
    if (b.seen.size === Object.keys(b.marks).length) b.done = true;
    else requestAnimationFrame(tick);
  };
  const start = (event) => {
    const b = window.__bench;
    if (!b || b.t0 !== null) return;
    b.t0 = performance.now();
    b.event = event.type;
    requestAnimationFrame(tick);
  };
  for (const type of ['pointerdown', 'keydown', 'input']) window.addEventListener(type, start, true);
  // When the script run ends, as the page sees it (the DOM may skip a short run's states: a hint).
  const watchApp = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) { setTimeout(watchApp, 20); return; }
    new MutationObserver(() => {
      const b = window.__bench;
      if (b && b.t0 !== null && !b.done && app.getAttribute('data-test-script-state') === 'notRunning') {
        b.runEnded = performance.now() - b.t0;
      }
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  watchApp();
  // Arm the clock: `marks` maps a name to a condition above; the next input event starts it.
  window.__benchArm = (marks, target, mustChange) => {
    window.__bench = {
      marks, target, mustChange, t0: null, event: null, times: {}, seen: new Set(), done: false, error: null,
      runEnded: null,
      before: window.__benchSignatures(),
      oldRun: document.querySelector(STEP_VIEW)?.dataset.run,
    };
  };
  window.__benchFinished = () => {
    const b = window.__bench;
    return b && (b.error !== null || Object.keys(b.times).length === Object.keys(b.marks).length);
  };
  // Count what changes in the step view from now on (the rerun that reports a view should change nothing).
  window.__benchWatch = () => {
    const root = stepView();
    window.__benchMutations = 0;
    if (window.__benchObserver) window.__benchObserver.disconnect();
    if (!root) return;
    window.__benchObserver = new MutationObserver((records) => { window.__benchMutations += records.length; });
    const options = {subtree: true, childList: true, attributes: true, attributeFilter: ['data-shows']};
    window.__benchObserver.observe(root, options);
  };
})();
"""

# The step view has settled: every chart of the view it names is drawn.
STEP_VIEW_SETTLED_JS = f"""
() => {{
  if (document.querySelector('[data-testid="stException"]')) return true;
  const root = document.querySelector('{STEP_VIEW}');
  if (!root) return false;
  const {{ready, complete}} = root.dataset;
  return ready === 'error' || (ready !== undefined && ready !== 'loading' && complete === ready);
}}
"""

# What the page looked like when a round did not finish: to tell a slow app from a lost input.
STATE_JS = f"""
() => {{
  const b = window.__bench || {{}};
  const root = document.querySelector('{STEP_VIEW}');
  const app = document.querySelector('[data-testid="stApp"]');
  return {{
    input: b.event, met: [...(b.seen || [])], script: app && app.getAttribute('data-test-script-state'),
    ready: root && root.dataset.ready, complete: root && root.dataset.complete,
    charts: window.__benchSignatures().map((s, i) => s === null ? 'undrawn' : s === b.before[i] ? 'same' : 'new'),
  }};
}}
"""

VIEW_MARKS = {"ready": "ready", "complete": "complete"}
PICKED_MARKS = {"ready": "picked", "complete": "picked"}
RUN_MARKS = {"ready": "runReady", "complete": "runComplete"}
PAGE_MARKS = {"complete": "page"}


class Traffic(ScriptRuns):
    """The page's websocket (see `ScriptRuns`). At rest: every run asked for has ended, and
    nothing has moved either way for a while."""

    def at_rest(self) -> bool:
        # (a rerun asked for while another starts may be merged into it and never end on its own:
        # a few seconds of silence is rest too)
        silence = time.monotonic() - self.last
        return silence >= QUIET_MS / 1000 and (self.requested_at_last_end == self.requested or silence >= 3)


@dataclass(frozen=True)
class Target:
    ms: float | None = None  # at most this median
    ratio: float | None = None  # at most this times the reference's median

    def text(self) -> str:
        parts = ([f"≤ {self.ms:.0f} ms"] if self.ms else []) + ([f"≤ {self.ratio:g}× ref"] if self.ratio else [])
        return ", ".join(parts) or "none"

    def met(self, median: float, reference: float | None) -> str:
        if self.ms is None and self.ratio is None:
            return "n/a"
        if self.ratio is not None and reference is None:
            return "?"
        ok = (self.ms is None or median <= self.ms) and (self.ratio is None or median <= self.ratio * reference)
        return "met" if ok else "not met"


@dataclass
class Scenario:
    name: str
    description: str
    params: dict[str, object]
    interact: Callable[[Page, int], None]  # one user input for round n (arms the clock just before it)
    kind: str  # "view": drawn in the browser; "run": a new run from the server; "page": the reference
    target: Target = field(default_factory=Target)
    reference: str = "head"  # the reference scenario for the same kind of input
    prepare: Callable[[Page, int], None] | None = None  # untimed, before each round
    server: bool = False  # a view change that waits for a script run (its end is timed, as for "run" and "page")


@dataclass
class Round:
    total: float  # input to the frame after everything was drawn
    ready: float | None  # input to the frame after the step view's charts on screen were drawn
    run_ended: float | None = None  # input to the end of the script run it started (a server round)


class AppError(RuntimeError):
    """The app showed an exception, or an input changed nothing: nothing to time."""


def _url(params: dict[str, object]) -> str:
    return "/?" + urlencode({k: str(v) for k, v in params.items()}, quote_via=quote)


def _arm(page: Page, marks: dict[str, str], target: str | None = None) -> None:
    page.evaluate("([m, t]) => window.__benchArm(m, t, window.__benchMustChange || [])", [marks, target])


# --- the step view's own inputs ------------------------------------------------------------------


def _step_view(page: Page) -> Locator:
    return page.locator(STEP_VIEW)


def _view(page: Page) -> dict[str, int]:
    """The view the step view shows now, 0-based."""
    data = page.evaluate(f"() => ({{...document.querySelector('{STEP_VIEW}').dataset}})")
    return {name: int(data[name]) for name in VIEW_FIELDS}


def _target(view: dict[str, int]) -> str:
    """What `data-ready` and `data-complete` say for `view`."""
    return ",".join(str(view[name]) for name in VIEW_FIELDS)


def _radios(page: Page, label: str) -> Locator:
    return _step_view(page).get_by_role("radiogroup", name=label, exact=True).get_by_role("radio")


def _click_radio(page: Page, label: str, name: str, value: int) -> None:
    """Click the step view's radio for `value` (0-based) of its `label` group, the clock armed."""
    radio = _step_view(page).get_by_role("radiogroup", name=label, exact=True)
    radio = radio.get_by_role("radio", name=str(value + 1), exact=True)
    radio.scroll_into_view_if_needed()
    _arm(page, VIEW_MARKS, _target({**_view(page), name: value}))
    radio.click()


def _pick(name: str, label: str) -> Callable[[Page, int], None]:
    """Alternate the step view's layer or head between its 1st and 2nd radio."""

    def interact(page: Page, round_: int) -> None:
        _click_radio(page, label, name, 1 if _view(page)[name] == 0 else 0)

    return interact


def _cycle_head(page: Page, round_: int) -> None:
    """The next head, round and round (every change is a change)."""
    _click_radio(page, "Head", "head", (_view(page)["head"] + 1) % _radios(page, "Head").count())


def _pick_query(page: Page, round_: int) -> None:
    """Alternate the worked example's query token between the 1st and the 2nd."""
    view = _view(page)
    value = 1 if view["query"] == 0 else 0
    select = _step_view(page).locator("select.avi-query")
    select.scroll_into_view_if_needed()
    _arm(page, VIEW_MARKS, _target({**view, "query": value}))
    select.select_option(str(value))


def _toggle_token(page: Page, round_: int) -> None:
    """Choose the second token above the grid, then let it go again: the strip and the grid redraw."""
    chip = _step_view(page).locator('section[data-part="grid"] .avi-chip[data-token="1"]')
    chip.scroll_into_view_if_needed()
    _arm(page, PICKED_MARKS, "" if chip.get_attribute("aria-pressed") == "true" else "queries:1")
    chip.click()


def _unloaded_layer(page: Page) -> int | None:
    """The first layer whose step arrays the browser does not hold (a big run sends them one at a time)."""
    script = f"() => [...document.querySelector('{STEP_VIEW}').parentElement.__stepView.trace.layers.keys()]"
    loaded = set(page.evaluate(script))
    return next((layer for layer in range(_radios(page, "Layer").count()) if layer not in loaded), None)


def _pick_unloaded_layer(page: Page, round_: int) -> None:
    """Pick a layer the browser does not hold yet: the server sends it (one fragment rerun)."""
    layer = _unloaded_layer(page)
    if layer is None:
        raise AppError("every layer is loaded already (the scenario's prepare reloads the page)")
    _click_radio(page, "Layer", "layer", layer)


# --- inputs that go through the server -----------------------------------------------------------

SENTENCES = [
    f"the {animal} {verb} on the {thing}"
    for animal in ("cat", "dog", "bird", "fox")
    for verb in ("sat", "slept", "waited")
    for thing in ("mat", "rug")
]


def _type_sentence(marks: dict[str, str]) -> Callable[[Page, int], None]:
    """A sentence not typed before in this scenario (the warm-up rounds take the last two)."""

    def interact(page: Page, round_: int) -> None:
        box = page.get_by_label("Sentence", exact=True)
        box.fill(SENTENCES[round_ % len(SENTENCES)])
        _arm(page, marks)
        box.press("Enter")

    return interact


def _slider_step(label: str, *, alternate: bool) -> Callable[[Page, int], None]:
    def interact(page: Page, round_: int) -> None:
        slider = page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')
        slider.focus()
        _arm(page, RUN_MARKS)
        slider.press("ArrowLeft" if alternate and round_ % 2 else "ArrowRight")

    return interact


def _reference_pick(label: str) -> Callable[[Page, int], None]:
    """The reference's Streamlit radios: alternate between the 2nd and the 1st option."""

    def interact(page: Page, round_: int) -> None:
        group = page.get_by_role("radiogroup", name=label, exact=True)
        option = group.get_by_test_id("stRadioOption").get_by_text("2" if round_ % 2 == 0 else "1", exact=True)
        option.scroll_into_view_if_needed()
        _arm(page, PAGE_MARKS)
        option.click()

    return interact


# --- the scenarios -------------------------------------------------------------------------------


class Bench:
    """One tab of the browser on one served script: loads pages and plays rounds in it."""

    def __init__(self, page: Page, traffic: Traffic, timeout_s: float) -> None:
        self.page = page
        self.traffic = traffic
        self.timeout_s = timeout_s

    def open(self, params: dict[str, object], *, step_view: bool) -> None:
        self.page.goto(_url(params))
        # The app draws every chart of its default page in the step view; the reference draws one.
        self.settle(charts=0 if step_view else 1, step_view=step_view)

    def settle(self, *, charts: int, step_view: bool) -> None:
        """Wait until the page is at rest: its runs ended, `charts` Streamlit charts drawn, the
        step view's every chart drawn (in the app), and no message on the websocket for a while."""
        page, timeout_ms = self.page, 2 * self.timeout_s * 1000
        wait_for_app(page, charts=charts, timeout=timeout_ms)
        if step_view:
            page.wait_for_function(STEP_VIEW_SETTLED_JS, timeout=timeout_ms)
        error = page.locator('[data-testid="stException"]')
        if error.count():
            raise AppException(" ".join(error.first.inner_text().split())[:200])
        if step_view and _step_view(page).get_attribute("data-ready") == "error":
            raise AppError(f"the step view says error: {_step_view(page).inner_text()[:200]}")
        deadline = time.monotonic() + 2 * self.timeout_s
        while not self.traffic.at_rest():
            if time.monotonic() > deadline:
                raise AppError(f"the page never came to rest ({self.traffic.__dict__})")
            page.wait_for_timeout(50)

    def round(self, scenario: Scenario, round_: int, *, timed: bool = True) -> Round | None:
        """One input and, timed, its marks as the page measured them; then back to rest."""
        page, step_view = self.page, scenario.kind != "page"
        if scenario.prepare:
            scenario.prepare(page, round_)
        requested, finished, start = self.traffic.requested, self.traffic.ended, time.monotonic()
        scenario.interact(page, round_)
        result = self._marks(scenario) if timed or scenario.kind == "view" else None
        if scenario.kind == "view":
            # the view reaches the server REPORT_DELAY_MS after the click, in a rerun of the step
            # view's fragment that should draw nothing
            page.evaluate("window.__benchWatch()")
            page.wait_for_timeout(max(0.0, REPORT_DELAY_MS + 100 - (time.monotonic() - start) * 1000))
        self._wait_for_run(requested, finished)
        self.settle(charts=0, step_view=step_view)
        if scenario.kind == "view" and page.evaluate("window.__benchMutations"):
            mutations = page.evaluate("window.__benchMutations")
            print(f"  (the rerun that reported the view changed the step view: {mutations} mutations)", file=sys.stderr)
        return result

    def _wait_for_run(self, requested: int, finished: int) -> None:
        """Every input here starts a run (a view change: the one that reports it)."""
        deadline = time.monotonic() + self.timeout_s
        while not (self.traffic.requested > requested and self.traffic.ended > finished):
            if time.monotonic() > deadline:
                print(f"  (no run asked for and ended within {self.timeout_s:.0f} s)", file=sys.stderr)
                return
            self.page.wait_for_timeout(50)

    def _marks(self, scenario: Scenario) -> Round:
        page, timeout_ms = self.page, self.timeout_s * 1000
        try:
            page.wait_for_function("() => window.__benchFinished()", polling=50, timeout=timeout_ms)
        except PlaywrightError as error:
            state = page.evaluate(STATE_JS) | {"runs asked": self.traffic.requested, "ended": self.traffic.ended}
            if state["input"] is None:
                raise AppError("the input event never reached the page") from error
            raise AppError(f"no end within {self.timeout_s:.0f} s; the page: {state}") from error
        bench = page.evaluate("(({times, error, runEnded}) => ({times, error, runEnded}))(window.__bench)")
        if bench["error"]:
            raise AppError(bench["error"].strip().splitlines()[0])
        run_ended = bench["runEnded"] if scenario.kind != "view" or scenario.server else None
        return Round(bench["times"]["complete"], bench["times"].get("ready"), run_ended)

    def scenario(self, scenario: Scenario, rounds: int) -> list[Round]:
        page = self.page
        self.open(scenario.params, step_view=scenario.kind != "page")
        # Warm-up, untimed (rounds -2 and -1, so alternating inputs come back to where they
        # started): fill the app's caches and learn which Streamlit charts a server round redraws.
        page.evaluate("window.__benchMustChange = []")
        must_change: list[int] = []
        for warm in (-2, -1):
            before = page.evaluate("window.__benchSignatures()")
            self.round(scenario, warm, timed=False)
            page.wait_for_timeout(1000)  # every chart drawn before comparing
            now = page.evaluate("window.__benchSignatures()")
            if len(now) != len(before):
                raise AppError(f"the input changed the number of Streamlit charts ({len(before)} -> {len(now)})")
            must_change = [i for i, (a, b) in enumerate(zip(before, now, strict=True)) if a != b]
        if scenario.kind == "page" and not must_change:
            raise AppError("the interaction changed no chart; nothing to time")
        page.evaluate("(c) => { window.__benchMustChange = c; }", must_change if scenario.kind != "view" else [])
        return [self.round(scenario, round_) for round_ in range(rounds)]

    def memory(self, changes: int) -> tuple[dict[int, float], list[float]]:
        """The tab's JS heap (MB, after a forced garbage collection) after 0, 10 and `changes`
        head changes at the defaults, each drawn and reported to the server before the next."""
        scenario = Scenario(MEMORY, "", DEFAULT, _cycle_head, "view")
        self.open(DEFAULT, step_view=True)
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("Performance.enable")

        def heap() -> float:
            for _ in range(2):
                cdp.send("HeapProfiler.collectGarbage")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            return metrics["JSHeapUsedSize"] / 2**20

        sizes, times = {0: heap()}, []
        for change in range(1, changes + 1):
            times.append(self.round(scenario, change).total)
            if change in (10, changes):
                sizes[change] = heap()
        cdp.detach()
        return sizes, times


def _fresh_seed(params: dict[str, object]) -> Callable[[Page, int], None]:
    """Reload with a seed never used before, so the next d_model is a model no cache holds."""

    def prepare(page: Page, round_: int) -> None:
        BENCH_OF[page].open({**params, "seed": 1000 + round_}, step_view=True)

    return prepare


def _reload_when_all_loaded(params: dict[str, object]) -> Callable[[Page, int], None]:
    def prepare(page: Page, round_: int) -> None:
        if _unloaded_layer(page) is None:
            BENCH_OF[page].open(params, step_view=True)

    return prepare


BENCH_OF: dict[Page, Bench] = {}  # a scenario's prepare reloads the page through its Bench

BIG_TEXT = (  # 64 tokens
    "attention lets every token look at every other token and decide how much of each one it needs "
    "the queries ask the keys answer and the values carry what is passed on scaled by the square root "
    "of the key size so that the softmax stays soft while the heads each learn their own pattern across "
    "the sentence from the first word to the"
)

DEFAULT = {"text": "我爱你", "d_model": 64, "heads": 4, "layers": 2}
BIG = {"text": BIG_TEXT, "d_model": 768, "heads": 12, "layers": 12}
PICK = Target(ms=100, ratio=0.35)
NEW_RUN = Target(ratio=1.5)
SCENARIOS = [
    Scenario(
        name="head",
        description="head change, defaults (3 tokens, d64, 4 heads, 2 layers)",
        params=DEFAULT,
        interact=_pick("head", "Head"),
        kind="view",
        target=PICK,
    ),
    Scenario(
        name="layer",
        description="layer change, defaults",
        params=DEFAULT,
        interact=_pick("layer", "Layer"),
        kind="view",
        target=PICK,
        reference="layer",
    ),
    Scenario(
        name="query",
        description="query change (worked example), defaults",
        params=DEFAULT,
        interact=_pick_query,
        kind="view",
        target=PICK,
    ),
    Scenario(
        name="pick-token",
        description="a token chosen above the grid (strip and grid redrawn), defaults",
        params=DEFAULT,
        interact=_toggle_token,
        kind="view",
        target=PICK,
    ),
    Scenario(
        name="present-head",
        description="head change, presentation mode (one step: softmax weights)",
        params={**DEFAULT, "present": 1, "step": 4},
        interact=_pick("head", "Head"),
        kind="view",
        target=PICK,
    ),
    Scenario(
        name="sentence",
        description="new sentence (server)",
        params=DEFAULT,
        interact=_type_sentence(RUN_MARKS),
        kind="run",
        target=NEW_RUN,
        reference="sentence",
    ),
    Scenario(
        name="d_model-cached",
        description="d_model 64<->96, model and trace cached (server)",
        params=DEFAULT,
        interact=_slider_step("d_model", alternate=True),
        kind="run",
        target=NEW_RUN,
        reference="sentence",
    ),
    Scenario(
        name="d_model-new",
        description="d_model 64->96 after a reload with a fresh seed: a model nobody built (server)",
        params=DEFAULT,
        interact=_slider_step("d_model", alternate=False),
        kind="run",
        target=NEW_RUN,
        reference="sentence",
        prepare=_fresh_seed(DEFAULT),
    ),
    Scenario(
        name="big-head",
        description="head change, 64 tokens, d768, 12 layers x 12 heads",
        params=BIG,
        interact=_pick("head", "Head"),
        kind="view",
        target=Target(ms=150),
    ),
    Scenario(
        name="big-pick-token",
        description="a token chosen above the grid there (12 x 12 thumbnails of 64 tokens)",
        params=BIG,
        interact=_toggle_token,
        kind="view",
        target=Target(ms=150),
    ),
    Scenario(
        name="big-layer",
        description="layer change there, to a layer the browser lacks (server)",
        params=BIG,
        interact=_pick_unloaded_layer,
        kind="view",
        reference="layer",
        prepare=_reload_when_all_loaded(BIG),
        server=True,
    ),
]
MEMORY = "memory"
NAMES = [s.name for s in SCENARIOS] + [MEMORY]
# bench/reference_app.py: a head or layer pick redraws one chart in a fragment, a new sentence
# reruns the whole page and redraws two.
REFERENCES = [
    Scenario("head", "reference: head pick (fragment rerun, one chart)", {}, _reference_pick("Head"), "page"),
    Scenario("layer", "reference: layer pick", {}, _reference_pick("Layer"), "page"),
    Scenario("sentence", "reference: new sentence (full rerun, two charts)", {}, _type_sentence(PAGE_MARKS), "page"),
]


def _check_big_text() -> None:
    from encoder import tokenize

    n = len(tokenize(BIG_TEXT))
    if n != 64:
        raise RuntimeError(f"the big scenario's sentence has {n} tokens, not 64")


Outcome = list[Round] | str  # the rounds, or why the scenario failed


def time_scenarios(
    browser: Browser, script: Path, scenarios: list[Scenario], rounds: int, timeout_s: float, memory: int
) -> tuple[dict[str, Outcome], tuple[dict[int, float], list[float]] | str | None]:
    """Serve `script` and time each scenario in a tab of `browser`: its rounds, or why it failed;
    then, with `memory`, the heap after so many head changes."""
    results: dict[str, Outcome] = {}
    heap: tuple[dict[int, float], list[float]] | str | None = None
    errors = (AppError, AppException, PlaywrightError)
    with streamlit_server(script) as url:
        context = app_context(browser, url)
        context.add_init_script(BENCH_JS)
        page = context.new_page()
        traffic = Traffic()
        page.on("websocket", traffic.watch)
        problems: list[str] = []  # the page's own errors, printed with the scenario they came in
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        bench = BENCH_OF[page] = Bench(page, traffic, timeout_s)
        for scenario in scenarios:
            try:
                results[scenario.name] = bench.scenario(scenario, rounds)
            except errors as error:
                results[scenario.name] = f"failed: {' '.join(str(error).split())[:400]}"
                print(f"{script.name} {scenario.name}: {results[scenario.name]}", file=sys.stderr)
            else:
                rounds_ = results[scenario.name]
                times = [f"{r.total:.0f}" + ("" if r.ready is None else f" ({r.ready:.0f})") for r in rounds_]
                print(f"{script.name} {scenario.name}: {' '.join(times)} ms", file=sys.stderr)
            for problem in dict.fromkeys(problems):
                print(f"  {problem[:300]}", file=sys.stderr)
            problems.clear()
        if memory:
            try:
                heap = bench.memory(memory)
                print(f"{script.name} memory: {heap[0]}", file=sys.stderr)
            except errors as error:
                heap = f"failed: {' '.join(str(error).split())[:400]}"
                print(f"{script.name} memory: {heap}", file=sys.stderr)
        del BENCH_OF[page]
        context.close()
    return results, heap


def _fmt(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.0f}" if known else ""


def print_latency(
    rounds: int,
    chosen: list[Scenario],
    results: dict[str, Outcome],
    references: list[Scenario],
    reference: dict[str, Outcome],
) -> None:
    print(f"\nHeadless Chromium, {rounds} rounds each, ms from the input event to the first frame painted after")
    print("every chart was drawn (`ready`: the step view's charts on screen and its worked example).")
    print("`/ ref`: the median over bench/reference_app.py's median for the same kind of input, same run.\n")
    print("| scenario | median | min | max | ready (median) | run ended (median) | target | reference | / ref | met |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |")
    for scenario in chosen:
        outcome, base = results[scenario.name], reference.get(scenario.reference)
        base_median = statistics.median(r.total for r in base) if isinstance(base, list) else None
        base_text = f"{base_median:.0f} ({scenario.reference})" if base_median else "?"
        target = scenario.target.text()
        if isinstance(outcome, str):
            print(f"| {scenario.description} | {outcome} | | | | | {target} | {base_text} | | not met |")
            continue
        totals = [r.total for r in outcome]
        median = statistics.median(totals)
        ratio = f"{median / base_median:.2f}" if base_median else "?"
        met = scenario.target.met(median, base_median)
        print(
            f"| {scenario.description} | {median:.0f} | {min(totals):.0f} | {max(totals):.0f} "
            f"| {_fmt([r.ready for r in outcome])} | {_fmt([r.run_ended for r in outcome])} | {target} | {base_text} "
            f"| {ratio} | {met} |"
        )
    for scenario in references:
        outcome = reference[scenario.name]
        if isinstance(outcome, str):
            print(f"| {scenario.description} | {outcome} | | | | | | | | |")
            continue
        totals = [r.total for r in outcome]
        print(
            f"| {scenario.description} | {statistics.median(totals):.0f} | {min(totals):.0f} "
            f"| {max(totals):.0f} | | {_fmt([r.run_ended for r in outcome])} | | | | |"
        )


def print_memory(memory: int, heap: tuple[dict[int, float], list[float]] | str | None) -> None:
    print(f"\nBrowser memory: JS heap after a forced GC, in MB, over {memory} head changes at the defaults.\n")
    print(f"| after 0 | after 10 | after {memory} | {memory} / 10 | target | met | head change (median of {memory}) |")
    print("| ---: | ---: | ---: | ---: | --- | --- | ---: |")
    if isinstance(heap, tuple):
        sizes, times = heap
        ratio = sizes[memory] / sizes[10]
        met = "met" if abs(ratio - 1) <= 0.10 else "not met"
        print(
            f"| {sizes[0]:.1f} | {sizes[10]:.1f} | {sizes[memory]:.1f} | {ratio:.3f} | within 10% | {met} "
            f"| {statistics.median(times):.0f} ms |"
        )
    else:
        print(f"| {heap} | | | | within 10% | not met | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated scenario names: " + ", ".join(NAMES))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one round")
    parser.add_argument("--memory-changes", type=int, default=100, help="head changes in the memory scenario")
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - set(NAMES)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))} (choose from {', '.join(NAMES)})")
    if args.memory_changes <= 10:
        parser.error("--memory-changes must be over 10 (the heap is compared with after 10 changes)")
    chosen = [s for s in SCENARIOS if not only or s.name in only]
    memory = args.memory_changes if not only or MEMORY in only else 0
    references = [r for r in REFERENCES if any(s.reference == r.name for s in chosen)]
    if any(s.params is BIG for s in chosen):
        _check_big_text()

    with sync_playwright() as playwright:
        executable = find_chromium(playwright)
        if executable is None:
            sys.exit(f"no Chromium: {INSTALL_HINT}")
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        results, heap = time_scenarios(browser, ROOT / "app.py", chosen, args.rounds, args.timeout, memory)
        reference: dict[str, Outcome] = {}
        if references:
            script = ROOT / "bench" / "reference_app.py"
            reference, _ = time_scenarios(browser, script, references, args.rounds, args.timeout, 0)
        browser.close()
    if chosen:
        print_latency(args.rounds, chosen, results, references, reference)
    if memory:
        print_memory(memory, heap)


if __name__ == "__main__":
    main()
