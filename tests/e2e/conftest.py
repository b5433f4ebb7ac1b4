"""Fixtures for the browser tests: the real app served by `streamlit run`, and headless Chromium.

Every test here is marked `e2e` (`pytest -m "not e2e"` leaves them out). Without a browser
they skip with a hint on how to install one, except under CI, where a missing browser fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import torch

from harness.chromium import CHROMIUM_ARGS, INSTALL_HINT, SCREENSHOTS, app_context, find_chromium, screenshot
from harness.cluster import cluster
from harness.server import ROOT, streamlit_server
from ui.serve import ServeError, find_program

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # `bash .ci/setup --test` installs it; without it the tests skip (fail under CI)
    Page = sync_playwright = None
else:
    # An assertion waits up to 20 s, not Playwright's 5 s: on a loaded CI machine a chart can take
    # seconds to draw after its run has ended. A passing assertion returns as soon as it holds.
    expect.set_options(timeout=20_000)

HERE = Path(__file__).resolve().parent

# The server traces with one thread (ui.compute.configure_torch), and so does this process: a matrix
# product sums in an order that depends on the threads, and the tests' own traces must agree with
# the page's to the last bit.
torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real app in real Chromium through Playwright (tests/e2e)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failed test leaves a screenshot of each page it used: screenshots/FAILED-<test>.png."""
    report = yield
    if report.when == "call" and report.failed and Page is not None:
        pages = list({id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Page)}.values())
        for i, page in enumerate(pages):
            name = "FAILED-" + re.sub(r"[^\w.-]+", "_", item.name)[:120] + (f"-{i}" if i else "")
            with suppress(Exception):  # a page that crashed cannot be photographed; the report says why
                screenshot(page, name)
    return report


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so what is missing is a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _missing("Playwright is not installed: `bash .ci/setup --test` installs it")
    with sync_playwright() as playwright:
        executable = find_chromium(playwright)
        if executable is None:
            _missing(f"no Chromium for the browser tests: {INSTALL_HINT}")
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def app_url() -> Iterator[str]:
    """One server for the whole session, stopped at the end (also on failure); its output, tracebacks
    included, is kept in screenshots/streamlit-server.log."""
    app = ROOT / "app.py"
    if not app.is_file():
        pytest.fail(f"{app} does not exist", pytrace=False)
    with streamlit_server(app, log_path=SCREENSHOTS / "streamlit-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser_context(browser: Browser, app_url: str) -> Iterator[BrowserContext]:
    """One context for the session, so its HTTP cache keeps Plotly's 4.7 MB bundle between tests.

    1440×1000, about what a classroom projector shows.
    """
    for old in SCREENSHOTS.glob("FAILED-*.png"):
        old.unlink()
    context = app_context(browser, app_url)
    context.set_default_timeout(30_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A fresh tab per test: a new Streamlit session, whose state comes from the link it opens."""
    page = browser_context.new_page()
    yield page
    page.close()


@pytest.fixture(scope="module")
def module_page(browser_context: BrowserContext) -> Iterator[Page]:
    """One tab shared by a module's tests that only type into the app: a rerun costs far less than
    a page load (each load parses Plotly's bundle again, about 3 s here)."""
    page = browser_context.new_page()
    yield page
    page.close()


@pytest.fixture(scope="session")
def processes() -> Iterator[tuple[str, list[str]]]:
    """Redis, two app processes sharing it and nginx in front (harness/cluster.py), as the README sets up:
    one for the session, shared by the class's and the lesson's tests (it takes seconds to start)."""
    for program in ("redis-server", "nginx"):
        try:
            find_program(program)
        except ServeError as missing:
            _missing(str(missing))
    with cluster(2, SCREENSHOTS / "cluster.log") as (proxy, apps):
        yield proxy, apps
