"""The browser prints numbers as Python does: every number in the step view's cells and tables
goes through the element module's `numberText` (ui/step_view_browser/numbers.js), which must print
exactly what `viz.number_text` prints (fixed decimals, ties to even on the binary value, no
"-0.00", "−∞" for a masked score)."""

from __future__ import annotations

import math

import numpy as np
from playwright.sync_api import Browser

from ui.step_view import browser_module
from viz import number_text


def _values() -> list[tuple[float, int]]:
    rng = np.random.default_rng(0)
    magnitudes = 10.0 ** rng.uniform(-6, 3, 4000)
    random32 = (rng.choice([-1.0, 1.0], 4000) * magnitudes).astype(np.float32).astype(float)
    # Exact ties in binary (0.125 at two decimals), values just either side of them, negative
    # zero, tiny negatives that round to zero, whole numbers and masked scores.
    ties = [k / 8 for k in range(-40, 41)] + [k / 16 for k in range(-20, 21)] + [2.675, 1.005, 0.045]
    nearby = [math.nextafter(t, math.inf) for t in ties] + [math.nextafter(t, -math.inf) for t in ties]
    special = [0.0, -0.0, -1e-9, -0.004999, 0.995, 9.995, 99.995, 1.0, -1.0, 123.0, -math.inf]
    values = [*random32, *ties, *nearby, *special]
    return [(value, decimals) for value in values for decimals in (2, 4)]


def test_numbers_print_as_python_prints_them(browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.set_content("<html><body></body></html>")
        values = _values()
        printed = page.evaluate(
            """async ([source, values]) => {
              const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
              const module = await import(url);
              return values.map(([value, decimals]) => module.numberText(value, decimals));
            }""",
            [browser_module(), values],
        )
    finally:
        page.close()
    expected = [number_text(value, decimals) for value, decimals in values]
    wrong = [(v, d, p, e) for (v, d), p, e in zip(values, printed, expected, strict=True) if p != e]
    assert not wrong, wrong[:10]
    assert number_text(0.125, 2) == "0.12" and "0.12" in printed  # a tie goes to even, as in Python
