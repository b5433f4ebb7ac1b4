"""A torch encoder's weights under torch's names: read safely from a `torch.save` file, recognised
by their names and shapes, and copied into an `Encoder` (`from_state_dict`) or out of one (`to_torch`).

Two kinds of encoder share these names, each saved as a whole stack or one layer of it:

- `torch.nn.TransformerEncoder` / `TransformerEncoderLayer`, post-LN or pre-LN;
- an encoder without LayerNorm (self_attn, linear1, linear2 and residual sums, as the source
  article builds it): `nn.MultiheadAttention` as `self_attn`, then `linear1` and `linear2`,
  with a residual sum around each.

A `state_dict` (weights without the model) is recognised by its parameter names, which are
torch's for both kinds (an encoder without LayerNorm lacks `norm1` and `norm2`). It does not say how many heads
the model has, nor (for torch's layer) whether it is post-LN or pre-LN, nor the activation:
`state_dict_layout` reads what the names and shapes say, and the caller chooses the rest
(`from_state_dict`). A live module is read by `encoder.torch_import`, which builds on this one.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from encoder.config import ACTIVATIONS, EncoderConfig
from encoder.errors import EncoderError
from encoder.model import Encoder


class UnsupportedModelError(EncoderError, ValueError):
    """The module is not a variant of the torch encoder this project can reproduce.

    `code` names the common refusals of a file ("empty", "foreign_class", "unreadable",
    "state_dict", "not_module", "state_dict_names", "state_dict_shape", "forward_differs",
    "forward_failed"), with `details` to fill in; any other refusal is "unsupported", its
    English message in `details["reason"]` (it names torch's own classes and arguments,
    which read the same in every language).
    """

    def __init__(self, message: str, code: str = "unsupported", **details: str) -> None:
        if code == "unsupported":
            details = {"reason": message, **details}
        super().__init__(message, code=code, **details)


# Everything a pickled nn.TransformerEncoder refers to, and nothing else: `torch.load` with
# weights_only=True and this allowlist cannot run code from the file, unlike a plain
# `torch.load`, which would execute whatever the pickle says. A state_dict needs none of them.
SAFE_TORCH_GLOBALS = (
    nn.TransformerEncoder,
    nn.TransformerEncoderLayer,
    nn.MultiheadAttention,
    nn.modules.linear.NonDynamicallyQuantizableLinear,
    nn.Linear,
    nn.LayerNorm,
    nn.Dropout,
    nn.ModuleList,
    nn.ReLU,
    nn.GELU,
    F.relu,
    F.gelu,
)


def read_torch_file(data: bytes) -> nn.Module | dict[str, torch.Tensor]:
    """What a `torch.save` file holds, without trusting the file: a TransformerEncoder (or
    layer), or a state_dict (names to tensors).

    Only tensors and the classes in SAFE_TORCH_GLOBALS may appear in it; anything else
    (a custom class, arbitrary code) is refused with `UnsupportedModelError`.
    """
    if not data:
        raise UnsupportedModelError("the file is empty", "empty")
    try:
        with torch.serialization.safe_globals(list(SAFE_TORCH_GLOBALS)):
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # a user's file can fail to parse in any way: each is a refusal
        raise _refusal(error) from error
    if isinstance(loaded, nn.Module):
        return loaded
    if isinstance(loaded, dict) and loaded and all(isinstance(t, torch.Tensor) for t in loaded.values()):
        return dict(loaded)
    kind = type(loaded).__name__
    raise UnsupportedModelError(
        f"the file holds an object of type {kind}, not a model: save the model with torch.save(model, f) "
        "or its weights with torch.save(model.state_dict(), f)",
        "not_module",
        kind=kind,
    )


def load_torch_file(data: bytes) -> nn.Module:
    """A `torch.save`d TransformerEncoder (or layer) from a file's bytes (see `read_torch_file`);
    a state_dict is refused here: it goes to `from_state_dict`, with the head count."""
    loaded = read_torch_file(data)
    if isinstance(loaded, dict):
        raise UnsupportedModelError(
            "the file holds a state_dict (the weights without the model): read it with read_torch_file "
            "and encoder.from_state_dict, which asks for the head count",
            "state_dict",
        )
    return loaded


# PyTorch's weights-only unpickler names the first class it refused to load.
_FOREIGN_CLASS = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _refusal(error: Exception) -> UnsupportedModelError:
    """A plain refusal for a file torch.load could not read safely (its own message is long,
    advises options that do not apply here, and carries terminal colour codes)."""
    foreign = _FOREIGN_CLASS.search(str(error))
    if isinstance(error, pickle.UnpicklingError) and foreign:
        name = foreign.group(1)
        return UnsupportedModelError(
            f"the file contains {name}, which is not one of the torch.nn modules a TransformerEncoder is made of: "
            "save the encoder's weights instead, torch.save(model.state_dict(), f), or torch's encoder itself, "
            "torch.save(model.encoder, f) where model.encoder is the nn.TransformerEncoder",
            "foreign_class",
            name=name,
        )
    return UnsupportedModelError(
        "the file is not a model saved with torch.save(model, f): PyTorch cannot read it", "unreadable"
    )


# --- a state_dict: what its names and shapes say ---------------------------------------------------

# One layer's parameters under torch's names, which an encoder without LayerNorm shares (its submodules
# are called as torch's are) but for norm1 and norm2. Biases may be absent (bias=False).
ATTENTION_NAMES = ("self_attn.in_proj_weight", "self_attn.out_proj.weight")
FFN_NAMES = ("linear1.weight", "linear2.weight")
NORM_NAMES = ("norm1.weight", "norm2.weight")
BIAS_OF = {
    "self_attn.in_proj_weight": "self_attn.in_proj_bias",
    "self_attn.out_proj.weight": "self_attn.out_proj.bias",
    "linear1.weight": "linear1.bias",
    "linear2.weight": "linear2.bias",
    "norm1.weight": "norm1.bias",
    "norm2.weight": "norm2.bias",
}
# Each of torch's weights and the module of ours that holds it (`Encoder`'s layer, as `EncoderLayer`).
OURS = {
    "self_attn.in_proj_weight": "qkv_proj",
    "self_attn.out_proj.weight": "out_proj",
    "linear1.weight": "ffn_in",
    "linear2.weight": "ffn_out",
    "norm1.weight": "norm1",
    "norm2.weight": "norm2",
}
FINAL_NORM_NAMES = ("norm.weight", "norm.bias")
# What a refusal lists as the names that were expected: the first layer's, torch's (the sentence
# around them says the rest in the reader's language).
EXPECTED_NAMES = ", ".join(f"layers.0.{name}" for name in ATTENTION_NAMES + FFN_NAMES + NORM_NAMES)
_LAYER_KEY = re.compile(r"layers\.(\d+)\.(.+)")
MAX_NAMES_SHOWN = 4  # a refusal names this many of the names it did not expect
MAX_NAME_CHARS = 80  # and each at most this long: the names are the file's, of any length


@dataclass(frozen=True)
class StateDictLayout:
    """What a state_dict's names and shapes say of the encoder that saved it."""

    architecture: str  # "torch" (norm1 and norm2 in every layer) or "no_layer_norm" (neither)
    d_model: int
    d_ff: int
    n_layers: int
    final_norm: bool  # a LayerNorm after the last layer (`norm.weight`)
    single_layer: bool  # one layer's names, without the `layers.N.` prefix

    @property
    def layer_norms(self) -> tuple[str, ...]:
        """The placements the names allow: post- or pre-LN for torch's layer, none for an encoder without LayerNorm."""
        return ("post", "pre") if self.architecture == "torch" else ("none",)


def _names_refusal(names: list[str]) -> UnsupportedModelError:
    cut = [name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…" for name in names]
    shown = ", ".join(cut[:MAX_NAMES_SHOWN]) + (", …" if len(names) > MAX_NAMES_SHOWN else "")
    return UnsupportedModelError(
        f"its parameter names are not those of a torch.nn.TransformerEncoder or of an encoder without LayerNorm "
        f"({shown}). Expected names such as {EXPECTED_NAMES} (each with its .bias; an encoder without LayerNorm "
        "has no norm1 and norm2), then layers.1. and on, and norm.weight for a final LayerNorm",
        "state_dict_names",
        names=shown,
        expected=EXPECTED_NAMES,
    )


def _layer_groups(state: Mapping[str, torch.Tensor]) -> tuple[list[dict[str, torch.Tensor]], bool, bool]:
    """The state split into layers (their names without `layers.N.`), whether it is one layer
    alone, and whether it has a final norm; names of neither are refused."""
    if not any(name.startswith("layers.") for name in state):
        return [dict(state)], True, False
    groups: dict[int, dict[str, torch.Tensor]] = {}
    unexpected = []
    for name, tensor in state.items():
        match = _LAYER_KEY.fullmatch(name)
        if match:
            groups.setdefault(int(match.group(1)), {})[match.group(2)] = tensor
        elif name not in FINAL_NORM_NAMES:
            unexpected.append(name)
    if unexpected:
        raise _names_refusal(unexpected)
    if sorted(groups) != list(range(len(groups))):
        missing = [f"layers.{i}." for i in range(max(groups) + 1) if i not in groups]
        raise _names_refusal(missing)
    final = "norm.weight" in state
    if "norm.bias" in state and not final:
        raise _names_refusal(["norm.bias"])
    return [groups[i] for i in range(len(groups))], False, final


def _check_shape(name: str, tensor: torch.Tensor, expected: tuple[int | str, ...]) -> None:
    if tuple(tensor.shape) != expected:
        raise UnsupportedModelError(
            f"{name} has shape {tuple(tensor.shape)}, but the other weights make it {expected}",
            "state_dict_shape",
            name=name,
            shape=str(tuple(tensor.shape)),
            expected=str(expected),
        )


def state_dict_layout(state: Mapping[str, torch.Tensor]) -> StateDictLayout:
    """Which encoder a state_dict is, by its names (see the module docstring), with the shape its
    tensors give; refused with the names that were expected when it is neither kind."""
    layers, single, final = _layer_groups(state)
    architectures = set()
    prefix = "" if single else "layers.{i}."
    for i, layer in enumerate(layers):
        architecture = "torch" if any(name in layer for name in NORM_NAMES) else "no_layer_norm"
        required = ATTENTION_NAMES + FFN_NAMES + (NORM_NAMES if architecture == "torch" else ())
        allowed = {*required, *(BIAS_OF[name] for name in required)}
        # What is wrong: the names that should not be there, else those missing.
        wrong = [name for name in layer if name not in allowed] or [name for name in required if name not in layer]
        if wrong:
            raise _names_refusal([prefix.format(i=i) + name for name in wrong])
        architectures.add(architecture)
    if len(architectures) > 1:
        raise UnsupportedModelError("some layers have LayerNorms and others not: all layers must be of one kind")
    for name in ("self_attn.out_proj.weight", "linear1.weight"):  # the two that give the shape
        if layers[0][name].ndim != 2:
            _check_shape(prefix.format(i=0) + name, layers[0][name], ("d_out", "d_in"))
    d_model = layers[0]["self_attn.out_proj.weight"].shape[0]
    d_ff = layers[0]["linear1.weight"].shape[0]
    vector = (d_model,)
    shapes = {
        "self_attn.in_proj_weight": (3 * d_model, d_model),
        "self_attn.in_proj_bias": (3 * d_model,),
        "self_attn.out_proj.weight": (d_model, d_model),
        "self_attn.out_proj.bias": vector,
        "linear1.weight": (d_ff, d_model),
        "linear1.bias": (d_ff,),
        "linear2.weight": (d_model, d_ff),
        "linear2.bias": vector,
        "norm1.weight": vector,
        "norm1.bias": vector,
        "norm2.weight": vector,
        "norm2.bias": vector,
    }
    for i, layer in enumerate(layers):
        for name, tensor in layer.items():
            _check_shape(prefix.format(i=i) + name, tensor, shapes[name])
    for name in FINAL_NORM_NAMES:
        if name in state:
            _check_shape(name, state[name], vector)
    return StateDictLayout(architectures.pop(), d_model, d_ff, len(layers), final, single)


def _bias_or_zero(state: Mapping[str, torch.Tensor], name: str, size: int) -> torch.Tensor:
    # bias=False leaves a bias out: a zero shift.
    return state[name] if name in state else torch.zeros(size)


def config_and_state_from_state_dict(
    state: Mapping[str, torch.Tensor],
    *,
    n_heads: int,
    layer_norm: str | None = None,
    activation: str = "relu",
    layer_norm_eps: float = 1e-5,
) -> tuple[EncoderConfig, dict[str, torch.Tensor]]:
    """The EncoderConfig and an `Encoder` state dict for a torch-named state_dict. What the names
    cannot say is given: `n_heads`, `layer_norm` ("post" or "pre" for torch's layer, whose default is
    post; "none", the default, for an encoder without LayerNorm), `activation` and the LayerNorms' epsilon."""
    layout = state_dict_layout(state)
    layer_norm = layer_norm or layout.layer_norms[0]
    if layer_norm not in layout.layer_norms:
        raise UnsupportedModelError(
            f"layer_norm={layer_norm!r} does not fit these weights: "
            f"{'their layers have LayerNorms' if layout.architecture == 'torch' else 'their layers have no LayerNorm'}"
            f", so it is one of {', '.join(layout.layer_norms)}"
        )
    if activation not in ACTIVATIONS:
        raise UnsupportedModelError(f"activation {activation!r} is not supported: use relu or (exact) gelu")
    config = EncoderConfig(
        d_model=layout.d_model,
        n_heads=n_heads,
        n_layers=layout.n_layers,
        d_ff=layout.d_ff,
        layer_norm=layer_norm,
        activation=activation,
        layer_norm_eps=layer_norm_eps,
        final_norm=layout.final_norm,
    )
    weights = ATTENTION_NAMES + FFN_NAMES + (NORM_NAMES if layout.architecture == "torch" else ())
    ours: dict[str, torch.Tensor] = {}
    for i in range(layout.n_layers):
        theirs = "" if layout.single_layer else f"layers.{i}."
        for name in weights:
            weight = state[theirs + name]
            ours[f"layers.{i}.{OURS[name]}.weight"] = weight
            ours[f"layers.{i}.{OURS[name]}.bias"] = _bias_or_zero(state, theirs + BIAS_OF[name], weight.shape[0])
    if layout.final_norm:
        ours["final_norm.weight"] = state["norm.weight"]
        ours["final_norm.bias"] = _bias_or_zero(state, "norm.bias", layout.d_model)
    return config, {name: t.detach().to("cpu", torch.float32) for name, t in ours.items()}


def from_state_dict(
    state: Mapping[str, torch.Tensor],
    *,
    n_heads: int,
    layer_norm: str | None = None,
    activation: str = "relu",
    layer_norm_eps: float = 1e-5,
    device: str | torch.device | None = None,
) -> Encoder:
    """An Encoder holding the weights of the `state_dict()` of a torch encoder or of an encoder without LayerNorm.
    The names say which of the two it is and the tensors its shape; what they cannot say is
    given: the head count, post- or pre-LN for torch's layer (default post, torch's default),
    the activation and the LayerNorms' epsilon (torch's defaults)."""
    config, weights = config_and_state_from_state_dict(
        state, n_heads=n_heads, layer_norm=layer_norm, activation=activation, layer_norm_eps=layer_norm_eps
    )
    return Encoder(config, device=device, weights=weights)


def to_torch(model: Encoder) -> nn.TransformerEncoder:
    """A `torch.nn.TransformerEncoder` (batch_first, eval mode) holding `model`'s layers' weights:
    what a trained model saves as (`torch.save`), so that `load_torch_file` and `encoder.from_torch`
    read it back. The front end (embeddings, positions) is not part of torch's module; a model
    without LayerNorm has no torch module to be (save its state_dict instead)."""
    config = model.config
    if config.layer_norm == "none":
        raise UnsupportedModelError(
            "a model without LayerNorm is not a torch.nn.TransformerEncoder: save its state_dict instead"
        )
    layer = nn.TransformerEncoderLayer(
        config.d_model,
        config.n_heads,
        dim_feedforward=config.d_ff,
        dropout=0.0,
        activation=config.activation,
        layer_norm_eps=config.layer_norm_eps,
        batch_first=True,
        norm_first=config.layer_norm == "pre",
    )
    final = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if model.final_norm is not None else None
    module = nn.TransformerEncoder(layer, config.n_layers, norm=final, enable_nested_tensor=False)
    state = {}
    for index, ours in enumerate(model.layers):
        for name, mine in OURS.items():
            state[f"layers.{index}.{name}"] = getattr(ours, mine).weight
            state[f"layers.{index}.{BIAS_OF[name]}"] = getattr(ours, mine).bias
    if final is not None:
        state |= {"norm.weight": model.final_norm.weight, "norm.bias": model.final_norm.bias}
    module.load_state_dict({name: tensor.detach().cpu() for name, tensor in state.items()})
    return module.eval()
