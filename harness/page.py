"""Wait for the app's page in Chromium and read it as a person does.

A page load is drawn when `stApp` reports the script as `notRunning` and the charts have their
SVG; after an interaction, `rerun` first waits for the server to report, on the page's websocket
(`harness.runs`), that a run has ended.

The step view is one element drawn in the browser (ui/step_view_browser/, `STEP_VIEW`): it says what
it shows in its `data-ready` and `data-complete` attributes ("layer,head,query,step", 0-based),
and a change of layer, head, query or step there starts no run at once, only the fragment run
that reports the view ~400 ms later. `no_rerun` and `wait_for_report` check exactly that on the
websocket; `figure` reads a chart's Plotly figure in the page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from harness.runs import RunMark, ScriptRuns, runs_of, watch_runs
from viz.step_view import STEPS

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = '[data-testid="stPlotlyChart"]'
CHART_SVG = '[data-testid="stPlotlyChart"] svg.main-svg'
EXCEPTION = '[data-testid="stException"]'
# The numbers printed in the cells of a chart, Plotly's or the step view's.
CELL_TEXTS = "g.text-group text, .heatmaplayer text, text.avi-cell"
ALERT = '[data-testid="stAlert"]'
STEP_VIEW = '[data-testid="step-view"]'
# The step view's charts (`[data-chart=NAME]`, each drawn by ui/step_view_browser/heatmap.js): the
# five steps, then the heads.
STEP_CHART_NAMES = STEPS[:5]  # the five steps of attention, each a chart
STEP_VIEW_CHART_NAMES = (*STEP_CHART_NAMES, "heads")
STEP_NAMES = STEPS  # `section[data-step]`, in order (presentation steps)


class AppException(AssertionError):
    """The page shows a Streamlit exception box where the app should have drawn."""


def wait_for_app(
    page: Page, *, charts: int = 0, timeout: float = 60_000, settle_ms: int = 150, step_view: bool = False
) -> None:
    """Wait until the script run that a navigation started has finished and drawn (after a click or
    a key, use `rerun`, which knows when the run the input started has ended).

    `settle_ms` covers the gap between a navigation and the run it starts, during which the
    app still says `notRunning` (Streamlit's own e2e helper waits the same way). With `charts`,
    also wait until at least that many Plotly charts have drawn their SVG: on a page load they
    appear seconds after the run ends, once the browser has parsed Plotly's bundle. With
    `step_view`, also wait until the step view has drawn every chart of its view
    (`wait_for_step_view`). An exception on the page ends the wait at once with `AppException`,
    carrying its text.
    """
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout)
    if charts:
        page.wait_for_function(
            """([chart, error, n]) => document.querySelector(error)
                 || [...document.querySelectorAll(chart)].filter((c) => c.querySelector('svg.main-svg')).length >= n""",
            arg=[CHART, EXCEPTION, charts],
            timeout=timeout,
        )
        page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout)
    _raise_exception(page)
    if step_view:
        wait_for_step_view(page, complete=True, timeout=timeout)


def _raise_exception(page: Page) -> None:
    error = page.locator(EXCEPTION)
    if error.count():
        text = " ".join(error.first.inner_text().split())[:300]
        raise AppException(f"the app shows an exception: {text} (the server log has the traceback)")


def view_text(layer: int, head: int, query: int = 0, step: int = 0) -> str:
    """The step view's `data-ready` for a view given 1-based, as the page and the link count."""
    return f"{layer - 1},{head - 1},{query - 1},{step - 1}"


def wait_for_step_view(page: Page, view: str | None = None, *, complete: bool = False, timeout: float = 60_000) -> None:
    """Wait until the step view shows `view` (`view_text`; None: any view but "loading"), its
    charts on screen drawn (`data-ready`) or, with `complete`, every chart (`data-complete`).

    An exception on the page, or a step view that says "error", ends the wait with `AppException`.
    """
    page.wait_for_function(
        """([selector, error, want, field]) => {
             if (document.querySelector(error)) return true;
             const root = document.querySelector(selector);
             const value = root ? root.dataset[field] : undefined;
             if (value === undefined) return false;
             if (value === "error" || root.dataset.ready === "error") return true;
             return want === null ? value !== "loading" : value === want;
           }""",
        arg=[STEP_VIEW, EXCEPTION, view, "complete" if complete else "ready"],
        timeout=timeout,
    )
    _raise_exception(page)
    root = page.locator(STEP_VIEW)
    if root.get_attribute("data-ready") == "error":
        raise AppException(f"the step view could not draw: {root.inner_text()[:300]}")


@contextmanager
def rerun(page: Page, *, charts: int = 0, timeout: float = 60_000) -> Iterator[None]:
    """Wait, after the block's interaction, until a script run it started has ended and drawn.

    The page must have been opened with `open_app`, which watches its websocket. An interaction
    that starts no run fails here after `timeout`, which is what a test that expected one wants.
    """
    runs = runs_of(page)
    requested, ended = runs.requested, runs.ended
    yield
    deadline = time.monotonic() + timeout / 1000
    while runs.ended <= ended:  # Playwright delivers the websocket events while it waits
        if time.monotonic() > deadline:
            what = "no run ended" if runs.requested > requested else "the interaction asked for no run"
            raise TimeoutError(f"{what} within {timeout / 1000:.0f} s")
        page.wait_for_timeout(50)
    wait_for_app(page, charts=charts, timeout=timeout, settle_ms=0)
    # Two animation frames: React has then committed the run's elements, and widgets such as a
    # button's keyboard shortcut listen again, so the next interaction is not lost.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


@contextmanager
def no_rerun(page: Page, *, quiet_ms: int = 200, timeout: float = 10_000) -> Iterator[RunMark]:
    """The block's interaction starts no script run at once: by the page's own clock, no rerun was
    asked for within `quiet_ms` of the interaction's first input event (the step view reports its
    view only once the clicks have stopped for ~400 ms).

    First, a report of an earlier interaction still to come is let through (`_settle`). Yields
    the runs counted before the block, for `wait_for_report`.
    """
    runs = runs_of(page)
    _settle(page, runs, timeout)
    mark = RunMark(runs.requested, runs.ended)
    inputs_before = page.evaluate("window.__e2eInputs.length")
    yield mark
    # Wait until the page's clock is `quiet_ms` past the first input, then until the watcher has
    # seen every frame the page sent by then (Playwright delivers the events while it waits).
    start = page.evaluate(
        """([index, quiet]) => new Promise((done) => {
             // A press, a key or a select's change starts the interaction; a mouse that only moved
             // (a hover) starts it with its move. Not the move before a click: a report of an
             // earlier click may fire in between, and that is not this interaction's run.
             const inputs = window.__e2eInputs.slice(index);
             const acts = inputs.filter(([type]) => type !== "pointermove");
             const first = (acts.length ? acts : inputs).map(([, time]) => time)[0];
             if (first === undefined) { done(null); return; }
             setTimeout(() => done(first), Math.max(0, first + quiet - performance.now()));
           })""",
        [inputs_before, quiet_ms],
    )
    assert start is not None, "the interaction reached the page as no input event"
    sends = page.evaluate("window.__e2eSends.slice()")
    deadline = time.monotonic() + timeout / 1000
    while runs.frames < len(sends):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the watcher saw {runs.frames} frames, the page sent {len(sends)}")
        page.wait_for_timeout(10)
    early = [
        (round(sends[index] - start), fragment or "the whole page")
        for index, fragment in runs.reruns
        if index < len(sends) and start <= sends[index] < start + quiet_ms
    ]
    assert not early, f"the interaction asked for a script run within {quiet_ms} ms (ms after it, run): {early}"


# Longer than the step view's delay before it reports a view (viz.step_view.REPORT_DELAY_MS).
REPORT_SETTLED_MS = 500


def _settle(page: Page, runs: ScriptRuns, timeout: float) -> None:
    """Let a report of an earlier interaction go out and its run end, so that it cannot be taken
    for a run of the next one: wait until the last input is `REPORT_SETTLED_MS` old and every
    rerun the page asked for has ended."""
    page.evaluate(
        """(settled) => new Promise((done) => {
             const acts = window.__e2eInputs.filter(([type]) => type !== "pointermove");
             const last = acts.length ? acts[acts.length - 1][1] : -Infinity;
             setTimeout(done, Math.max(0, last + settled - performance.now()));
           })""",
        REPORT_SETTLED_MS,
    )
    deadline = time.monotonic() + timeout / 1000
    while runs.frames < page.evaluate("window.__e2eSends.length") or runs.requested_at_last_end < runs.requested:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page's runs did not end within {timeout / 1000:.0f} s")
        page.wait_for_timeout(20)


def wait_for_report(page: Page, mark: RunMark, *, timeout: float = 60_000, quiet_ms: int = 300) -> list[str]:
    """Wait until the runs asked for since `mark` (the step view's report of its view, ~400 ms after
    the last click) have ended and none more came for `quiet_ms`; return their fragment ids ("" for
    the whole page)."""
    runs = runs_of(page)
    deadline = time.monotonic() + timeout / 1000
    while True:
        if runs.requested > mark.requested and runs.requested_at_last_end == runs.requested:
            requested = runs.requested
            page.wait_for_timeout(quiet_ms)
            if runs.requested == requested:
                break
        elif time.monotonic() > deadline:
            raise TimeoutError(f"the step view's report of its view did not run within {timeout / 1000:.0f} s")
        else:
            page.wait_for_timeout(50)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout)
    _raise_exception(page)
    return runs.fragments[mark.requested :]


def shown_view(page: Page) -> str:
    """What the step view says it shows now: `data-ready`."""
    return page.locator(STEP_VIEW).get_attribute("data-ready") or ""


def chart_of(page: Page, name: str) -> Locator:
    """One of the step view's charts (`STEP_VIEW_CHART_NAMES`)."""
    return page.locator(f'{STEP_VIEW} [data-chart="{name}"]')


# The figure a step-view chart drew, as plain JSON: typed-array rows become lists, NaN becomes null.
_FIGURE_JS = """(div) => {
  const drawn = div.heatmapChart && div.heatmapChart.figure;
  if (!drawn) return null;
  const plain = (value) => {
    if (ArrayBuffer.isView(value)) return Array.from(value, (x) => (Number.isFinite(x) ? x : null));
    if (Array.isArray(value)) return value.map(plain);
    if (typeof value === "number") return Number.isFinite(value) ? value : null;
    if (value && typeof value === "object") {
      const out = {};
      for (const [key, inner] of Object.entries(value)) if (!key.startsWith("_")) out[key] = plain(inner);
      return out;
    }
    return value;
  };
  return { data: drawn.data.map(plain), layout: plain(drawn.layout), where: div.dataset.where || null };
}"""


def figure(page: Page, name: str) -> dict[str, Any] | None:
    """The figure the step view's chart `name` holds (`data`, `layout`, and `where`: "L1H2"), or
    None before it is drawn."""
    return chart_of(page, name).evaluate(_FIGURE_JS)


def title(page: Page, name: str) -> str | None:
    """The title of the step view's chart `name` as its figure says it (None before it is drawn)."""
    return chart_of(page, name).evaluate("(div) => div.heatmapChart?.figure?.layout?.title?.text ?? null")


def cell_position(page: Page, name: str, row: int, column: int) -> tuple[float, float]:
    """Where on the page cell (row, column) of the step view's heatmap `name` is drawn, scrolled
    into view first: the point a mouse moves to, from the chart's own axes."""
    chart = chart_of(page, name)
    chart.scroll_into_view_if_needed()
    page.wait_for_function("(div) => div.heatmapChart?.cellCentre(0, 0)", arg=chart.element_handle())
    x, y = chart.evaluate("(div, [row, column]) => div.heatmapChart.cellCentre(row, column)", [row, column])
    return x, y


def open_app(
    page: Page, params: Mapping[str, object] | None = None, *, charts: int = 0, step_view: bool = False
) -> None:
    """Open the app at a given state (every setting lives in the query string) and wait until drawn:
    `charts` Plotly charts of Streamlit's, and with `step_view` every chart of the step view."""
    query = urlencode({key: str(value) for key, value in (params or {}).items()}, quote_via=quote)
    watch_runs(page)
    page.goto(f"/?{query}" if query else "/")
    wait_for_app(page, charts=charts, step_view=step_view)


def tick_texts(chart: Locator) -> dict[str, list[str]]:
    """The x and y tick labels a chart drew (Plotly's or the step view's), in order: what a reader
    sees on the axes."""
    return {axis: chart.locator(tick_labels(axis)).all_text_contents() for axis in ("x", "y")}


def tick_labels(axis: str) -> str:
    """The selector of a chart's `axis` ("x" or "y") tick labels, Plotly's or the step view's."""
    return f".{axis}tick text, text.avi-{axis}tick"
