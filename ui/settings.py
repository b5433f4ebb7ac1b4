"""The app's settings and their URL form, so that a link reopens exactly the same view.

`st.query_params` hands over strings from whoever wrote the link; every one is checked
here, and a bad one falls back to its default with a `Notice` the app shows in the
user's language. Pure Python: testable without Streamlit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from encoder.config import ACTIVATIONS, LAYER_NORMS, POSITIONALS
from encoder.translation import ATTENTION_KINDS
from viz.step_view import STEPS

D_MODEL_OPTIONS: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
FF_MULTIPLIERS: tuple[int, ...] = (1, 2, 4)  # d_ff = multiplier x d_model; 4 is the paper's ratio
MAX_SEED = 2**31 - 1
LESSON_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # a lesson's name, as a link and its file name write it
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
    """Everything that defines a view, under the names `EncoderConfig` gives the same things
    (`n_heads`, `layer_norm`...). The link writes some shorter (`LINK_NAMES`) and counts the
    fields in ONE_BASED from 1, as the page does."""

    text: str = EXAMPLES[0]
    lang: str = "en"
    model: str = "random"  # random weights, the trained MiniLM, a user's uploaded torch model, or the translator
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    minilm_n_layers: int = MINILM_LAYERS  # the trained model runs its first N layers: all of them by default
    ff_multiplier: int = 4  # d_ff = ff_multiplier x d_model
    seed: int = 0
    positional: str = "sinusoidal"
    layer_norm: str = "post"
    activation: str = "relu"
    causal: bool = False  # decoder-style mask: no token attends to a later one
    translation_weights: str = "random"  # the encoder-decoder: random weights of the shape above, or trained here
    attention: str = "encoder"  # the encoder-decoder's attention the step view shows (ATTENTION_KINDS)
    word: int = 0  # the generation's step, from 1 (0: the whole translation)
    word_layer: int = 0  # the generation's decoder layer and head (0-based, as layer and head)
    word_head: int = 0
    rest: bool = False  # show the rest of the layer and the stack (off: a lighter page)
    experiment: str = "off"  # which experiment is open below the step view (ui.experiments.EXPERIMENTS)
    experiment_layer: int = 0  # the experiments' own layer and head (the step view's live in another fragment)
    experiment_head: int = 0
    scaling_temperature: float = 1.0  # why √d_k: T divides the scores once more
    scaling_d_k: int = 64  # why √d_k: the head width of the side-by-side softmaxes
    padding_count: int = 2  # padding: how many [PAD] tokens
    shuffle_seed: int = 1  # shuffle: which shuffle of the words
    shuffle_positions: bool = False  # shuffle: add sinusoidal positions
    compare_sentence: str = ""  # compare: sentence B ("" means A's sentence)
    compare_n_heads: int = 1  # compare: B's head count (random weights)
    compare_seed: int = 0  # compare: B's seed
    compare_scale: bool = True  # compare: whether B divides by √d_k
    present: bool = False  # presentation mode: one step at a time, large type, Prev / Next
    step: int = 0  # the step presentation mode shows (see STEPS)
    cpu: bool = False
    layer: int = 0
    head: int = 0
    query: int = 0
    palette: str = "default"
    weight_scale: str = "fixed"  # the softmax map's colour scale: 0 to 1, or 0 to its own largest weight
    image_format: str = "png"
    trainer: bool = False  # the "Train a model" section is open
    train_task: str = "previous"  # encoder.training.TASKS
    train_d_model: int = 32
    train_n_heads: int = 2
    train_n_layers: int = 2
    train_steps: int = 3000
    train_seed: int = 0
    lesson: str = ""  # the lesson the page is in ("": none; ui.lessons), at its stop `lesson_stop`
    lesson_stop: int = 0


# The link's shorter name for a field, where it has one; every other field is linked by its name.
LINK_NAMES: dict[str, str] = {
    "n_heads": "heads",
    "n_layers": "layers",
    "minilm_n_layers": "minilm_layers",
    "ff_multiplier": "ff",
    "positional": "pos",
    "layer_norm": "norm",
    "activation": "act",
    "compare_n_heads": "compare_heads",
    "weight_scale": "wscale",
    "image_format": "img",
    "train_n_heads": "train_heads",
    "train_n_layers": "train_layers",
    "lesson_stop": "stop",
    "translation_weights": "tweights",
}
# Names and values that links of earlier versions wrote: read as today's, so an old link opens
# the same view.
OLD_LINK_NAMES: dict[str, str] = {
    "lab": "experiment",
    "lab_layer": "experiment_layer",
    "lab_head": "experiment_head",
    "lab_temperature": "scaling_temperature",
    "lab_dk": "scaling_d_k",
    "lab_pad": "padding_count",
    "lab_shuffle": "shuffle_seed",
    "lab_positions": "shuffle_positions",
    "cmp_text": "compare_sentence",
    "cmp_heads": "compare_heads",
    "cmp_seed": "compare_seed",
    "cmp_scale": "compare_scale",
}
OLD_LINK_VALUES: dict[str, dict[str, str]] = {
    "experiment": {"heads": "head_view", "permute": "shuffle", "qk": "query_keys"},
}


def link_name(field_name: str) -> str:
    """The name a Settings field goes by in a link."""
    return LINK_NAMES.get(field_name, field_name)


CHOICES: dict[str, tuple[str, ...]] = {
    "lang": ("en", "zh"),
    "model": ("random", "minilm", "upload", "trained", "translation"),
    "train_task": ("previous", "reverse", "sort", "induction", "translate"),
    "translation_weights": ("random", "trained"),
    "attention": ATTENTION_KINDS,
    "positional": POSITIONALS,
    "layer_norm": LAYER_NORMS,  # "none": an encoder without LayerNorm, as the source article builds it
    "activation": ACTIVATIONS,
    "palette": ("default", "colorblind"),
    "weight_scale": ("fixed", "fit"),
    "image_format": ("png", "svg"),
    "experiment": (
        "off",
        "head_view",
        "scaling",
        "padding",
        "shuffle",
        "compare",
        "knockout",
        "rollout",
        "query_keys",
        "habits",
        "tokens",
    ),
}
ACTIVATION_NAMES = {"relu": "ReLU", "gelu": "GELU"}  # as the literature writes them

TEMPERATURES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
SATURATION_D_KS: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)  # with 4 heads, d_model stays within 1024
MAX_PADDING = 8  # enough [PAD] tokens to see the mask; more only repeats it
MAX_SHUFFLE = 999
MAX_WORD = 99  # a link's generation step; the page fits it to the translation (at most 13 words)
# Training's small caps: a model a 2-core machine trains in well under a minute.
TRAIN_D_MODELS: tuple[int, ...] = (16, 32, 64)
TRAIN_HEADS: tuple[int, ...] = (1, 2, 4)
MAX_TRAIN_LAYERS = 3
TRAIN_STEPS: tuple[int, ...] = (300, 1000, 3000, 5000)


ONE_BASED = (
    "layer",
    "head",
    "query",
    "step",
    "experiment_layer",
    "experiment_head",
    "lesson_stop",
    "word_layer",
    "word_head",
)  # counted from 1 in links, as on screen


@dataclass(frozen=True)
class Notice:
    """A link value that was refused: which parameter, what it said, why, and what is used instead."""

    param: str
    value: str
    reason: str  # a key of the string tables in ui.i18n ("reason_range", ...)
    reason_args: dict[str, Any] = field(default_factory=dict)
    default: Any = None  # None when the value was kept in part ("reason_cut": a text's beginning)


FLAGS = ("causal", "cpu", "rest", "present", "shuffle_positions", "compare_scale", "trainer")  # "0" or "1" in links


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
    """A link's values, read one by one by field name: each kept in `values` (0-based where the
    link counts from 1) or refused with a `Notice` that names the parameter as the link wrote it
    and says why and what is used instead."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params: dict[str, str] = {}
        self.written_as: dict[str, str] = {}  # today's link name -> the name the link used
        for name, value in params.items():
            current = OLD_LINK_NAMES.get(name, name)
            if current != name and current in params:  # today's name wins over an old one
                continue
            self.params[current] = value
            self.written_as[current] = name
        for name, renamed in OLD_LINK_VALUES.items():
            value = self.params.get(name)
            if value in renamed:
                self.params[name] = renamed[value]
        self.values: dict[str, Any] = {}
        self.notices: list[Notice] = []

    def raw(self, field_name: str) -> str | None:
        """The link's value for a field, as written; None when the link leaves it out."""
        value = self.params.get(link_name(field_name))
        return None if value is None else str(value)

    def refuse(self, field_name: str, reason: str, default: Any, **args: Any) -> None:
        name = link_name(field_name)
        self.notices.append(Notice(self.written_as[name], self.params[name][:80], reason, args, default))

    def text(self, name: str) -> None:
        """A sentence: its beginning when too long, as a paste of the same text would be tokenized."""
        text = self.raw(name)
        if text is None:
            return
        if len(text) > MAX_TEXT_CHARS:
            self.notices.append(
                Notice(self.written_as[link_name(name)], text[:80], "reason_cut", {"max": MAX_TEXT_CHARS})
            )
            text = text[:MAX_TEXT_CHARS]
        self.values[name] = text

    def one_of(
        self, name: str, allowed: Sequence[Any], default: Any, parse: Callable[[str], Any] | None = None
    ) -> None:
        """One of `allowed`: as written (`parse` None), or parsed first (`_int`, `_float`)."""
        raw = self.raw(name)
        if raw is None:
            return
        value = raw if parse is None else parse(raw)
        if value is None and parse is _int:
            self.refuse(name, "reason_not_int", default)
        elif value in allowed:
            self.values[name] = value
        else:
            self.refuse(name, "reason_choice", default, choices=", ".join(map(str, allowed)))

    def name(self, field_name: str, pattern: re.Pattern[str]) -> None:
        """A name that `pattern` matches whole (a lesson's): whether it exists is the app's to say."""
        raw = self.raw(field_name)
        if raw is None:
            return
        if pattern.fullmatch(raw):
            self.values[field_name] = raw
        else:
            self.refuse(field_name, "reason_name", "")

    def flag(self, name: str) -> None:
        raw = self.raw(name)
        if raw is None:
            return
        if raw in ("0", "1"):
            self.values[name] = raw == "1"
        else:
            self.refuse(name, "reason_choice", "0", choices="0, 1")

    def integer(
        self, name: str, valid: Callable[[int], bool], reason: str, default: Any, offset: int = 0, **args: Any
    ) -> None:
        """A whole number that `valid` accepts; `offset` 1 for a value the link counts from 1."""
        raw = self.raw(name)
        if raw is None:
            return
        number = _int(raw)
        if number is None:
            self.refuse(name, "reason_not_int", default + offset)
        elif not valid(number):
            self.refuse(name, reason, default + offset, **args)
        else:
            self.values[name] = number - offset

    def within(self, name: str, low: int, high: int, default: int, offset: int = 0) -> None:
        self.integer(name, lambda n: low <= n <= high, "reason_range", default, offset, low=low, high=high)


def from_query_params(params: Mapping[str, str], max_layers: int, max_heads: int) -> tuple[Settings, list[Notice]]:
    """Settings from a link's query string (today's names or an earlier version's); what it
    leaves out is the default, and refused values fall back to defaults, with notices.

    Checked in dependency order: heads against d_model, layer against layers, head against
    heads. `query` is checked later by the app, once the text is tokenized.
    """
    defaults = Settings()
    link = _LinkReader(params)
    for name in ("text", "compare_sentence"):
        link.text(name)
    for name, allowed in CHOICES.items():
        link.one_of(name, allowed, getattr(defaults, name))
    link.one_of("d_model", D_MODEL_OPTIONS, defaults.d_model, _int)
    d_model = link.values.get("d_model", defaults.d_model)
    divisors = head_options(d_model, max_heads).__contains__
    link.integer("n_heads", divisors, "reason_divisor", defaults.n_heads, d_model=d_model)
    link.within("n_layers", 1, max_layers, defaults.n_layers)
    link.within("minilm_n_layers", 1, MINILM_LAYERS, defaults.minilm_n_layers)
    link.one_of("ff_multiplier", FF_MULTIPLIERS, defaults.ff_multiplier, _int)
    link.within("seed", 0, MAX_SEED, defaults.seed)
    for name in FLAGS:
        link.flag(name)
    if link.values.get("model", defaults.model) == "random":
        n_layers = link.values.get("n_layers", defaults.n_layers)
        n_heads = link.values.get("n_heads", defaults.n_heads)
    else:  # a trained or uploaded model's shape is known once it is loaded: the app fits these to it
        n_layers, n_heads = max_layers, max_heads
    for name, count in (
        ("layer", n_layers),
        ("head", n_heads),
        ("experiment_layer", n_layers),
        ("experiment_head", n_heads),
    ):
        link.within(name, 1, count, 0, offset=1)
    # The sentence is not tokenized yet: the app fits a query past its last token, with a notice.
    link.integer("query", lambda n: n >= 1, "reason_at_least", 0, offset=1, low=1)
    link.one_of("scaling_temperature", TEMPERATURES, defaults.scaling_temperature, _float)
    link.one_of("scaling_d_k", SATURATION_D_KS, defaults.scaling_d_k, _int)
    link.one_of("train_d_model", TRAIN_D_MODELS, defaults.train_d_model, _int)
    link.one_of("train_n_heads", TRAIN_HEADS, defaults.train_n_heads, _int)
    link.within("train_n_layers", 1, MAX_TRAIN_LAYERS, defaults.train_n_layers)
    link.one_of("train_steps", TRAIN_STEPS, defaults.train_steps, _int)
    link.within("train_seed", 0, MAX_SEED, defaults.train_seed)
    link.within("padding_count", 1, MAX_PADDING, defaults.padding_count)
    link.within("shuffle_seed", 0, MAX_SHUFFLE, defaults.shuffle_seed)
    link.integer("compare_n_heads", divisors, "reason_divisor", defaults.compare_n_heads, d_model=d_model)
    link.within("compare_seed", 0, MAX_SEED, defaults.compare_seed)
    link.within("step", 1, len(STEPS), 0, offset=1)
    # The translation is not made yet: the app fits the word, its layer and head to it.
    link.within("word", 0, MAX_WORD, defaults.word)
    link.within("word_layer", 1, max_layers, 0, offset=1)
    link.within("word_head", 1, max_heads, 0, offset=1)
    # Whether a lesson of this name exists, and how many stops it has, the app checks (ui.lessons.panel).
    link.name("lesson", LESSON_NAME)
    link.integer("lesson_stop", lambda n: n >= 1, "reason_at_least", 0, offset=1, low=1)
    return dataclasses.replace(defaults, **link.values), link.notices


def to_query_params(settings: Settings) -> dict[str, str]:
    """The link form of `settings`: only what differs from the defaults, under the link's names,
    with 1-based layers, heads, query and step. The default page's link is its address alone."""
    defaults = Settings()
    params = {}
    for name, value in dataclasses.asdict(settings).items():
        if value == getattr(defaults, name):
            continue
        if name in ONE_BASED:
            value += 1
        elif isinstance(value, bool):
            value = int(value)
        params[link_name(name)] = str(value)
    return params
