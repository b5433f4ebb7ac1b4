"""The app's settings and their URL form, so that a link reopens exactly the same view.

`st.query_params` hands over strings from whoever wrote the link; every one is checked
here, and a bad one falls back to its default with a `Notice` the app shows in the
user's language. Pure Python: testable without Streamlit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

D_MODEL_OPTIONS: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
FF_MULTIPLIERS: tuple[int, ...] = (1, 2, 4)  # d_ff = multiplier x d_model; 4 is the paper's ratio
MAX_SEED = 2**31 - 1
MAX_TEXT_CHARS = 5000  # a link's text is cut here (with a notice); the tokenizer caps tokens anyway
EXAMPLES: tuple[str, ...] = (
    "我爱你",
    "the cat sat on the mat because the cat was tired",
    "The animal didn't cross the street because it was too tired.",
)


def head_options(d_model: int, max_heads: int) -> list[int]:
    """Head counts that divide d_model: the only ones a user can choose."""
    return [h for h in range(1, max_heads + 1) if d_model % h == 0]


MINILM_LAYERS = 6  # all-MiniLM-L6-v2, the trained model the app ships (tests/app checks the loaded one)


@dataclass(frozen=True)
class Settings:
    """Everything that defines a view. The fields in ONE_BASED are 0-based here, 1-based in links."""

    text: str = EXAMPLES[0]
    lang: str = "en"
    model: str = "random"  # random weights, the trained MiniLM, or a user's uploaded torch model
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    minilm_layers: int = MINILM_LAYERS  # the trained model runs its first N layers: all of them by default
    ff: int = 4
    seed: int = 0
    pos: str = "sinusoidal"
    norm: str = "post"
    act: str = "relu"
    causal: bool = False  # decoder-style mask: no token attends to a later one
    rest: bool = False  # show the rest of the layer and the stack (off: a lighter page)
    lab: str = "off"  # which experiment is open below the step view (see LAB_VIEWS)
    lab_layer: int = 0  # the experiments' own layer and head (the step view's live in another fragment)
    lab_head: int = 0
    lab_temperature: float = 1.0  # why √d_k: T divides the scores once more
    lab_dk: int = 64  # why √d_k: the head width of the side-by-side softmaxes
    lab_pad: int = 2  # padding: how many [PAD] tokens
    lab_shuffle: int = 1  # position matters: which shuffle
    lab_positions: bool = False  # position matters: add sinusoidal positions
    cmp_text: str = ""  # compare: sentence B ("" means A's sentence)
    cmp_heads: int = 1  # compare: B's head count (random weights)
    cmp_seed: int = 0  # compare: B's seed
    cmp_scale: bool = True  # compare: whether B divides by √d_k
    present: bool = False  # presentation mode: one step at a time, large type, Prev / Next
    step: int = 0  # the step presentation mode shows (see PRESENTATION_STEPS)
    cpu: bool = False
    layer: int = 0
    head: int = 0
    query: int = 0
    palette: str = "default"
    wscale: str = "fixed"  # the softmax map's colour scale: 0 to 1, or 0 to its own largest weight
    img: str = "png"


CHOICES: dict[str, tuple[str, ...]] = {
    "lang": ("en", "zh"),
    "model": ("random", "minilm", "upload"),
    "pos": ("sinusoidal", "learned", "none"),
    "norm": ("post", "pre"),
    "act": ("relu", "gelu"),
    "palette": ("default", "colorblind"),
    "wscale": ("fixed", "fit"),
    "img": ("png", "svg"),
    "lab": ("off", "heads", "scaling", "padding", "permute", "compare"),
}
ACTIVATION_NAMES = {"relu": "ReLU", "gelu": "GELU"}  # as the literature writes them

TEMPERATURES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
SATURATION_D_KS: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)  # with 4 heads, d_model stays within 1024
MAX_PADDING = 8  # enough [PAD] tokens to see the mask; more only repeats it
MAX_SHUFFLE = 999

# What presentation mode steps through, in order: the five steps of attention, then the
# worked example and the heads of the layer.
PRESENTATION_STEPS: tuple[str, ...] = ("qkv", "scores", "scaled", "weights", "context", "worked", "heads")


ONE_BASED = ("layer", "head", "query", "step", "lab_layer", "lab_head")  # counted from 1 in links, as on screen


@dataclass(frozen=True)
class Notice:
    """A link value that was refused: which parameter, what it said, why, and what is used instead."""

    param: str
    value: str
    reason: str  # a key of the string tables in viz.i18n ("reason_range", ...)
    reason_args: dict[str, Any] = field(default_factory=dict)
    default: Any = None  # None when the value was kept in part ("reason_cut": a text's beginning)


def _int(raw: str) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None


def from_query_params(params: Mapping[str, str], max_layers: int, max_heads: int) -> tuple[Settings, list[Notice]]:
    """Settings from a link's query string; refused values fall back to defaults, with notices.

    Checked in dependency order: heads against d_model, layer against layers, head against
    heads. `query` is checked later by the app, once the text is tokenized.
    """
    defaults = Settings()
    values: dict[str, Any] = {}
    notices: list[Notice] = []

    def refuse(name: str, reason: str, default: Any, **args: Any) -> None:
        notices.append(Notice(name, str(params[name])[:80], reason, args, default))

    def integer(name: str, valid: Callable[[int], bool], reason: str, default: Any, offset: int = 0, **args: Any):
        if name not in params:
            return
        number = _int(str(params[name]))
        if number is None:
            refuse(name, "reason_not_int", default + offset)
        elif not valid(number):
            refuse(name, reason, default + offset, **args)
        else:
            values[name] = number - offset

    for name in ("text", "cmp_text"):
        if name in params:
            text = str(params[name])
            if len(text) > MAX_TEXT_CHARS:  # its beginning, as a paste of the same text would be tokenized
                notices.append(Notice(name, text[:80], "reason_cut", {"max": MAX_TEXT_CHARS}))
                text = text[:MAX_TEXT_CHARS]
            values[name] = text
    for name, allowed in CHOICES.items():
        if name in params:
            if params[name] in allowed:
                values[name] = params[name]
            else:
                refuse(name, "reason_choice", getattr(defaults, name), choices=", ".join(allowed))

    choices = ", ".join(map(str, D_MODEL_OPTIONS))
    integer("d_model", D_MODEL_OPTIONS.__contains__, "reason_choice", defaults.d_model, choices=choices)
    d_model = values.get("d_model", defaults.d_model)
    integer("heads", head_options(d_model, max_heads).__contains__, "reason_divisor", defaults.heads, d_model=d_model)
    integer("layers", lambda n: 1 <= n <= max_layers, "reason_range", defaults.layers, low=1, high=max_layers)
    integer(
        "minilm_layers",
        lambda n: 1 <= n <= MINILM_LAYERS,
        "reason_range",
        defaults.minilm_layers,
        low=1,
        high=MINILM_LAYERS,
    )
    ff_choices = ", ".join(map(str, FF_MULTIPLIERS))
    integer("ff", FF_MULTIPLIERS.__contains__, "reason_choice", defaults.ff, choices=ff_choices)
    integer("seed", lambda n: 0 <= n <= MAX_SEED, "reason_range", defaults.seed, low=0, high=MAX_SEED)
    for flag in ("causal", "cpu", "rest", "present", "lab_positions", "cmp_scale"):
        if flag in params:
            if params[flag] in ("0", "1"):
                values[flag] = params[flag] == "1"
            else:
                refuse(flag, "reason_choice", "0", choices="0, 1")
    if values.get("model", defaults.model) == "random":
        layers, heads = values.get("layers", defaults.layers), values.get("heads", defaults.heads)
    else:  # a trained or uploaded model's shape is known once it is loaded: the app fits these to it
        layers, heads = max_layers, max_heads
    integer("layer", lambda n: 1 <= n <= layers, "reason_range", 0, offset=1, low=1, high=layers)
    integer("head", lambda n: 1 <= n <= heads, "reason_range", 0, offset=1, low=1, high=heads)
    # The sentence is not tokenized yet: the app fits a query past its last token, with a notice.
    integer("query", lambda n: n >= 1, "reason_at_least", 0, offset=1, low=1)
    integer("lab_layer", lambda n: 1 <= n <= layers, "reason_range", 0, offset=1, low=1, high=layers)
    integer("lab_head", lambda n: 1 <= n <= heads, "reason_range", 0, offset=1, low=1, high=heads)
    if "lab_temperature" in params:
        try:
            temperature = float(str(params["lab_temperature"]))
        except ValueError:
            temperature = None
        if temperature in TEMPERATURES:
            values["lab_temperature"] = temperature
        else:
            choices = ", ".join(map(str, TEMPERATURES))
            refuse("lab_temperature", "reason_choice", defaults.lab_temperature, choices=choices)
    integer(
        "lab_dk",
        SATURATION_D_KS.__contains__,
        "reason_choice",
        defaults.lab_dk,
        choices=", ".join(map(str, SATURATION_D_KS)),
    )
    integer("lab_pad", lambda n: 1 <= n <= MAX_PADDING, "reason_range", defaults.lab_pad, low=1, high=MAX_PADDING)
    integer(
        "lab_shuffle", lambda n: 0 <= n <= MAX_SHUFFLE, "reason_range", defaults.lab_shuffle, low=0, high=MAX_SHUFFLE
    )
    integer(
        "cmp_heads",
        head_options(d_model, max_heads).__contains__,
        "reason_divisor",
        defaults.cmp_heads,
        d_model=d_model,
    )
    integer("cmp_seed", lambda n: 0 <= n <= MAX_SEED, "reason_range", defaults.cmp_seed, low=0, high=MAX_SEED)
    steps = len(PRESENTATION_STEPS)
    integer("step", lambda n: 1 <= n <= steps, "reason_range", 0, offset=1, low=1, high=steps)
    return dataclasses.replace(defaults, **values), notices


def to_query_params(settings: Settings) -> dict[str, str]:
    """The link form of `settings`: every field, with 1-based layers, heads, query and step."""
    params = {}
    for name, value in dataclasses.asdict(settings).items():
        if name in ONE_BASED:
            value += 1
        elif isinstance(value, bool):
            value = int(value)
        params[name] = str(value)
    return params
