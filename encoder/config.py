"""The encoder's configuration and the size caps that keep a shared server responsive."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from encoder.errors import EncoderError

Activation = Literal["relu", "gelu"]
Positional = Literal["sinusoidal", "learned", "none"]
LayerNormPlacement = Literal["post", "pre", "none"]

ACTIVATIONS: tuple[str, ...] = ("relu", "gelu")
POSITIONALS: tuple[str, ...] = ("sinusoidal", "learned", "none")
# Where each layer normalises: after each residual sum (post-LN, the original Transformer and
# torch's default), before each sublayer (pre-LN, torch's norm_first=True), or nowhere: an
# encoder without LayerNorm (self_attn, linear1, linear2 and residual sums, as the source article
# builds it).
LAYER_NORMS: tuple[str, ...] = ("post", "pre", "none")


@dataclass(frozen=True)
class Limits:
    """The largest run the app accepts: the single place these caps are defined.

    A public server shares two CPU cores between every visitor, so the largest allowed
    run (max_tokens tokens through max_layers layers of max_d_model / max_heads with
    max_d_ff) must finish in a few seconds there; `bench/largest_run.py` measures it.
    The caps also bound what the browser has to draw: max_layers x max_heads attention
    maps of max_tokens x max_tokens cells.
    """

    max_tokens: int = 128  # a long paragraph; heatmaps beyond this are unreadable anyway
    max_d_model: int = 1024  # BERT-large width
    max_heads: int = 16  # BERT-large head count
    max_layers: int = 12  # BERT-base depth
    max_d_ff: int = 4096  # 4 x max_d_model, the usual feed-forward ratio


LIMITS = Limits()


# What a configuration value must be, by rule: the English of `ConfigError.allowed`. An
# interface words the same rule from `details["rule"]` and the rule's own details.
RULES: dict[str, str] = {
    "integer_range": "must be an integer from {low} to {high}",
    "range": "must be from {low} to {high}",
    "divides": "must divide d_model={d_model}; allowed: {allowed}",
    "boolean": "must be True or False",
    "one_of": "must be one of {options}",
    "name": "must be None or a non-empty string",
    "number_range": "must be a number from {low} to {high}",
    "positive_up_to": "must be a number in (0, {high}]",
    "checkpoint_layers": "must be from 1 to {high}, the checkpoint's number of layers",
}


class ConfigError(EncoderError, ValueError):
    """An invalid configuration value: `field`, `value` and the `rule` it breaks (a key of
    RULES), with that rule's values, all in `details`; `allowed` is the rule in English."""

    code = "config"

    def __init__(self, field: str, value: Any, rule: str, **rule_details: Any) -> None:
        self.field = field
        self.value = value
        self.allowed = RULES[rule].format(**rule_details)
        super().__init__(
            f"{field}={value!r} is invalid: {self.allowed}", field=field, value=value, rule=rule, **rule_details
        )


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    # bool is an int subclass, but EncoderConfig(d_model=True) is a bug, not a width of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, value, "integer_range", low=low, high=high)
    if not low <= value <= high:
        raise ConfigError(name, value, "range", low=low, high=high)


@dataclass(frozen=True)
class EncoderConfig:
    """Shape and options of a Transformer encoder.

    Frozen and hashable so that it can key a cache: two equal configs give identical
    models, because every weight is drawn from `seed` (or, with `source`, read from the
    same checkpoint).
    """

    d_model: int = 64  # small enough to read a vector, large enough for 8 heads
    n_heads: int = 4  # several heads to compare, each with d_head = 16
    n_layers: int = 2  # shows the stack without burying the first layer
    d_ff: int | None = None  # None means 4 * d_model, the ratio "Attention Is All You Need" uses
    seed: int = 0  # every random weight and embedding derives from it
    layer_norm: LayerNormPlacement = "post"  # the original Transformer's and torch's default
    activation: Activation = "relu"  # the original Transformer's; BERT uses "gelu"
    positional: Positional = "sinusoidal"  # the original Transformer's fixed encoding
    layer_norm_eps: float = 1e-5  # torch.nn.LayerNorm's default
    final_norm: bool = False  # a LayerNorm after the last layer, as pre-LN stacks often have
    causal: bool = False  # decoder-style: no token attends to a later one
    scale_scores: bool = True  # divide Q·Kᵀ by √d_k, as the paper does; False shows why it must
    temperature: float = 1.0  # the scaled scores are divided by this before the softmax
    # Where trained weights came from, as `encoder.load_pretrained` takes it ("minilm", a
    # folder's absolute path, a hub id); None means drawn from `seed`. Part of equality and
    # the hash, so a checkpoint never shares a cache entry with a random model of its shape.
    source: str | None = None
    limits: Limits = field(default=LIMITS, repr=False, compare=False)

    def __post_init__(self) -> None:
        lim = self.limits
        _check_int("d_model", self.d_model, 1, lim.max_d_model)
        _check_int("n_heads", self.n_heads, 1, lim.max_heads)
        _check_int("n_layers", self.n_layers, 1, lim.max_layers)
        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, lim.max_heads + 1) if self.d_model % h == 0]
            raise ConfigError("n_heads", self.n_heads, "divides", d_model=self.d_model, allowed=divisors)
        if self.d_ff is None:
            # A frozen dataclass resolves its own default through object.__setattr__.
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        _check_int("d_ff", self.d_ff, 1, lim.max_d_ff)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        for name in ("final_norm", "causal", "scale_scores"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "boolean")
        if self.activation not in ACTIVATIONS:
            raise ConfigError("activation", self.activation, "one_of", options=ACTIVATIONS)
        if self.positional not in POSITIONALS:
            raise ConfigError("positional", self.positional, "one_of", options=POSITIONALS)
        if self.layer_norm not in LAYER_NORMS:
            raise ConfigError("layer_norm", self.layer_norm, "one_of", options=LAYER_NORMS)
        if self.source is not None and (not isinstance(self.source, str) or not self.source):
            raise ConfigError("source", self.source, "name")
        temperature = self.temperature
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or not 0.01 <= temperature <= 100
        ):
            raise ConfigError("temperature", temperature, "number_range", low=0.01, high=100)
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or not 0 < eps <= 0.1:
            raise ConfigError("layer_norm_eps", eps, "positive_up_to", high=0.1)

    @property
    def d_head(self) -> int:
        """d_k in the paper: the width of one head's queries, keys and values."""
        return self.d_model // self.n_heads
