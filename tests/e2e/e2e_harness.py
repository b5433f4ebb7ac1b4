"""Run the real Streamlit app and drive it from real Chromium.

Shared by the e2e fixtures (tests/e2e/conftest.py) and the latency benchmark
(bench/app_latency.py), so both start the server and judge "the page is drawn" the same way.
The server is started the way Streamlit's own e2e suite starts it. A page load is drawn when
`stApp` reports the script as `notRunning` and the charts have their SVG; after an interaction,
`rerun` first waits for the server to report, on the page's websocket, that a run has ended.
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
ALERT = '[data-testid="stAlert"]'

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
    script: Path, *, cwd: Path = ROOT, start_timeout: float = 90.0, log_path: Path | None = None
) -> Iterator[str]:
    """Serve `script` on a free loopback port and yield its base URL; stop it on exit, even on failure.

    The server's output (tracebacks included) goes to `log_path`, or to a temporary file.
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
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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


def wait_for_app(page: Page, *, charts: int = 1, timeout: float = 60_000, settle_ms: int = 150) -> None:
    """Wait until the script run that a navigation started has finished and drawn (after a click or
    a key, use `rerun`, which knows when the run the input started has ended).

    `settle_ms` covers the gap between a navigation and the run it starts, during which the
    app still says `notRunning` (Streamlit's own e2e helper waits the same way). With `charts`,
    also wait until at least that many Plotly charts have drawn their SVG: on a page load they
    appear seconds after the run ends, once the browser has parsed Plotly's bundle. An exception
    on the page ends the wait at once with `AppException`, carrying its text.
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
    error = page.locator(EXCEPTION)
    if error.count():
        text = " ".join(error.first.inner_text().split())[:300]
        raise AppException(f"the app shows an exception: {text} (the server log has the traceback)")


class ScriptRuns:
    """What one page's websocket carried: the reruns the browser asked for and the runs the server
    reported as ended (a `script_finished` ForwardMsg, read with Streamlit's own protobuf classes).

    The wire, not the DOM: `stApp`'s `data-test-script-state` can skip "running" altogether when
    the browser is busy drawing and React batches a short run's start and end into one render.
    """

    def __init__(self) -> None:
        self.requested = 0
        self.ended = 0

    def watch(self, websocket: WebSocket) -> None:
        websocket.on("framesent", self._sent)
        websocket.on("framereceived", self._received)

    def _sent(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            message = BackMsg()
            message.ParseFromString(payload)
            self.requested += message.WhichOneof("type") == "rerun_script"

    def _received(self, payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            message = ForwardMsg()
            message.ParseFromString(payload)
            # A run stopped early for a newer one is not the run a test waits for.
            self.ended += message.WhichOneof("type") == "script_finished" and (
                message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
            )


_RUNS: WeakKeyDictionary[Page, ScriptRuns] = WeakKeyDictionary()


def watch_runs(page: Page) -> ScriptRuns:
    """Start counting `page`'s script runs; call it before the page opens the app's websocket."""
    if page not in _RUNS:
        _RUNS[page] = ScriptRuns()
        page.on("websocket", _RUNS[page].watch)
    return _RUNS[page]


@contextmanager
def rerun(page: Page, *, charts: int = 0, timeout: float = 60_000) -> Iterator[None]:
    """Wait, after the block's interaction, until a script run it started has ended and drawn.

    The page must have been opened with `open_app`, which watches its websocket. An interaction
    that starts no run fails here after `timeout`, which is what a test that expected one wants.
    """
    if page not in _RUNS:
        raise RuntimeError("open the page with open_app() first: it watches the runs")
    runs = _RUNS[page]
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


def app_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    """A browser context for the app, with the projector-sized viewport every test and bench uses."""
    return browser.new_context(viewport=VIEWPORT, base_url=base_url, **options)


def open_app(page: Page, params: Mapping[str, object] | None = None, *, charts: int = 1) -> None:
    """Open the app at a given state (every setting lives in the query string) and wait until drawn."""
    query = urlencode({key: str(value) for key, value in (params or {}).items()}, quote_via=quote)
    watch_runs(page)
    page.goto(f"/?{query}" if query else "/")
    wait_for_app(page, charts=charts)


def tick_texts(chart: Locator) -> dict[str, list[str]]:
    """The x and y tick labels a Plotly chart drew, in order: what a reader sees on the axes."""
    return {
        "x": chart.locator(".xtick text").all_text_contents(),
        "y": chart.locator(".ytick text").all_text_contents(),
    }


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
