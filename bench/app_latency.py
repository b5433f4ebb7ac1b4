"""How long the app takes, in real Chromium, from a user's input to the last chart drawn.

Starts `streamlit run app.py` on a free loopback port (as the e2e tests do), opens it in
headless Chromium and, for each scenario, repeats one interaction and reports the median of
the rounds against its target and against a reference timed in the same run:

    head or layer change (default settings)              < 150 ms
    sentence change, d_model change                       < 300 ms
    head change, 64 tokens, d_model 768, 12 layers x 12 heads   < 1 s

The clock runs in the page: it starts at the input event (`pointerdown` or `keydown`,
captured before the widget sees it) and stops at the first animation frame where the app's
script state is `notRunning` and every Plotly chart on the page has drawn its SVG, with new
content (title, ticks, cell text, heatmap pixels, shapes) in each chart that the interaction
changes. Which charts those are is learnt from an untimed warm-up round of the same
interaction. Nothing here is a pass/fail test.

The reference is bench/reference_app.py, the least a Streamlit page can do for the same input
(the same widgets redrawing one small Plotly heatmap, computing nothing), served and timed in
the same browser right after the app. `/ reference` is the app's median over the reference's
for the same kind of input (a head or layer pick, or a full rerun): what the app's own work
costs on top of Streamlit's and Plotly's, a ratio that travels between machines where the
milliseconds do not.

Two more columns split each round: when the browser saw the script run start (the rerun
request reached the server and it answered) and end (the last message of the run was handled;
the browser renders deltas as they arrive, so this includes some drawing too).

    python bench/app_latency.py               # every scenario, 10 rounds each
    python bench/app_latency.py --rounds 5 --only head,layer
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_harness import (  # noqa: E402
    CHROMIUM_ARGS,
    INSTALL_HINT,
    AppException,
    app_context,
    find_chromium,
    streamlit_server,
    wait_for_app,
)
from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402

# A chart's visible content: every text it drew, its heatmaps' pixels and its shapes (highlights).
SIGNATURE_JS = """
window.__benchSignature = (chart) => {
  const svgs = chart.querySelectorAll('svg.main-svg');
  if (!svgs.length) return null;
  let s = '';
  for (const svg of svgs) s += svg.textContent + '|';
  for (const image of chart.querySelectorAll('image')) s += (image.getAttribute('href') || '') + '|';
  for (const shape of chart.querySelectorAll('.shapelayer path')) s += (shape.getAttribute('d') || '') + '|';
  return s;
};
window.__benchSignatures = () =>
  [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map(window.__benchSignature);
// When the script run starts and ends, to split a round into server and browser time.
window.__benchStates = [];
const watchApp = () => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) { setTimeout(watchApp, 20); return; }
  new MutationObserver(() => window.__benchStates.push(
    [app.getAttribute('data-test-script-state'), performance.now()])).observe(app, {attributes: true});
};
watchApp();
"""

# Remember what every chart shows now, and start the clock at the next input event.
ARM_JS = """
() => {
  if (!window.__benchListening) {
    const start = () => { if (window.__bench && window.__bench.t0 === null) window.__bench.t0 = performance.now(); };
    window.addEventListener('pointerdown', start, true);
    window.addEventListener('keydown', start, true);
    window.__benchListening = true;
  }
  window.__bench = {t0: null, before: window.__benchSignatures()};
  window.__benchStates = [];
}
"""

# Milliseconds since the input once the run is over and the charts that must change have redrawn.
DONE_JS = """
(mustChange) => {
  const bench = window.__bench;
  if (bench.t0 === null) return false;
  const error = document.querySelector('[data-testid="stException"]');
  if (error) return {error: error.innerText};
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const now = window.__benchSignatures();
  if (now.length !== bench.before.length || now.some((s) => s === null)) return false;
  if (mustChange.some((i) => now[i] === bench.before[i])) return false;
  const at = (state) => window.__benchStates.filter(([s, t]) => s === state && t >= bench.t0).map(([, t]) => t);
  const started = at('running'), ended = at('notRunning');
  return {
    total: performance.now() - bench.t0,
    started: started.length ? started[0] - bench.t0 : null,
    ended: ended.length ? ended[ended.length - 1] - bench.t0 : null,
  };
}
"""


@dataclass
class Scenario:
    name: str
    target_ms: float
    params: dict[str, object]
    interact: Callable[[Page, int], None]  # round number -> one user input (the timed part starts in it)
    prepare: Callable[[Page, int], None] | None = None  # untimed, before each round
    reference: str = "head"  # the reference scenario for the same kind of input


def _url(params: dict[str, object]) -> str:
    return "/?" + urlencode({k: str(v) for k, v in params.items()}, quote_via=quote)


def _arm(page: Page) -> None:
    page.evaluate(ARM_JS)


def _pick(label: str) -> Callable[[Page, int], None]:
    """Alternate a layer or head radio between its 2nd and 1st option."""

    def interact(page: Page, round_: int) -> None:
        group = page.get_by_role("radiogroup", name=label, exact=True)
        option = group.get_by_test_id("stRadioOption").get_by_text("2" if round_ % 2 == 0 else "1", exact=True)
        option.scroll_into_view_if_needed()
        _arm(page)
        option.click()

    return interact


SENTENCES = [
    f"the {animal} {verb} on the {thing}"
    for animal in ("cat", "dog", "bird", "fox")
    for verb in ("sat", "slept", "waited")
    for thing in ("mat", "rug")
]


def _type_sentence(page: Page, round_: int) -> None:
    box = page.get_by_label("Sentence", exact=True)
    box.fill(SENTENCES[round_ % len(SENTENCES)])
    _arm(page)
    box.press("Enter")


def _slider_step(label: str, *, alternate: bool) -> Callable[[Page, int], None]:
    def interact(page: Page, round_: int) -> None:
        slider = page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')
        slider.focus()
        _arm(page)
        slider.press("ArrowLeft" if alternate and round_ % 2 else "ArrowRight")

    return interact


def _fresh_seed(params: dict[str, object]) -> Callable[[Page, int], None]:
    """Reload with a seed never used before, so the next d_model is a model no cache holds."""

    def prepare(page: Page, round_: int) -> None:
        page.goto(_url({**params, "seed": 1000 + round_}))
        _settle(page)

    return prepare


BIG_TEXT = (  # 64 tokens
    "attention lets every token look at every other token and decide how much of each one it needs "
    "the queries ask the keys answer and the values carry what is passed on scaled by the square root "
    "of the key size so that the softmax stays soft while the heads each learn their own pattern across "
    "the sentence from the first word to the"
)

DEFAULT = {"text": "我爱你", "d_model": 64, "heads": 4, "layers": 2}
SCENARIOS = [
    Scenario("head", 150, DEFAULT, _pick("Head")),
    Scenario("layer", 150, DEFAULT, _pick("Layer"), reference="layer"),
    Scenario("sentence", 300, DEFAULT, _type_sentence, reference="sentence"),
    Scenario("d_model-cached", 300, DEFAULT, _slider_step("d_model", alternate=True), reference="sentence"),
    Scenario("d_model-new", 300, DEFAULT, _slider_step("d_model", alternate=False), _fresh_seed(DEFAULT), "sentence"),
    Scenario("big-head", 1000, {"text": BIG_TEXT, "d_model": 768, "heads": 12, "layers": 12}, _pick("Head")),
    Scenario("present-head", 150, {**DEFAULT, "present": 1, "step": 4}, _pick("Head")),
]
# bench/reference_app.py: a head or layer pick redraws one chart in a fragment, a new sentence
# reruns the whole page and redraws two.
REFERENCES = [
    Scenario("head", 0, {}, _pick("Head")),
    Scenario("layer", 0, {}, _pick("Layer")),
    Scenario("sentence", 0, {}, _type_sentence),
]
DESCRIPTIONS = {
    "head": "head change, defaults (3 tokens, d64, 4 heads, 2 layers)",
    "layer": "layer change, defaults",
    "sentence": "sentence change (new sentence each round)",
    "d_model-cached": "d_model change 64<->96 (model and trace cached)",
    "d_model-new": "d_model change 64->96 (new model each round)",
    "big-head": "head change, 64 tokens, d768, 12 layers x 12 heads",
    "present-head": "head change in presentation mode (one step: the softmax weights)",
}


def _check_big_text() -> None:
    from encoder import tokenize

    n = len(tokenize(BIG_TEXT))
    if n != 64:
        raise RuntimeError(f"the big scenario's sentence has {n} tokens, not 64")


def _changed(page: Page, before: list[str | None]) -> list[int]:
    """Which charts the interaction redrew; all of them when it changed how many there are."""
    now = page.evaluate("window.__benchSignatures()")
    if len(now) != len(before):
        return list(range(len(now)))
    return [i for i, (a, b) in enumerate(zip(before, now, strict=True)) if a != b]


class AppError(RuntimeError):
    """The app showed an exception instead of charts: nothing to time."""


def _settle(page: Page, timeout_ms: float = 120_000) -> None:
    """Wait for the run an input started to finish and draw; an exception on the page raises at once."""
    wait_for_app(page, charts=1, timeout=timeout_ms)


@dataclass
class Round:
    total: float  # input to last chart drawn
    started: float | None  # input to the script run starting (the rerun request reached the server)
    ended: float | None  # input to the run ending (the last delta reached the browser)


def run_scenario(page: Page, scenario: Scenario, rounds: int, timeout_ms: float) -> list[Round]:
    page.goto(_url(scenario.params))
    _settle(page)

    # Warm-up, untimed: learn which charts this interaction redraws (and fill the caches the app keeps).
    must_change: list[int] = []
    for warm in range(2):
        if scenario.prepare:
            scenario.prepare(page, -1 - warm)
        before = page.evaluate("window.__benchSignatures()")
        scenario.interact(page, warm)
        _settle(page)
        page.wait_for_timeout(1500)  # let every chart settle before comparing
        must_change = _changed(page, before)
    if not must_change:
        raise AppError("the interaction changed no chart; nothing to time")

    results = []
    for round_ in range(rounds):
        if scenario.prepare:
            scenario.prepare(page, round_)
        scenario.interact(page, round_)
        result = page.wait_for_function(DONE_JS, arg=must_change, polling="raf", timeout=timeout_ms).json_value()
        if "error" in result:
            raise AppError(result["error"].strip().splitlines()[0])
        results.append(Round(result["total"], result["started"], result["ended"]))
        _settle(page)  # the page is idle before the next round arms
    return results


def _median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.0f}" if known else "?"


def time_scenarios(
    browser: Browser, script: Path, scenarios: list[Scenario], rounds: int, timeout_s: float
) -> dict[str, list[Round] | str]:
    """Serve `script` and time each scenario in a new tab of `browser`: its rounds, or why it failed."""
    results: dict[str, list[Round] | str] = {}
    with streamlit_server(script) as url:
        context = app_context(browser, url)
        context.add_init_script(SIGNATURE_JS)
        page = context.new_page()
        for scenario in scenarios:
            try:
                results[scenario.name] = run_scenario(page, scenario, rounds, timeout_s * 1000)
            except (AppError, AppException, PlaywrightError) as error:
                results[scenario.name] = f"failed: {str(error).splitlines()[0][:100]}"
                print(f"{script.name} {scenario.name}: {results[scenario.name]}", file=sys.stderr)
                continue
            times = " ".join(f"{r.total:.0f}" for r in results[scenario.name])
            print(f"{script.name} {scenario.name}: {times} ms", file=sys.stderr)
        context.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated scenario names: " + ", ".join(DESCRIPTIONS))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one round")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    references = [r for r in REFERENCES if any(s.reference == r.name for s in chosen)]
    _check_big_text()

    with sync_playwright() as playwright:
        executable = find_chromium(playwright)
        if executable is None:
            sys.exit(f"no Chromium: {INSTALL_HINT}")
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        results = time_scenarios(browser, ROOT / "app.py", chosen, args.rounds, args.timeout)
        reference = time_scenarios(browser, ROOT / "bench" / "reference_app.py", references, args.rounds, args.timeout)
        browser.close()

    print(f"\nFrom input to last chart drawn, headless Chromium, median of {args.rounds} rounds, in ms.")
    print("`/ reference`: over the median of bench/reference_app.py for the same kind of input, same run.")
    print("`run starts` / `run ends`: when the app's script run started and ended, from the same input.\n")
    print(
        "| scenario | median | min | max | target | median / target | reference | / reference | run starts | run ends |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario in chosen:
        rounds, label = results[scenario.name], DESCRIPTIONS[scenario.name]
        base = reference.get(scenario.reference)
        base_median = statistics.median(r.total for r in base) if isinstance(base, list) else None
        base_text = f"{base_median:.0f} ({scenario.reference})" if base_median else "?"
        if isinstance(rounds, str):
            print(f"| {label} | {rounds} | | | < {scenario.target_ms:.0f} | | {base_text} | | | |")
            continue
        totals = [r.total for r in rounds]
        median = statistics.median(totals)
        ratio = f"{median / base_median:.1f}" if base_median else "?"
        print(
            f"| {label} | {median:.0f} | {min(totals):.0f} | {max(totals):.0f} | < {scenario.target_ms:.0f} "
            f"| {median / scenario.target_ms:.2f} | {base_text} | {ratio} | {_median([r.started for r in rounds])} "
            f"| {_median([r.ended for r in rounds])} |"
        )


if __name__ == "__main__":
    main()
