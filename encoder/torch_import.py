"""Read a `torch.nn.TransformerEncoder` (or one `TransformerEncoderLayer`) into our layout.

This is what lets a user inspect the model the classic tutorial code builds: the
configuration is read off the modules and the weights are copied unchanged, so the
imported encoder computes the same function, with every intermediate kept.
"""

from __future__ import annotations

import io
import pickle
import re
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from encoder.config import EncoderConfig
from encoder.errors import EncoderError

if TYPE_CHECKING:
    from encoder.model import Encoder


class UnsupportedModelError(EncoderError, ValueError):
    """The module is not a variant of the torch encoder this project can reproduce.

    `code` names the common refusals of a file ("empty", "foreign_class", "unreadable",
    "state_dict", "not_module"), with `details` to fill in; any other refusal is
    "unsupported", its English message in `details["reason"]` (it names torch's own classes
    and arguments, which read the same in every language).
    """

    def __init__(self, message: str, code: str = "unsupported", **details: str) -> None:
        if code == "unsupported":
            details = {"reason": message, **details}
        super().__init__(message, code=code, **details)


# Everything a pickled nn.TransformerEncoder refers to, and nothing else: `torch.load` with
# weights_only=True and this allowlist cannot run code from the file, unlike a plain
# `torch.load`, which would execute whatever the pickle says.
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


def load_torch_file(data: bytes) -> nn.Module:
    """A `torch.save`d TransformerEncoder (or layer) from a file's bytes, without trusting the file.

    Only tensors and the classes in SAFE_TORCH_GLOBALS may appear in it; anything else
    (a custom class, arbitrary code) is refused with `UnsupportedModelError`.
    """
    if not data:
        raise UnsupportedModelError("the file is empty", "empty")
    try:
        with torch.serialization.safe_globals(list(SAFE_TORCH_GLOBALS)):
            module = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # a user's file can fail to parse in any way: each is a refusal
        raise _refusal(error) from error
    if isinstance(module, dict):
        raise UnsupportedModelError(
            "the file holds a state_dict (the weights without the model): save the whole model with "
            "torch.save(model, f)",
            "state_dict",
        )
    if not isinstance(module, nn.Module):
        kind = type(module).__name__
        raise UnsupportedModelError(
            f"the file holds an object of type {kind}, not a model: save the whole model with torch.save(model, f)",
            "not_module",
            kind=kind,
        )
    return module


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
            "save the encoder itself, for example torch.save(model.encoder, f) where model.encoder is the "
            "nn.TransformerEncoder",
            "foreign_class",
            name=name,
        )
    return UnsupportedModelError(
        "the file is not a model saved with torch.save(model, f): PyTorch cannot read it", "unreadable"
    )


def _activation_name(layer: nn.TransformerEncoderLayer) -> str:
    activation = layer.activation
    if activation is F.relu or isinstance(activation, nn.ReLU):
        return "relu"
    if activation is F.gelu or (isinstance(activation, nn.GELU) and activation.approximate == "none"):
        return "gelu"
    raise UnsupportedModelError(f"activation {activation!r} is not supported: use relu or (exact) gelu")


def _layer_settings(layer: nn.TransformerEncoderLayer) -> dict[str, object]:
    attention = layer.self_attn
    if not attention._qkv_same_embed_dim or attention.bias_k is not None or attention.add_zero_attn:
        raise UnsupportedModelError(
            "self-attention with separate kdim/vdim, add_bias_kv or add_zero_attn is not supported"
        )
    for norm in (layer.norm1, layer.norm2):
        if not isinstance(norm, nn.LayerNorm):
            raise UnsupportedModelError(f"norm {type(norm).__name__} is not supported: use nn.LayerNorm")
    return {
        "d_model": attention.embed_dim,
        "n_heads": attention.num_heads,
        "d_ff": layer.linear1.out_features,
        "norm_first": bool(layer.norm_first),
        "activation": _activation_name(layer),
        "layer_norm_eps": float(layer.norm1.eps),
    }


def _layer_norm_state(norm: nn.LayerNorm, prefix: str) -> dict[str, torch.Tensor]:
    # elementwise_affine=False or bias=False leave None: the identity scale / zero shift.
    d = norm.normalized_shape[0]
    weight = norm.weight if norm.weight is not None else torch.ones(d)
    bias = norm.bias if norm.bias is not None else torch.zeros(d)
    return {f"{prefix}.weight": weight, f"{prefix}.bias": bias}


def _linear_state(weight: torch.Tensor, bias: torch.Tensor | None, prefix: str) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": weight,
        f"{prefix}.bias": bias if bias is not None else torch.zeros(weight.shape[0]),
    }


def _layer_state(layer: nn.TransformerEncoderLayer, prefix: str) -> dict[str, torch.Tensor]:
    attention = layer.self_attn
    return {
        **_linear_state(attention.in_proj_weight, attention.in_proj_bias, f"{prefix}.qkv_proj"),
        **_linear_state(attention.out_proj.weight, attention.out_proj.bias, f"{prefix}.out_proj"),
        **_linear_state(layer.linear1.weight, layer.linear1.bias, f"{prefix}.ffn_in"),
        **_linear_state(layer.linear2.weight, layer.linear2.bias, f"{prefix}.ffn_out"),
        **_layer_norm_state(layer.norm1, f"{prefix}.norm1"),
        **_layer_norm_state(layer.norm2, f"{prefix}.norm2"),
    }


def config_and_state_from_torch(module: nn.Module) -> tuple[EncoderConfig, dict[str, torch.Tensor]]:
    """The EncoderConfig and an `Encoder` state dict equivalent to `module`."""
    if isinstance(module, nn.TransformerEncoderLayer):
        layers, final_norm = [module], None
    elif isinstance(module, nn.TransformerEncoder):
        layers, final_norm = list(module.layers), module.norm
    else:
        raise UnsupportedModelError(
            f"expected torch.nn.TransformerEncoder or TransformerEncoderLayer, got {type(module).__name__}"
        )
    if not all(isinstance(layer, nn.TransformerEncoderLayer) for layer in layers):
        raise UnsupportedModelError("every layer must be a torch.nn.TransformerEncoderLayer")
    settings = [_layer_settings(layer) for layer in layers]
    if any(s != settings[0] for s in settings[1:]):
        raise UnsupportedModelError("all layers must share d_model, heads, d_ff, norm order, activation and eps")
    if final_norm is not None and not isinstance(final_norm, nn.LayerNorm):
        raise UnsupportedModelError(f"final norm {type(final_norm).__name__} is not supported: use nn.LayerNorm")

    config = EncoderConfig(n_layers=len(layers), final_norm=final_norm is not None, **settings[0])
    state: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(layers):
        state.update(_layer_state(layer, f"layers.{i}"))
    if final_norm is not None:
        state.update(_layer_norm_state(final_norm, "final_norm"))
    return config, {name: t.detach().to("cpu", torch.float32) for name, t in state.items()}


def to_torch(model: Encoder) -> nn.TransformerEncoder:
    """A `torch.nn.TransformerEncoder` (batch_first, eval mode) holding `model`'s layers' weights:
    what a trained model saves as (`torch.save`), so that `load_torch_file` and `Encoder.from_torch`
    read it back. The front end (embeddings, positions) is not part of torch's module."""
    config = model.config
    layer = nn.TransformerEncoderLayer(
        config.d_model,
        config.n_heads,
        dim_feedforward=config.d_ff,
        dropout=0.0,
        activation=config.activation,
        layer_norm_eps=config.layer_norm_eps,
        batch_first=True,
        norm_first=config.norm_first,
    )
    final = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if model.final_norm is not None else None
    module = nn.TransformerEncoder(layer, config.n_layers, norm=final, enable_nested_tensor=False)
    state = {}
    for index, ours in enumerate(model.layers):
        prefix = f"layers.{index}"
        state |= {
            f"{prefix}.self_attn.in_proj_weight": ours.qkv_proj.weight,
            f"{prefix}.self_attn.in_proj_bias": ours.qkv_proj.bias,
            f"{prefix}.self_attn.out_proj.weight": ours.out_proj.weight,
            f"{prefix}.self_attn.out_proj.bias": ours.out_proj.bias,
        }
        for theirs, mine in (("linear1", "ffn_in"), ("linear2", "ffn_out"), ("norm1", "norm1"), ("norm2", "norm2")):
            state[f"{prefix}.{theirs}.weight"] = getattr(ours, mine).weight
            state[f"{prefix}.{theirs}.bias"] = getattr(ours, mine).bias
    if final is not None:
        state |= {"norm.weight": model.final_norm.weight, "norm.bias": model.final_norm.bias}
    module.load_state_dict({name: tensor.detach().cpu() for name, tensor in state.items()})
    return module.eval()
