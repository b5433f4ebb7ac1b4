"""Driving the page through Streamlit's AppTest, and reading it as a user sees it: shared by
tests/app's modules. Charts are found by their stable name (the download file name each chart
gets, e.g. `padding_L2H3`), never by their position on the page."""

from __future__ import annotations

import base64
import importlib
import json
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from viz.step_view import decode_payload

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")

# The default page's link as the app wrote it before links left the defaults out and before the
# experiments had their names: every parameter, under its name of the time.
OLD_DEFAULT_LINK = {
    "text": "我爱你", "lang": "en", "model": "random", "d_model": "64", "heads": "4", "layers": "2",
    "minilm_layers": "6", "ff": "4", "seed": "0", "pos": "sinusoidal", "norm": "post", "act": "relu",
    "causal": "0", "rest": "0", "lab": "off", "lab_layer": "1", "lab_head": "1", "lab_temperature": "1.0",
    "lab_dk": "64", "lab_pad": "2", "lab_shuffle": "1", "lab_positions": "0", "cmp_text": "", "cmp_heads": "1",
    "cmp_seed": "0", "cmp_scale": "1", "present": "0", "step": "1", "cpu": "0", "layer": "1", "head": "1",
    "query": "1", "palette": "default", "wscale": "fixed", "img": "png", "trainer": "0", "train_task": "previous",
    "train_d_model": "32", "train_heads": "2", "train_layers": "2", "train_steps": "3000", "train_seed": "0",
}  # fmt: skip


def run(**query: str) -> AppTest:
    """The page opened at a link with these query parameters; it must raise nothing."""
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def after(widget) -> AppTest:
    """Run the script after an interaction (`widget.set_value(...)` etc.) and check it raised nothing."""
    at = widget.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """The page's Plotly charts by name (the step view draws its own, in the browser: see `step_view`)."""
    named = {}
    for element in at.get("plotly_chart"):
        name = json.loads(element.proto.config)["toImageButtonOptions"]["filename"]
        assert name not in named, f"two charts are named {name}"
        named[name] = json.loads(element.proto.spec)
    return named


def chart(at: AppTest, name: str) -> dict:
    """The page's chart named `name` (its download file name), as Plotly JSON."""
    shown = charts(at)
    assert name in shown, f"no chart {name!r} on the page; it has {sorted(shown)}"
    return shown[name]


def step_view(at: AppTest) -> tuple[dict, dict[str, np.ndarray]]:
    """The step view's payload (header, arrays), as the browser receives it."""
    [element] = [element for element in at.get("bidi_component") if element.proto.component_name == "step_view"]
    return decode_payload(element.proto.bytes)


def has_step_view(at: AppTest) -> bool:
    return any(element.proto.component_name == "step_view" for element in at.get("bidi_component"))


def view(at: AppTest) -> tuple[int, int, int]:
    """The (layer, head, query) the step view opens at, 0-based."""
    shown = step_view(at)[0]["view"]
    return shown["layer"], shown["head"], shown["query"]


def ticks(spec: dict, axis: str) -> list[str]:
    return list(spec["layout"][axis].get("ticktext", []))


def alerts(at: AppTest) -> list[str]:
    return [a.value for a in (*at.warning, *at.info, *at.error)]


def decode(z) -> np.ndarray:
    """Plotly sends numpy arrays base64-encoded ({"dtype", "bdata", "shape"})."""
    if isinstance(z, dict):
        flat = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        if "shape" not in z:  # one-dimensional
            return flat
        return flat.reshape(tuple(int(s) for s in str(z["shape"]).split(",")))
    return np.asarray(z, dtype=float)


def needs(module: str) -> ModuleType:
    """The pretrained extra: skipped without it on a developer's machine, required in CI."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)
