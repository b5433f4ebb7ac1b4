"""Run the real Streamlit app and drive it from real Chromium.

Shared by the e2e fixtures (tests/e2e/conftest.py) and the latency benchmark
(bench/app_latency.py), so both start the server and judge "the page is drawn" the same way.
The server is started the way Streamlit's own e2e suite starts it. A page load is drawn when
`stApp` reports the script as `notRunning` and the charts have their SVG; after an interaction,
`rerun` first waits for the server to report, on the page's websocket, that a run has ended.

The step view is one element drawn in the browser (ui/step_view.js, `STEP_VIEW`): it says what
it shows in its `data-ready` and `data-complete` attributes ("layer,head,query,step", 0-based),
and a change of layer, head, query or step there starts no run at once, only the fragment run
that reports the view ~400 ms later. `no_rerun` and `wait_for_report` check exactly that on the
websocket; `figure` reads a chart's Plotly figure in the page.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from weakref import WeakKeyDictionary

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

if TYPE_CHECKING:  # the fixtures turn a missing Playwright into a clear skip, not an ImportError
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, WebSocket

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"

# Quiet, offline, and fit for a container where Chromium runs as root without a GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = (
    "install Debian's Chromium (as root: `bash .ci/setup --test`, or "
    "`apt-get install -y chromium fonts-noto-cjk`) or Playwright's own "
    "(`.venv/bin/python -m playwright install chromium`)"
)

APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = '[data-testid="stPlotlyChart"]'
CHART_SVG = '[data-testid="stPlotlyChart"] svg.main-svg'
EXCEPTION = '[data-testid="stException"]'
# The numbers printed in the cells of a chart, Plotly's or the step view's.
CELL_TEXTS = "g.text-group text, .heatmaplayer text, text.avi-cell"
ALERT = '[data-testid="stAlert"]'
STEP_VIEW = '[data-testid="step-view"]'
# The step view's charts (`[data-chart=NAME]`, each drawn by ui/heatmap.js): the five steps, then the heads.
STEP_CHART_NAMES = ("qkv", "scores", "scaled", "weights", "context")
STEP_VIEW_CHART_NAMES = (*STEP_CHART_NAMES, "heads")
STEP_NAMES = (*STEP_CHART_NAMES, "worked", "heads")  # `section[data-step]`, in order (presentation steps)

VIEWPORT = {"width": 1440, "height": 1000}  # about what a classroom projector shows


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group (it was started in a new session), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def streamlit_server(
    script: Path,
    *,
    cwd: Path = ROOT,
    start_timeout: float = 90.0,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Serve `script` on a free loopback port and yield its base URL; stop it on exit, even on failure.

    The server's output (tracebacks included) goes to `log_path`, or to a temporary file. `env`
    adds to the environment it runs in (REDIS_URL, say).
    """
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w+b") if log_path is not None else tempfile.TemporaryFile() as log:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "streamlit", "run", str(script),
            "--server.headless", "true",
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            deadline = time.monotonic() + start_timeout
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-3000:]
                    state = (
                        f"exited with {process.returncode}" if process.poll() is not None else "never became healthy"
                    )
                    raise RuntimeError(f"`streamlit run {script.name}` {state} within {start_timeout:.0f} s:\n{tail}")
                time.sleep(0.2)
            yield url
        finally:
            _stop(process)


def find_chromium(playwright: Playwright) -> str | None:
    """Debian's Chromium first (what CI installs), else Playwright's own build if it was downloaded."""
    for candidate in (DEBIAN_CHROMIUM, shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    bundled = playwright.chromium.executable_path
    return bundled if Path(bundled).is_file() and os.access(bundled, os.X_OK) else None


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


class ScriptRuns:
    """What one page's websocket carried: the reruns the browser asked for and the runs the server
    reported as ended (a `script_finished` ForwardMsg, read with Streamlit's own protobuf classes).

    The wire, not the DOM: `stApp`'s `data-test-script-state` can skip "running" altogether when
    the browser is busy drawing and React batches a short run's start and end into one render.
    """

    def __init__(self) -> None:
        self.requested = 0
        self.ended = 0
        self.frames = 0  # binary frames the page sent, whatever they were (heartbeats too)
        self.reruns: list[tuple[int, str]] = []  # per rerun asked for: (its frame's index, its fragment's id)
        self.requested_at_last_end = 0  # how many reruns had been asked for when the last run ended
        self.last = time.monotonic()  # when the last rerun was asked for or the last message came in

    @property
    def fragments(self) -> list[str]:
        """Per rerun asked for: its fragment's id, "" for the whole page."""
        return [fragment for _, fragment in self.reruns]

    def watch(self, websocket: WebSocket) -> None:
        websocket.on("framesent", self._sent)
        websocket.on("framereceived", self._received)

    def _sent(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            message = BackMsg()
            message.ParseFromString(payload)
            if message.WhichOneof("type") == "rerun_script":
                self.requested += 1
                self.reruns.append((self.frames, message.rerun_script.fragment_id))
                self.last = time.monotonic()
            self.frames += 1

    def _received(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            message = ForwardMsg()
            message.ParseFromString(payload)
            self.last = time.monotonic()
            # A run stopped early for a newer one is not the run a test waits for.
            if message.WhichOneof("type") == "script_finished" and (
                message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
            ):
                self.ended += 1
                self.requested_at_last_end = self.requested


_RUNS: WeakKeyDictionary[Page, ScriptRuns] = WeakKeyDictionary()

# The page's own clock for `no_rerun`: when it sent each binary websocket frame (in the order the
# watcher sees them) and when each input event (a key, a pointer press or move, a select's change)
# came, with its type.
_PAGE_CLOCK_JS = """
(() => {
  window.__e2eSends = [];
  window.__e2eInputs = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data !== "string") window.__e2eSends.push(performance.now());
    return send.call(this, data);
  };
  for (const type of ["pointerdown", "pointermove", "keydown", "input", "change"]) {
    window.addEventListener(type, () => window.__e2eInputs.push([type, performance.now()]), true);
  }
})();
"""


def watch_runs(page: Page) -> ScriptRuns:
    """Start counting `page`'s script runs; call it before the page opens the app's websocket."""
    if page not in _RUNS:
        _RUNS[page] = ScriptRuns()
        page.on("websocket", _RUNS[page].watch)
        page.add_init_script(_PAGE_CLOCK_JS)
    return _RUNS[page]


@contextmanager
def rerun(page: Page, *, charts: int = 0, timeout: float = 60_000) -> Iterator[None]:
    """Wait, after the block's interaction, until a script run it started has ended and drawn.

    The page must have been opened with `open_app`, which watches its websocket. An interaction
    that starts no run fails here after `timeout`, which is what a test that expected one wants.
    """
    runs = _runs_of(page)
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


@dataclass(frozen=True)
class RunMark:
    """How many runs a page had asked for and seen end at one moment."""

    requested: int
    ended: int


def _runs_of(page: Page) -> ScriptRuns:
    if page not in _RUNS:
        raise RuntimeError("open the page with open_app() first: it watches the runs")
    return _RUNS[page]


@contextmanager
def no_rerun(page: Page, *, quiet_ms: int = 200, timeout: float = 10_000) -> Iterator[RunMark]:
    """The block's interaction starts no script run at once: by the page's own clock, no rerun was
    asked for within `quiet_ms` of the interaction's first input event (the step view reports its
    view only once the clicks have stopped for ~400 ms).

    First, a report of an earlier interaction still to come is let through (`_settle`). Yields
    the runs counted before the block, for `wait_for_report`.
    """
    runs = _runs_of(page)
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


# Longer than the step view's delay before it reports a view (400 ms in ui/step_view.js).
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
    runs = _runs_of(page)
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


def app_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    """A browser context for the app, with the projector-sized viewport every test and bench uses."""
    return browser.new_context(viewport=VIEWPORT, base_url=base_url, **options)


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


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save `screenshots/<name>.png`. Streamlit scrolls inside `stMain`, not the document, so for the
    whole page the viewport is stretched to the main area's height for the shot, then restored."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 0")
    if full_page and size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(height, 16_000)})
        page.wait_for_timeout(300)  # Plotly redraws charts on resize
        page.screenshot(path=str(path))
        page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path))
    return path


def screenshot_of(element: Locator, name: str) -> Path:
    """Save `screenshots/<name>.png` of one element (a section of the page).

    Charts below the fold are drawn late, so the viewport is stretched to hold the whole
    element for the shot, then restored.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page = element.page
    size = page.viewport_size
    box = element.bounding_box()
    if size and box and box["height"] + 200 > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(box["height"]) + 200, 16_000)})
    element.scroll_into_view_if_needed()
    page.wait_for_timeout(600)  # Plotly redraws charts on resize
    element.screenshot(path=str(path))
    if size:
        page.set_viewport_size(size)
    return path
