"""Import a live torch module into an `Encoder`: torch's encoder, or one without LayerNorm.

This is what lets a user inspect the model the classic tutorial code builds. Two kinds of
encoder are recognised, each as a whole stack or one layer of it:

- `torch.nn.TransformerEncoder` / `TransformerEncoderLayer`, post-LN or pre-LN;
- an encoder without LayerNorm (self_attn, linear1, linear2 and residual sums, as the source
  article builds it): `nn.MultiheadAttention` as `self_attn`, then `linear1` and `linear2`,
  with a residual sum around each, whatever its class is called; its stack holds the layers
  in a `nn.ModuleList`.

A module is recognised by its submodules, not its class name. Its forward is then the one
thing not read off the modules: for any class but torch's own, the imported encoder is run
beside the module's own forward on a test input, and the import is refused unless the two
agree, so a look-alike that computes something else never shows made-up numbers. Its weights
go through the same names and checks as a state_dict's (`encoder.state_dict`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import product

import torch
import torch.nn.functional as F
from torch import nn

from encoder.config import ACTIVATIONS
from encoder.model import Encoder
from encoder.state_dict import (
    MAX_NAMES_SHOWN,
    UnsupportedModelError,
    config_and_state_from_state_dict,
    state_dict_layout,
)


@dataclass(frozen=True)
class _LayerSettings:
    """What one layer's modules say; a tuple holds every value still possible."""

    n_heads: int
    layer_norms: tuple[str, ...]
    activations: tuple[str, ...]
    layer_norm_eps: float
    batch_first: bool


def _activation_names(layer: nn.Module) -> tuple[str, ...]:
    """The activation a layer names (`activation`), or both when it names none (a hand-written
    layer may call F.relu in its forward, which no attribute shows: the forward check settles it)."""
    if not hasattr(layer, "activation"):
        return ACTIVATIONS
    activation = layer.activation
    if activation is F.relu or isinstance(activation, nn.ReLU):
        return ("relu",)
    if activation is F.gelu or (isinstance(activation, nn.GELU) and activation.approximate == "none"):
        return ("gelu",)
    raise UnsupportedModelError(f"activation {activation!r} is not supported: use relu or (exact) gelu")


def _is_layer(module: nn.Module) -> bool:
    """Torch's layer or one without LayerNorm: self-attention and the feed-forward's two linears."""
    return (
        isinstance(getattr(module, "self_attn", None), nn.MultiheadAttention)
        and isinstance(getattr(module, "linear1", None), nn.Linear)
        and isinstance(getattr(module, "linear2", None), nn.Linear)
    )


def _layer_settings(layer: nn.Module) -> _LayerSettings:
    attention = layer.self_attn
    if not attention._qkv_same_embed_dim or attention.bias_k is not None or attention.add_zero_attn:
        raise UnsupportedModelError(
            "self-attention with separate kdim/vdim, add_bias_kv or add_zero_attn is not supported"
        )
    norms = [getattr(layer, name, None) for name in ("norm1", "norm2")]
    for norm in norms:
        if norm is not None and not isinstance(norm, nn.LayerNorm):
            raise UnsupportedModelError(f"norm {type(norm).__name__} is not supported: use nn.LayerNorm")
    if all(norm is None for norm in norms):
        layer_norms, eps = ("none",), 1e-5
    elif any(norm is None for norm in norms):
        raise UnsupportedModelError("a layer with norm1 must have norm2 too, and the other way round")
    else:
        first = getattr(layer, "norm_first", None)
        layer_norms = ("post", "pre") if not isinstance(first, bool) else ("pre",) if first else ("post",)
        eps = float(norms[0].eps)
    return _LayerSettings(attention.num_heads, layer_norms, _activation_names(layer), eps, attention.batch_first)


def _stack_parts(module: nn.Module) -> tuple[list[nn.Module], nn.Module | None]:
    """The layers and the final norm (or None) of a stack, or of one layer alone."""
    if _is_layer(module):
        return [module], None
    lists = [child for child in module.children() if isinstance(child, nn.ModuleList)]
    if len(lists) == 1 and len(lists[0]) and all(_is_layer(layer) for layer in lists[0]):
        norm = getattr(module, "norm", None)
        if norm is not None and not isinstance(norm, nn.LayerNorm):
            raise UnsupportedModelError(f"final norm {type(norm).__name__} is not supported: use nn.LayerNorm")
        return list(lists[0]), norm
    raise UnsupportedModelError(
        f"expected torch.nn.TransformerEncoder or TransformerEncoderLayer, or a module of the same parts "
        f"(self_attn, linear1, linear2; its layers in a ModuleList), got {type(module).__name__}"
    )


def _torch_named_state(layers: list[nn.Module], norm: nn.Module | None, whole: nn.Module) -> dict[str, torch.Tensor]:
    """The stack's weights under torch's names (`layers.N.` and `norm.`); refused when the module
    holds parameters in other places (an embedding, a classifier), which this import would drop."""
    state: dict[str, torch.Tensor] = OrderedDict()
    for i, layer in enumerate(layers):
        state |= {f"layers.{i}.{name}": tensor for name, tensor in layer.state_dict().items()}
        for name in ("norm1", "norm2"):
            state |= _affine_free(getattr(layer, name, None), f"layers.{i}.{name}")
    if norm is not None:
        state |= {f"norm.{name}": tensor for name, tensor in norm.state_dict().items()}
        state |= _affine_free(norm, "norm")
    counted = sum(t.numel() for t in state.values())
    total = sum(p.numel() for p in whole.parameters())
    if counted != total:
        covered = {id(p) for part in [*layers, *([norm] if norm is not None else [])] for p in part.parameters()}
        extra = [name for name, p in whole.named_parameters() if id(p) not in covered]
        raise UnsupportedModelError(
            f"the module holds parameters outside its layers ({', '.join(extra[:MAX_NAMES_SHOWN])}): pass the "
            "encoder alone"
        )
    if len(layers) == 1 and whole is layers[0]:
        state = OrderedDict((name.removeprefix("layers.0."), t) for name, t in state.items())
    return state


def _affine_free(norm: nn.Module | None, prefix: str) -> dict[str, torch.Tensor]:
    """A LayerNorm(elementwise_affine=False) has no weight to save: a unit scale stands in."""
    if isinstance(norm, nn.LayerNorm) and norm.weight is None:
        return {f"{prefix}.weight": torch.ones(norm.normalized_shape)}
    return {}


def _is_torch_own(module: nn.Module, layers: list[nn.Module]) -> bool:
    """torch's own classes, whose forward this encoder is known to reproduce (tests/encoder)."""
    own_stack = module is layers[0] or type(module) is nn.TransformerEncoder
    return own_stack and all(type(layer) is nn.TransformerEncoderLayer for layer in layers)


PROBE_TOKENS = 5  # the forward check's test input: a few tokens, every query sees several keys
FORWARD_TOLERANCE = 1e-4  # relative: float32 rounding is far below it, any other function far above


def _probe_output(module: nn.Module, d_model: int, batch_first: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, module(x)) for a fixed random x (n, d_model), run as one batch in the module's own layout,
    in eval mode (dropout off), without touching the module's training flags for good."""
    x = torch.randn(PROBE_TOKENS, d_model, generator=torch.Generator().manual_seed(0))  # (n, d_model)
    parameter = next(module.parameters())
    batched = (x[None] if batch_first else x[:, None]).to(parameter)  # (1, n, d) or (n, 1, d)
    modes = {part: part.training for part in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            out = module(batched)
    except Exception as error:  # the user's forward may fail in any way: a refusal that names it
        raise UnsupportedModelError(
            f"its forward could not be run on a test input ({type(error).__name__}: {error})",
            "forward_failed",
            error=f"{type(error).__name__}: {error}",
        ) from error
    finally:
        for part, training in modes.items():
            part.training = training
    if not isinstance(out, torch.Tensor) or out.shape != batched.shape:
        kind = type(out).__name__ if not isinstance(out, torch.Tensor) else f"a tensor of shape {tuple(out.shape)}"
        raise UnsupportedModelError(
            f"its forward returned {kind}, not the sequence of shape {tuple(batched.shape)}: import the encoder alone",
            "forward_failed",
            error=f"{kind} ≠ {tuple(batched.shape)}",
        )
    return x, (out[0] if batch_first else out[:, 0]).to("cpu", torch.float32)


def from_torch(module: nn.Module, device: str | torch.device | None = None) -> Encoder:
    """An Encoder computing what `module` computes: torch's encoder or one without LayerNorm (see the
    module docstring), every weight copied unchanged."""
    layers, norm = _stack_parts(module)
    settings = [_layer_settings(layer) for layer in layers]
    if any(s != settings[0] for s in settings[1:]):
        raise UnsupportedModelError("all layers must share d_model, heads, d_ff, norm order, activation and eps")
    first = settings[0]
    state = _torch_named_state(layers, norm, module)
    state_dict_layout(state)  # refuses parts beyond these layers' (a decoder's cross-attention)
    candidates = list(product(first.layer_norms, first.activations))

    def build(layer_norm: str, activation: str) -> Encoder:
        config, weights = config_and_state_from_state_dict(
            state,
            n_heads=first.n_heads,
            layer_norm=layer_norm,
            activation=activation,
            layer_norm_eps=first.layer_norm_eps,
        )
        return Encoder(config, device=device, weights=weights)

    if _is_torch_own(module, layers):
        return build(*candidates[0])  # one reading: torch's own layer names its norm order and activation
    x, expected = _probe_output(module, layers[0].self_attn.embed_dim, first.batch_first)
    nearest = float("inf")
    for candidate in candidates:
        encoder = build(*candidate)
        got = encoder.trace(x).output.to("cpu")  # (n, d_model)
        difference = float((got - expected).abs().max() / expected.abs().max().clamp_min(1.0))
        if difference <= FORWARD_TOLERANCE:
            return encoder
        nearest = min(nearest, difference)
    raise UnsupportedModelError(
        f"its forward computes something other than torch's layer or one without LayerNorm (residual sums "
        f"{'with LayerNorms' if first.layer_norms != ('none',) else 'without LayerNorm'}): on a test input the "
        f"nearest reading differs by {nearest:.3g} (relative)",
        "forward_differs",
        difference=f"{nearest:.3g}",
    )
