"""Find a Chromium, launch it as a container allows, open the app in a projector-sized context, and
photograph what it drew.

Debian's `/usr/bin/chromium` first (what CI installs); else Playwright's own build, if it was
downloaded. `playwright install` cannot download here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.server import ROOT

if TYPE_CHECKING:  # the fixtures turn a missing Playwright into a clear skip, not an ImportError
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright

SCREENSHOTS = ROOT / "tests" / "e2e" / "screenshots"  # git-ignored

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

VIEWPORT = {"width": 1440, "height": 1000}  # about what a classroom projector shows


def find_chromium(playwright: Playwright) -> str | None:
    """Debian's Chromium first (what CI installs), else Playwright's own build if it was downloaded."""
    for candidate in (DEBIAN_CHROMIUM, shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    bundled = playwright.chromium.executable_path
    return bundled if Path(bundled).is_file() and os.access(bundled, os.X_OK) else None


def app_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    """A browser context for the app, with the projector-sized viewport every test and bench uses."""
    return browser.new_context(viewport=VIEWPORT, base_url=base_url, **options)


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
