"""Train a model in the real app and real Chromium: the live view redraws while it trains (a
timer, not the user), the page stays usable, and the trained model opens in the step view."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from harness.page import STEP_VIEW, open_app, rerun, wait_for_app
from ui.i18n import texts


def test_a_model_trains_live_and_opens_in_the_step_view(page: Page) -> None:
    t = texts("en")
    open_app(page, {"trainer": 1, "train_steps": 1000, "train_task": "previous", "train_seed": 5}, step_view=True)
    page.get_by_role("button", name=t["train_start"], exact=True).click()
    section = page.locator(".st-key-trainer-section")
    # While it trains the section redraws itself: the step count it shows goes up.
    running = section.get_by_text("Training on", exact=False)
    expect(running).to_be_visible(timeout=30_000)
    first = running.inner_text()
    expect(running).not_to_have_text(first, timeout=10_000)
    # The rest of the page still answers while it trains: a head change in the step view.
    page.locator(STEP_VIEW).get_by_role("radiogroup", name="Head", exact=True).get_by_role("radio").nth(1).click()
    expect(page.locator(STEP_VIEW)).to_have_attribute("data-ready", "0,1,0,0")
    inspect = page.get_by_role("button", name=t["train_inspect"], exact=True)
    expect(inspect).to_be_visible(timeout=90_000)
    expect(section.get_by_text("Held-out accuracy", exact=False)).to_be_visible()
    with rerun(page):
        inspect.click()
    wait_for_app(page, step_view=True)
    expect(page.get_by_label("Sentence", exact=True)).to_have_value(re.compile(r"^(\d )+\d$"))  # the probe
    assert page.locator(STEP_VIEW).get_attribute("data-ready")
    expect(page.get_by_test_id("stException")).to_have_count(0)
