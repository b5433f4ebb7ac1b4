"""The app's settings and their URL form, so that a link reopens exactly the same view.

`st.query_params` hands over strings from whoever wrote the link; every one is checked
here, and a bad one falls back to its default with a `Notice` the app shows in the
user's language. Pure Python: testable without Streamlit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from viz.step_view import STEPS

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
    step: int = 0  # the step presentation mode shows (see STEPS)
    cpu: bool = False
    layer: int = 0
    head: int = 0
    query: int = 0
    palette: str = "default"
    wscale: str = "fixed"  # the softmax map's colour scale: 0 to 1, or 0 to its own largest weight
    img: str = "png"
    trainer: bool = False  # the "Train a model" section is open
    train_task: str = "previous"  # encoder.training.TASKS
    train_d_model: int = 32
    train_heads: int = 2
    train_layers: int = 2
    train_steps: int = 3000
    train_seed: int = 0


CHOICES: dict[str, tuple[str, ...]] = {
    "lang": ("en", "zh"),
    "model": ("random", "minilm", "upload", "trained"),
    "train_task": ("previous", "reverse", "sort", "induction"),
    "pos": ("sinusoidal", "learned", "none"),
    "norm": ("post", "pre", "none"),  # encoder.LAYER_NORMS: none is the source article's encoder
    "act": ("relu", "gelu"),
    "palette": ("default", "colorblind"),
    "wscale": ("fixed", "fit"),
    "img": ("png", "svg"),
    "lab": (
        "off",
        "heads",
        "scaling",
        "padding",
        "permute",
        "compare",
        "knockout",
        "rollout",
        "qk",
        "habits",
        "tokens",
    ),
}
ACTIVATION_NAMES = {"relu": "ReLU", "gelu": "GELU"}  # as the literature writes them

TEMPERATURES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
SATURATION_D_KS: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)  # with 4 heads, d_model stays within 1024
MAX_PADDING = 8  # enough [PAD] tokens to see the mask; more only repeats it
MAX_SHUFFLE = 999
# Training's small caps: a model a 2-core machine trains in well under a minute.
TRAIN_D_MODELS: tuple[int, ...] = (16, 32, 64)
TRAIN_HEADS: tuple[int, ...] = (1, 2, 4)
MAX_TRAIN_LAYERS = 3
TRAIN_STEPS: tuple[int, ...] = (300, 1000, 3000, 5000)


ONE_BASED = ("layer", "head", "query", "step", "lab_layer", "lab_head")  # counted from 1 in links, as on screen


@dataclass(frozen=True)
class Notice:
    """A link value that was refused: which parameter, what it said, why, and what is used instead."""

    param: str
    value: str
    reason: str  # a key of the string tables in ui.i18n ("reason_range", ...)
    reason_args: dict[str, Any] = field(default_factory=dict)
    default: Any = None  # None when the value was kept in part ("reason_cut": a text's beginning)


FLAGS = ("causal", "cpu", "rest", "present", "lab_positions", "cmp_scale", "trainer")  # "0" or "1" in links


def _int(raw: str) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _float(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


class _LinkReader:
    """A link's values, read one by one: each kept in `values` (0-based where the link counts
    from 1) or refused with a `Notice` that says why and what is used instead."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params = params
        self.values: dict[str, Any] = {}
        self.notices: list[Notice] = []

    def refuse(self, name: str, reason: str, default: Any, **args: Any) -> None:
        self.notices.append(Notice(name, str(self.params[name])[:80], reason, args, default))

    def text(self, name: str) -> None:
        """A sentence: its beginning when too long, as a paste of the same text would be tokenized."""
        if name not in self.params:
            return
        text = str(self.params[name])
        if len(text) > MAX_TEXT_CHARS:
            self.notices.append(Notice(name, text[:80], "reason_cut", {"max": MAX_TEXT_CHARS}))
            text = text[:MAX_TEXT_CHARS]
        self.values[name] = text

    def one_of(
        self, name: str, allowed: Sequence[Any], default: Any, parse: Callable[[str], Any] | None = None
    ) -> None:
        """One of `allowed`: as written (`parse` None), or parsed first (`_int`, `_float`)."""
        if name not in self.params:
            return
        value = self.params[name] if parse is None else parse(str(self.params[name]))
        if value is None and parse is _int:
            self.refuse(name, "reason_not_int", default)
        elif value in allowed:
            self.values[name] = value
        else:
            self.refuse(name, "reason_choice", default, choices=", ".join(map(str, allowed)))

    def flag(self, name: str) -> None:
        if name not in self.params:
            return
        if self.params[name] in ("0", "1"):
            self.values[name] = self.params[name] == "1"
        else:
            self.refuse(name, "reason_choice", "0", choices="0, 1")

    def integer(
        self, name: str, valid: Callable[[int], bool], reason: str, default: Any, offset: int = 0, **args: Any
    ) -> None:
        """A whole number that `valid` accepts; `offset` 1 for a value the link counts from 1."""
        if name not in self.params:
            return
        number = _int(str(self.params[name]))
        if number is None:
            self.refuse(name, "reason_not_int", default + offset)
        elif not valid(number):
            self.refuse(name, reason, default + offset, **args)
        else:
            self.values[name] = number - offset

    def within(self, name: str, low: int, high: int, default: int, offset: int = 0) -> None:
        self.integer(name, lambda n: low <= n <= high, "reason_range", default, offset, low=low, high=high)


def from_query_params(params: Mapping[str, str], max_layers: int, max_heads: int) -> tuple[Settings, list[Notice]]:
    """Settings from a link's query string; refused values fall back to defaults, with notices.

    Checked in dependency order: heads against d_model, layer against layers, head against
    heads. `query` is checked later by the app, once the text is tokenized.
    """
    defaults = Settings()
    link = _LinkReader(params)
    for name in ("text", "cmp_text"):
        link.text(name)
    for name, allowed in CHOICES.items():
        link.one_of(name, allowed, getattr(defaults, name))
    link.one_of("d_model", D_MODEL_OPTIONS, defaults.d_model, _int)
    d_model = link.values.get("d_model", defaults.d_model)
    divisors = head_options(d_model, max_heads).__contains__
    link.integer("heads", divisors, "reason_divisor", defaults.heads, d_model=d_model)
    link.within("layers", 1, max_layers, defaults.layers)
    link.within("minilm_layers", 1, MINILM_LAYERS, defaults.minilm_layers)
    link.one_of("ff", FF_MULTIPLIERS, defaults.ff, _int)
    link.within("seed", 0, MAX_SEED, defaults.seed)
    for name in FLAGS:
        link.flag(name)
    if link.values.get("model", defaults.model) == "random":
        layers, heads = link.values.get("layers", defaults.layers), link.values.get("heads", defaults.heads)
    else:  # a trained or uploaded model's shape is known once it is loaded: the app fits these to it
        layers, heads = max_layers, max_heads
    for name, count in (("layer", layers), ("head", heads), ("lab_layer", layers), ("lab_head", heads)):
        link.within(name, 1, count, 0, offset=1)
    # The sentence is not tokenized yet: the app fits a query past its last token, with a notice.
    link.integer("query", lambda n: n >= 1, "reason_at_least", 0, offset=1, low=1)
    link.one_of("lab_temperature", TEMPERATURES, defaults.lab_temperature, _float)
    link.one_of("lab_dk", SATURATION_D_KS, defaults.lab_dk, _int)
    link.one_of("train_d_model", TRAIN_D_MODELS, defaults.train_d_model, _int)
    link.one_of("train_heads", TRAIN_HEADS, defaults.train_heads, _int)
    link.within("train_layers", 1, MAX_TRAIN_LAYERS, defaults.train_layers)
    link.one_of("train_steps", TRAIN_STEPS, defaults.train_steps, _int)
    link.within("train_seed", 0, MAX_SEED, defaults.train_seed)
    link.within("lab_pad", 1, MAX_PADDING, defaults.lab_pad)
    link.within("lab_shuffle", 0, MAX_SHUFFLE, defaults.lab_shuffle)
    link.integer("cmp_heads", divisors, "reason_divisor", defaults.cmp_heads, d_model=d_model)
    link.within("cmp_seed", 0, MAX_SEED, defaults.cmp_seed)
    link.within("step", 1, len(STEPS), 0, offset=1)
    return dataclasses.replace(defaults, **link.values), link.notices


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
