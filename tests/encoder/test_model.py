"""The encoder against torch.nn.TransformerEncoder, and its determinism and devices."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from encoder import (
    LIMITS,
    EmptyTextError,
    Encoder,
    EncoderConfig,
    LayerTrace,
    UnsupportedModelError,
    from_torch,
    load_torch_file,
    resolve_device,
    tokenize,
)

ROOT = Path(__file__).resolve().parents[2]


def _randomise(module: nn.Module) -> nn.Module:
    """Random LayerNorm scales/shifts and biases: torch initialises them to 1 and 0, which
    would hide a swapped or dropped parameter."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.copy_(torch.randn_like(param) * 0.5 + (1.0 if name.endswith("norm.weight") else 0.0))
    return module.eval()


def _reference(d_model, heads, layers, *, norm_first, activation, final_norm=False, batch_first=True, d_ff=None):
    layer = nn.TransformerEncoderLayer(
        d_model,
        heads,
        d_ff or 2 * d_model,
        dropout=0.1,
        activation=activation,
        norm_first=norm_first,
        batch_first=batch_first,
    )
    norm = nn.LayerNorm(d_model) if final_norm else None
    stack = nn.TransformerEncoder(layer, layers, norm=norm, enable_nested_tensor=False)
    for layer in stack.layers:  # deep copies start identical: make each layer its own
        for param in layer.parameters():
            torch.nn.init.normal_(param, std=0.1)
    return _randomise(stack)


def _run_reference(reference: nn.Module, x: torch.Tensor, batch_first: bool = True, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        if batch_first:
            return reference(x[None], **kwargs)[0]
        return reference(x[:, None], **kwargs)[:, 0]


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize(
    ("n", "d_model", "heads", "layers", "final_norm", "batch_first"),
    [
        (3, 8, 2, 1, False, True),
        (7, 64, 4, 3, True, True),
        (20, 96, 8, 2, False, False),
        (33, 128, 16, 4, True, False),
    ],
)
def test_output_matches_torch_transformer_encoder(
    norm_first, activation, n, d_model, heads, layers, final_norm, batch_first
):
    reference = _reference(
        d_model,
        heads,
        layers,
        norm_first=norm_first,
        activation=activation,
        final_norm=final_norm,
        batch_first=batch_first,
    )
    x = torch.randn(n, d_model)
    ours = from_torch(reference)
    expected = (layers, "pre" if norm_first else "post", activation)
    assert (ours.config.n_layers, ours.config.layer_norm, ours.config.activation) == expected
    assert ours.config.final_norm == final_norm
    trace = ours.trace(x)
    torch.testing.assert_close(trace.output, _run_reference(reference, x, batch_first), atol=1e-5, rtol=0)


def test_every_layer_output_matches_the_torch_layer_it_came_from():
    reference = _reference(32, 4, 3, norm_first=False, activation="gelu")
    x = torch.randn(9, 32)
    trace = from_torch(reference).trace(x)
    hidden = x[None]
    with torch.no_grad():
        for layer, layer_trace in zip(reference.layers, trace.layers, strict=True):
            torch.testing.assert_close(layer_trace.input, hidden[0], atol=1e-5, rtol=0)
            hidden = layer(hidden)
            torch.testing.assert_close(layer_trace.output, hidden[0], atol=1e-5, rtol=0)


def test_a_single_layer_imports_with_its_settings():
    layer = _randomise(nn.TransformerEncoderLayer(48, 6, 100, activation="gelu", layer_norm_eps=1e-6, batch_first=True))
    ours = from_torch(layer)
    config = ours.config
    assert (config.d_model, config.n_heads, config.n_layers, config.d_ff) == (48, 6, 1, 100)
    assert (config.activation, config.layer_norm_eps) == ("gelu", 1e-6)
    x = torch.randn(5, 48)
    with torch.no_grad():
        expected = layer(x[None])[0]
    torch.testing.assert_close(ours.trace(x).output, expected, atol=1e-5, rtol=0)


def test_module_activations_and_bias_free_layers_import():
    layer = nn.TransformerEncoderLayer(16, 2, 32, activation=nn.GELU(), bias=False, batch_first=True)
    x = torch.randn(4, 16)
    with torch.no_grad():
        expected = _randomise(layer)(x[None])[0]
    ours = from_torch(layer)
    assert ours.config.activation == "gelu"
    torch.testing.assert_close(ours.trace(x).output, expected, atol=1e-5, rtol=0)


def test_key_padding_matches_torch_on_the_real_tokens():
    reference = _reference(32, 4, 2, norm_first=False, activation="relu")
    x = torch.randn(6, 32)
    padding = torch.tensor([False, False, False, False, True, True])
    expected = _run_reference(reference, x, src_key_padding_mask=padding[None])
    trace = from_torch(reference).trace(x, key_padding_mask=padding)
    torch.testing.assert_close(trace.output[~padding], expected[~padding], atol=1e-5, rtol=0)
    for layer in trace.layers:
        assert (layer.weights[:, :, padding] == 0).all()


def test_causal_config_matches_torch_with_a_causal_mask():
    reference = _reference(32, 4, 2, norm_first=True, activation="relu")
    x = torch.randn(6, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(6)
    expected = _run_reference(reference, x, mask=mask, is_causal=True)
    imported = from_torch(reference)
    causal = Encoder(EncoderConfig(**{**_fields(imported.config), "causal": True}))
    causal.load_state_dict(imported.state_dict())
    torch.testing.assert_close(causal.trace(x).output, expected, atol=1e-5, rtol=0)


def _fields(config: EncoderConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__ if name != "limits"}


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (nn.TransformerDecoderLayer(8, 2), "TransformerEncoder"),
        (nn.Linear(4, 4), "TransformerEncoder"),
        (nn.TransformerEncoderLayer(8, 2, activation=torch.tanh), "activation"),
        (nn.TransformerEncoderLayer(8, 2, activation=nn.GELU(approximate="tanh")), "activation"),
    ],
)
def test_unsupported_modules_are_refused_clearly(module, message):
    with pytest.raises(UnsupportedModelError, match=message):
        from_torch(module)


def test_layers_with_different_settings_are_refused():
    stack = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 2, enable_nested_tensor=False)
    stack.layers[1] = nn.TransformerEncoderLayer(8, 4)
    with pytest.raises(UnsupportedModelError, match="share"):
        from_torch(stack)


def test_same_seed_gives_an_identical_trace_and_another_seed_does_not():
    text = "the cat saw the dog"
    first = Encoder(EncoderConfig(seed=7)).trace_text(text)
    second = Encoder(EncoderConfig(seed=7)).trace_text(text)
    other = Encoder(EncoderConfig(seed=8)).trace_text(text)
    for name in LayerTrace.names():
        assert torch.equal(getattr(first.layers[1], name), getattr(second.layers[1], name)), name
    assert torch.equal(first.output, second.output)
    assert not torch.allclose(first.output, other.output)


def test_building_an_encoder_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    Encoder(EncoderConfig(seed=3, positional="learned"))
    assert torch.equal(state, torch.get_rng_state())


def test_the_same_numbers_in_another_process_with_another_hash_seed():
    script = (
        "import numpy as np; from encoder import Encoder, EncoderConfig;"
        "t = Encoder(EncoderConfig(seed=5)).trace_text('我爱你 hello');"
        "print(np.concatenate([t.embeddings.numpy().ravel(), t.output.numpy().ravel()]).tobytes().hex())"
    )
    here = Encoder(EncoderConfig(seed=5)).trace_text("我爱你 hello")
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True, text=True)
        numbers = np.frombuffer(bytes.fromhex(out.stdout.strip()), dtype=np.float32)
        expected = np.concatenate([here.embeddings.numpy().ravel(), here.output.numpy().ravel()])
        assert np.array_equal(numbers, expected)


def test_a_repeated_word_shares_its_embedding_and_differs_only_by_position():
    trace = Encoder(EncoderConfig(d_model=32, n_heads=4)).trace_text("the cat saw the dog")
    assert trace.tokens == ["the", "cat", "saw", "the", "dog"]
    assert torch.equal(trace.embeddings[0], trace.embeddings[3])
    assert not torch.equal(trace.embeddings[0], trace.embeddings[1])
    assert not torch.equal(trace.input[0], trace.input[3])
    torch.testing.assert_close(trace.input, trace.embeddings + trace.positions, atol=0, rtol=0)
    assert abs(float(trace.embeddings.var()) - 1.0) < 0.2  # unit-variance components


def test_sinusoidal_positions_follow_the_paper():
    d_model, n = 10, 6
    trace = Encoder(EncoderConfig(d_model=d_model, n_heads=2)).trace_text("a b c d e f")
    for pos in range(n):
        for i in range(d_model):
            angle = pos / 10000 ** ((i - i % 2) / d_model)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert trace.positions[pos, i].item() == pytest.approx(expected, abs=1e-6)


def test_sinusoidal_positions_with_an_odd_width():
    trace = Encoder(EncoderConfig(d_model=7, n_heads=1)).trace_text("x y")
    assert trace.positions.shape == (2, 7)
    assert trace.positions[1, 6].item() == pytest.approx(math.sin(1 / 10000 ** (6 / 7)), abs=1e-6)


def test_positional_none_and_learned():
    tokens = "one two three"
    none = Encoder(EncoderConfig(positional="none")).trace_text(tokens)
    assert torch.equal(none.positions, torch.zeros(3, 64))
    assert torch.equal(none.input, none.embeddings)
    learned_model = Encoder(EncoderConfig(positional="learned"))
    learned = learned_model.trace_text(tokens)
    assert torch.equal(learned.positions, learned_model.learned_positions[:3])


def test_post_ln_and_pre_ln_wiring():
    x = torch.randn(4, 16)
    post = Encoder(EncoderConfig(d_model=16, n_heads=2, n_layers=1)).trace(x).layers[0]
    assert post.attn_input is post.input
    torch.testing.assert_close(post.attn_residual, post.input + post.attn_output, atol=0, rtol=0)
    torch.testing.assert_close(post.ffn_residual, post.ffn_input + post.ffn_output, atol=0, rtol=0)
    assert float(post.output.mean(-1).abs().max()) < 1e-5  # the last step is a LayerNorm
    pre = Encoder(EncoderConfig(d_model=16, n_heads=2, n_layers=1, layer_norm="pre")).trace(x).layers[0]
    torch.testing.assert_close(pre.ffn_residual, pre.attn_residual + pre.ffn_output, atol=0, rtol=0)
    assert torch.equal(pre.output, pre.ffn_residual)
    assert (post.ffn_hidden >= 0).all()  # ReLU


def test_trace_input_errors():
    model = Encoder(EncoderConfig(d_model=16, n_heads=2))
    with pytest.raises(ValueError, match=r"expected \(n_tokens, 16\)"):
        model.trace(torch.randn(3, 8))
    with pytest.raises(ValueError, match="3 tokens"):
        model.trace(torch.randn(2, 16), tokens=["a", "b", "c"])
    with pytest.raises(EmptyTextError):
        model.trace_text("   ")


def test_device_selection_without_accelerators():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert resolve_device(None) == torch.device("cpu")
    assert Encoder(EncoderConfig()).device == torch.device("cpu")
    with pytest.raises(ValueError, match="no usable CUDA"):
        Encoder(EncoderConfig(), device="cuda")
    with pytest.raises(ValueError, match="MPS"):
        resolve_device("mps")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_trace_matches_cpu_trace():
    config = EncoderConfig(d_model=128, n_heads=8, n_layers=4, activation="gelu")
    text = "the quick brown fox jumps over the lazy dog 我爱你"
    cpu = Encoder(config, device="cpu").trace_text(text)
    gpu_model = Encoder(config, device="auto")
    assert gpu_model.device.type == "cuda"
    gpu = gpu_model.trace_text(text).to("cpu")
    torch.testing.assert_close(gpu.embeddings, cpu.embeddings, atol=0, rtol=0)
    for a, b in zip(gpu.layers, cpu.layers, strict=True):
        torch.testing.assert_close(a.weights, b.weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.output, cpu.output, atol=1e-4, rtol=0)


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _saved(obj) -> bytes:
    buffer = __import__("io").BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_saved_torch_encoder_loads_without_trusting_the_file(norm_first):
    reference = _reference(32, 4, 2, norm_first=norm_first, activation="gelu", final_norm=norm_first)
    module = load_torch_file(_saved(reference))
    x = torch.randn(5, 32)
    torch.testing.assert_close(from_torch(module).trace(x).output, _run_reference(reference, x), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (_saved(_Custom()), "foreign_class"),
        (_saved(_RunsCode()), "unreadable"),  # refused before any code runs
        (b"not a torch file", "unreadable"),
        (b"", "empty"),
        (b"hello world\n" * 20, "unreadable"),  # a text file renamed .pt: torch.load raised a KeyError
        (_saved(torch.nn.Linear(2, 2).state_dict()), "state_dict"),  # load_torch_file wants a module
        (_saved([torch.zeros(2)]), "not_module"),
    ],
    ids=["custom class", "code", "garbage", "empty", "text", "state dict", "list"],
)
def test_files_that_are_not_plain_torch_encoders_are_refused_with_a_plain_reason(payload, code):
    with pytest.raises(UnsupportedModelError) as refused:
        load_torch_file(payload)
    assert refused.value.code == code
    assert "\x1b" not in str(refused.value) and "weights_only" not in str(refused.value)  # no torch advice


def test_longest_prefix_fits_the_cap_and_ends_at_a_word():
    model = Encoder()
    words = [f"word{i}" for i in range(300)]
    prefix = model.longest_prefix(" ".join(words))
    assert prefix.split() == words[: LIMITS.max_tokens]
    assert len(tokenize(model.longest_prefix("我爱你" * 100))) == LIMITS.max_tokens
    assert model.longest_prefix("short text") == "short text"
