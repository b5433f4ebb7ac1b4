"""A torch encoder's weights by name (encoder.state_dict): files read safely, state_dicts of torch's
encoder and of an encoder without LayerNorm (self_attn, linear1, linear2 and residual sums, as the
source article builds it; tests/torch_models.py), and `to_torch` back, each checked against torch.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from encoder import (
    Encoder,
    EncoderConfig,
    UnsupportedModelError,
    from_state_dict,
    load_torch_file,
    read_torch_file,
    state_dict_layout,
    to_torch,
)
from tests.torch_models import assert_close_scaled, no_layer_norm_encoder, run_unbatched, saved


@pytest.mark.parametrize(
    ("norm_first", "final_norm", "bias"),
    [(False, False, True), (True, True, True), (False, True, False)],
    ids=["post-LN", "pre-LN with a final norm", "post-LN without biases"],
)
def test_a_torch_encoders_state_dict_computes_what_the_encoder_computes(norm_first, final_norm, bias):
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(32, 4, 48, batch_first=True, norm_first=norm_first, bias=bias)
    norm = nn.LayerNorm(32, bias=bias) if final_norm else None
    reference = nn.TransformerEncoder(layer, 2, norm=norm, enable_nested_tensor=False).eval()
    state = read_torch_file(saved(reference.state_dict()))
    layout = state_dict_layout(state)
    assert (layout.architecture, layout.d_model, layout.d_ff, layout.n_layers) == ("torch", 32, 48, 2)
    assert layout.final_norm is final_norm and layout.layer_norms == ("post", "pre")
    ours = from_state_dict(state, n_heads=4, layer_norm="pre" if norm_first else "post")
    x = torch.randn(5, 32)
    with torch.no_grad():
        expected = reference(x[None])[0]
        _, weights = reference.layers[0].self_attn(
            *[reference.layers[0].norm1(x[None]) if norm_first else x[None]] * 3,
            need_weights=True,
            average_attn_weights=False,
        )
    trace = ours.trace(x)
    assert_close_scaled(trace.output, expected)
    torch.testing.assert_close(trace.layers[0].weights, weights[0], atol=1e-6, rtol=1e-5)


def test_a_no_layer_norm_state_dict_needs_only_its_head_count():
    reference = no_layer_norm_encoder(layers=2)
    state = read_torch_file(saved(reference.state_dict()))
    assert state_dict_layout(state).layer_norms == ("none",)
    x = torch.randn(4, 32)
    ours = from_state_dict(state, n_heads=4)
    assert_close_scaled(ours.trace(x).output, run_unbatched(reference, x))
    other = from_state_dict(state, n_heads=2)  # the same weights, split otherwise: other maps
    assert other.trace(x).layers[0].weights.shape[0] == 2
    assert not torch.allclose(other.trace(x).output, ours.trace(x).output)
    single = read_torch_file(saved(reference.layers[0].state_dict()))  # one layer: no layers.N. prefix
    assert state_dict_layout(single).single_layer
    assert_close_scaled(from_state_dict(single, n_heads=4).trace(x).output, run_unbatched(reference.layers[0], x))


def _names(state):
    with pytest.raises(UnsupportedModelError) as refused:
        state_dict_layout(state)
    return refused.value


def test_a_state_dict_of_something_else_is_refused_with_the_names_that_were_expected():
    refused = _names(nn.Linear(4, 4).state_dict())
    assert refused.code == "state_dict_names" and refused.details["names"] == "weight, bias"
    assert "layers.0.self_attn.in_proj_weight" in refused.details["expected"]
    wrapped = {f"encoder.{name}": t for name, t in no_layer_norm_encoder(layers=1).state_dict().items()}
    assert "encoder.layers.0.self_attn.in_proj_weight" in _names(wrapped).details["names"]
    gap = {
        name: t for name, t in no_layer_norm_encoder(layers=3).state_dict().items() if not name.startswith("layers.1.")
    }
    assert _names(gap).details["names"] == "layers.1."
    half = nn.TransformerEncoderLayer(8, 2).state_dict()
    del half["norm2.weight"], half["norm2.bias"]
    assert "norm2.weight" in _names(half).details["names"]
    bad = nn.TransformerEncoderLayer(8, 2, 16).state_dict()
    bad["linear2.weight"] = torch.zeros(8, 5)
    shape = _names(bad)
    assert shape.code == "state_dict_shape" and shape.details == {
        "name": "linear2.weight",
        "shape": "(8, 5)",
        "expected": "(8, 16)",
    }
    flat = nn.TransformerEncoderLayer(8, 2, 16).state_dict()
    flat["self_attn.out_proj.weight"] = torch.zeros(64)  # no rows and columns to read d_model from
    assert _names(flat).details["name"] == "self_attn.out_proj.weight"
    long = {"x" * 500: torch.zeros(1)}
    assert len(_names(long).details["names"]) == 80  # a file's names are cut, not shown whole


def test_what_a_state_dict_leaves_open_is_checked():
    state = no_layer_norm_encoder(layers=1).state_dict()
    with pytest.raises(UnsupportedModelError, match="no LayerNorm"):
        from_state_dict(state, n_heads=4, layer_norm="post")
    with pytest.raises(UnsupportedModelError, match="activation"):
        from_state_dict(state, n_heads=4, activation="tanh")
    with pytest.raises(ValueError, match="n_heads"):  # a ConfigError: 32 is not divisible by 3
        from_state_dict(state, n_heads=3)


def test_a_state_dict_file_is_read_but_not_taken_for_a_module():
    data = saved(no_layer_norm_encoder(layers=1).state_dict())
    assert isinstance(read_torch_file(data), dict)
    with pytest.raises(UnsupportedModelError) as refused:
        load_torch_file(data)
    assert refused.value.code == "state_dict"
    with pytest.raises(UnsupportedModelError) as refused:  # the module's own class cannot be unpickled safely
        read_torch_file(saved(no_layer_norm_encoder(layers=1)))
    assert refused.value.code == "foreign_class" and "state_dict()" in str(refused.value)


def test_a_model_without_layer_norm_runs_the_residual_sums_alone():
    config = EncoderConfig(d_model=16, n_heads=2, n_layers=2, layer_norm="none")
    model = Encoder(config)
    assert all(layer.norm1 is None and layer.norm2 is None for layer in model.layers)
    layer = model.trace(torch.randn(4, 16)).layers[0]
    assert layer.attn_input is layer.input and layer.ffn_input is layer.attn_residual
    torch.testing.assert_close(layer.attn_residual, layer.input + layer.attn_output, atol=0, rtol=0)
    assert torch.equal(layer.output, layer.ffn_residual)
    with pytest.raises(UnsupportedModelError, match="state_dict"):
        to_torch(model)  # torch's module always normalises


def test_a_model_without_layer_norm_is_a_torch_encoder_without_layer_norm_with_the_same_weights():
    """Our random no-LayerNorm model, its weights put into a torch module without LayerNorm, computes the same."""
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, layer_norm="none", seed=5))
    reference = no_layer_norm_encoder(layers=2)
    theirs = {}
    for index, layer in enumerate(model.layers):
        prefix = f"layers.{index}."
        theirs |= {
            prefix + "self_attn.in_proj_weight": layer.qkv_proj.weight,
            prefix + "self_attn.in_proj_bias": layer.qkv_proj.bias,
            prefix + "self_attn.out_proj.weight": layer.out_proj.weight,
            prefix + "self_attn.out_proj.bias": layer.out_proj.bias,
            prefix + "linear1.weight": layer.ffn_in.weight,
            prefix + "linear1.bias": layer.ffn_in.bias,
            prefix + "linear2.weight": layer.ffn_out.weight,
            prefix + "linear2.bias": layer.ffn_out.bias,
        }
    reference.load_state_dict(theirs)
    x = torch.randn(5, 32)
    assert_close_scaled(model.trace(x).output, run_unbatched(reference, x))
