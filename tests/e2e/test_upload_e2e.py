"""An encoder without LayerNorm (as the source article builds it) in real Chromium, in English and
中文: uploaded as a state_dict (its own class cannot be loaded safely) and opened with the head
count the user picks, and its shape, without LayerNorm, chosen for random weights."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from playwright.sync_api import Page, expect

from encoder import Encoder, EncoderConfig, from_state_dict
from harness.chromium import screenshot_of
from harness.page import open_app, rerun, wait_for_step_view
from tests.e2e.pages import (
    LOVE,
    expect_no_exception,
    expect_worked_example,
    pick,
    picker,
    slider,
    step_view,
)
from tests.torch_models import no_layer_norm_encoder
from ui.i18n import texts


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_encoder_without_layer_norm_uploaded_as_a_state_dict_opens_with_the_heads_chosen(
    page: Page, lang: str, tmp_path: Path
) -> None:
    t = texts(lang)
    article = no_layer_norm_encoder(d_model=16, heads=2, layers=2, d_ff=32)
    path = tmp_path / "no_layer_norm.pt"
    torch.save(article.state_dict(), path)

    open_app(page, {"model": "upload", "lang": lang})
    expect(page.get_by_text(t["upload_needed"])).to_be_visible()
    uploader = page.locator(".st-key-upload_file")  # the model's uploader, not the lesson's
    with rerun(page):
        uploader.locator('input[type="file"]').set_input_files(path)
    wait_for_step_view(page, complete=True)
    sidebar = page.get_by_test_id("stSidebar")
    said = t["upload_weights_only"].format(
        file="no_layer_norm.pt", architecture=t["arch_no_layer_norm"], d_model=16, layers=2, d_ff=32
    )
    expect(sidebar.get_by_text(said)).to_be_visible()  # the file name as typed, not Markdown-escaped
    expect(picker(page, t["head"]).get_by_role("radio")).to_have_count(8)  # d_model 16: 8 heads at most, first

    with rerun(page):
        slider(page, t["upload_heads"]).press("ArrowLeft")  # 8 -> 4
    with rerun(page):
        slider(page, t["upload_heads"]).press("ArrowLeft")  # 4 -> 2, the heads the model was built with
    expect(picker(page, t["head"]).get_by_role("radio")).to_have_count(2)
    wait_for_step_view(page, complete=True)
    trace = from_state_dict(article.state_dict(), n_heads=2).trace_text("我爱你")
    pick(page, t["layer"], 2)
    pick(page, t["head"], 2)
    expect_worked_example(page, trace.to_numpy(), LOVE, 2, 2, 1, lang)
    screenshot_of(sidebar, f"upload-{lang}-state-dict")
    screenshot_of(step_view(page).locator("section[data-step=worked]"), f"upload-{lang}-worked")
    expect_no_exception(page)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_random_weights_without_layer_norm_from_the_sidebar(page: Page, lang: str) -> None:
    t = texts(lang)
    open_app(page, {"lang": lang, "rest": 1, "text": "我爱你"}, charts=8)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text(t["advanced"], exact=True).click()
    with rerun(page, charts=8):
        sidebar.get_by_test_id("stRadioOption").get_by_text(t["layer_norm_none"], exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]norm=none(&|$)"))
    expect(page.get_by_text(t["rest_text_none"])).to_be_visible()
    wait_for_step_view(page, complete=True)
    trace = Encoder(EncoderConfig(layer_norm="none")).trace_text("我爱你")
    expect_worked_example(page, trace.to_numpy(), LOVE, 1, 1, 1, lang)
    expect_no_exception(page)
