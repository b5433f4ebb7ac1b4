"""The translation's generation scrubber as one element in the page (Streamlit's Components v2).

The decoder is causal, so the trace of the finished translation holds every step's
cross-attention (row t is what step t computed): the browser gets it once
(`viz.generation.generation_payload`) and replays the steps, layers and heads by itself. A
change of step, layer or head is drawn there at once; the element tells the server its view only
once the changes stop, so that the link holds it and a class follows it (ui.translation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from encoder.translation import Translation, cross_weights
from ui.step_view import BROWSER_DIR, plotly_url
from viz.generation import generation_payload
from viz.style import ChartStyle

HERE = Path(__file__).parent
# The element's module: the step view's helpers it shares (el, fill, loadPlotly), then its own file.
BROWSER_FILES: tuple[Path, ...] = (
    BROWSER_DIR / "dom.js",
    BROWSER_DIR / "numbers.js",
    BROWSER_DIR / "plotly.js",
    HERE / "generation_browser" / "generation.js",
)

_mount = st.components.v2.component(
    "generation",
    css=(HERE / "generation.css").read_text(encoding="utf-8"),
    js="\n".join(path.read_text(encoding="utf-8") for path in BROWSER_FILES),
    # Not in a shadow root: every rule is under .avi-generation, and Plotly's hover and tests
    # reach the element through the page's document.
    isolate_styles=False,
)


def payload_of(translation: Translation, strings: Mapping[str, str], style: ChartStyle | None = None) -> dict[str, Any]:
    """The element's payload for one translation: every decoder layer's cross-attention, stacked."""
    return generation_payload(
        translation.source,
        translation.emitted,
        translation.probabilities,
        cross_weights(translation.trace),  # (L, H, T, S) float32, the trace's own
        strings,
        style=style,
    )


def show(
    translation_payload: dict[str, Any],
    command: Mapping[str, int],
    on_view_change: Callable[[], None],
    key: str = "generation",
) -> None:
    """Mount the element with `translation_payload` (from `payload_of`), where Plotly.js is served,
    and the server's `command`: `word` (0: the whole translation), `layer`, `head` and a `revision`
    that grows when the server moves the view itself. The browser reports its view (`view`:
    `word`, `word_layer`, `word_head`) once the changes stop: `on_view_change` reads it."""
    data = {**translation_payload, "plotly_url": plotly_url(), "command": dict(command)}
    _mount(key=key, data=data, on_view_change=on_view_change)
