"""Importing the source article's encoder and state_dicts, checked against torch's own modules.

The article's layer is written here as the issue describes it: `nn.MultiheadAttention`,
`linear1`, `linear2` and a residual sum around each, no LayerNorm, its stack cloned with
`copy.deepcopy`. Its forward (torch's attention and linears) is the reference the imported
encoder must reproduce; per-head weights come from `nn.MultiheadAttention` itself.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from encoder import (
    Encoder,
    EncoderConfig,
    UnsupportedModelError,
    from_state_dict,
    from_torch,
    load_torch_file,
    read_torch_file,
    state_dict_layout,
    to_torch,
)


class ArticleEncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each with a residual sum, and no LayerNorm."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)

    def forward(self, src, src_mask=None):
        src2 = self.self_attn(src, src, src, attn_mask=src_mask)[0]
        src = src + self.dropout(src2)
        src2 = self.linear2(self.dropout(F.relu(self.linear1(src))))
        src = src + self.dropout(src2)
        return src


class ArticleEncoder(nn.Module):
    def __init__(self, encoder_layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])

    def forward(self, src, mask=None):
        for layer in self.layers:
            src = layer(src, mask)
        return src


def article_encoder(d_model=32, heads=4, layers=3, d_ff=64, seed=0) -> ArticleEncoder:
    """The article's encoder with weights of its own in every layer (tests/app and tests/e2e upload it)."""
    torch.manual_seed(seed)
    model = ArticleEncoder(ArticleEncoderLayer(d_model, heads, d_ff), layers)
    for layer in model.layers:  # each clone its own weights, as training would leave them
        for parameter in layer.parameters():
            nn.init.normal_(parameter, std=0.1)
    return model.eval()


def _seq(x: torch.Tensor) -> torch.Tensor:
    return x[:, None]  # (n, 1, d): nn.MultiheadAttention's default layout, batch_first=False


def _close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    """Equal to float32 rounding: without LayerNorm the vectors grow, so relative to their size."""
    scale = max(1.0, float(reference.abs().max()))
    torch.testing.assert_close(ours, reference, atol=1e-5 * scale, rtol=0)


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(_seq(x))[:, 0]


def test_the_articles_encoder_imports_and_computes_what_its_forward_computes():
    article = article_encoder()
    ours = from_torch(article)
    assert (ours.config.layer_norm, ours.config.n_heads, ours.config.n_layers, ours.config.d_ff) == ("none", 4, 3, 64)
    assert ours.config.activation == "relu"  # the forward's F.relu, found by the forward check
    x = torch.randn(6, 32)
    trace = ours.trace(x)
    _close(trace.output, _run(article, x))
    hidden = _seq(x)
    for index, layer in enumerate(article.layers):  # every head of every layer, as torch computes it
        with torch.no_grad():
            _, per_head = layer.self_attn(hidden, hidden, hidden, need_weights=True, average_attn_weights=False)
            hidden = layer(hidden)
        torch.testing.assert_close(trace.layers[index].weights, per_head[0], atol=1e-6, rtol=1e-5)
        _close(trace.layers[index].output, hidden[:, 0])
    assert article.training is False and all(not m.training for m in article.modules())


def test_importing_leaves_the_modules_training_flags_as_they_were():
    article = article_encoder().train()
    from_torch(article)
    assert all(module.training for module in article.modules())


def test_one_layer_of_the_article_imports_too():
    layer = article_encoder(layers=1).layers[0]
    x = torch.randn(4, 32)
    _close(from_torch(layer).trace(x).output, _run(layer, x))


class _GeluArticleLayer(ArticleEncoderLayer):
    def forward(self, src, src_mask=None):
        src = src + self.self_attn(src, src, src)[0]
        return src + self.linear2(F.gelu(self.linear1(src)))


class _PreNormLayer(nn.Module):
    """torch's parts under torch's names, pre-LN in its forward, and no norm_first to say so."""

    def __init__(self, d_model, nhead, d_ff):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h)[0]
        return x + self.linear2(F.relu(self.linear1(self.norm2(x))))


def test_what_the_modules_do_not_say_is_read_from_the_forward():
    gelu = _GeluArticleLayer(16, 2, 32).eval()
    imported = from_torch(gelu)
    assert (imported.config.activation, imported.config.layer_norm) == ("gelu", "none")
    x = torch.randn(5, 16)
    _close(imported.trace(x).output, _run(gelu, x))
    pre = _PreNormLayer(16, 4, 32).eval()
    imported = from_torch(pre)
    assert (imported.config.layer_norm, imported.config.n_heads) == ("pre", 4)
    with torch.no_grad():
        expected = pre(x[None])[0]  # batch_first
    _close(imported.trace(x).output, expected)


class _Scaled(ArticleEncoderLayer):
    def forward(self, src):
        return 2 * super().forward(src)


class _NeedsMask(ArticleEncoderLayer):
    def forward(self, src, mask):
        return super().forward(src, mask)


class _WithEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.layers = nn.ModuleList([ArticleEncoderLayer(8, 2, 16)])


@pytest.mark.parametrize(
    ("module", "code", "words"),
    [
        (_Scaled(8, 2, 16), "forward_differs", "differs by"),
        (_NeedsMask(8, 2, 16), "forward_failed", "missing 1 required positional argument"),
        (_WithEmbedding(), "unsupported", "embedding.weight"),
        (nn.TransformerDecoderLayer(8, 2), "state_dict_names", "multihead_attn"),
    ],
    ids=["another function", "a forward that fails", "an embedding too", "a decoder layer"],
)
def test_a_look_alike_is_refused_with_what_is_wrong(module, code, words):
    with pytest.raises(UnsupportedModelError) as refused:
        from_torch(module)
    assert refused.value.code == code and words in str(refused.value)


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


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
    state = read_torch_file(_saved(reference.state_dict()))
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
    _close(trace.output, expected)
    torch.testing.assert_close(trace.layers[0].weights, weights[0], atol=1e-6, rtol=1e-5)


def test_the_articles_state_dict_needs_only_its_head_count():
    article = article_encoder(layers=2)
    state = read_torch_file(_saved(article.state_dict()))
    assert state_dict_layout(state).layer_norms == ("none",)
    x = torch.randn(4, 32)
    ours = from_state_dict(state, n_heads=4)
    _close(ours.trace(x).output, _run(article, x))
    other = from_state_dict(state, n_heads=2)  # the same weights, split otherwise: other maps
    assert other.trace(x).layers[0].weights.shape[0] == 2
    assert not torch.allclose(other.trace(x).output, ours.trace(x).output)
    single = read_torch_file(_saved(article.layers[0].state_dict()))  # one layer: no layers.N. prefix
    assert state_dict_layout(single).single_layer
    _close(from_state_dict(single, n_heads=4).trace(x).output, _run(article.layers[0], x))


def _names(state):
    with pytest.raises(UnsupportedModelError) as refused:
        state_dict_layout(state)
    return refused.value


def test_a_state_dict_of_something_else_is_refused_with_the_names_that_were_expected():
    refused = _names(nn.Linear(4, 4).state_dict())
    assert refused.code == "state_dict_names" and refused.details["names"] == "weight, bias"
    assert "layers.0.self_attn.in_proj_weight" in refused.details["expected"]
    wrapped = {f"encoder.{name}": t for name, t in article_encoder(layers=1).state_dict().items()}
    assert "encoder.layers.0.self_attn.in_proj_weight" in _names(wrapped).details["names"]
    gap = {name: t for name, t in article_encoder(layers=3).state_dict().items() if not name.startswith("layers.1.")}
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
    state = article_encoder(layers=1).state_dict()
    with pytest.raises(UnsupportedModelError, match="no LayerNorm"):
        from_state_dict(state, n_heads=4, layer_norm="post")
    with pytest.raises(UnsupportedModelError, match="activation"):
        from_state_dict(state, n_heads=4, activation="tanh")
    with pytest.raises(ValueError, match="n_heads"):  # a ConfigError: 32 is not divisible by 3
        from_state_dict(state, n_heads=3)


def test_a_state_dict_file_is_read_but_not_taken_for_a_module():
    data = _saved(article_encoder(layers=1).state_dict())
    assert isinstance(read_torch_file(data), dict)
    with pytest.raises(UnsupportedModelError) as refused:
        load_torch_file(data)
    assert refused.value.code == "state_dict"
    with pytest.raises(UnsupportedModelError) as refused:  # the article's own class cannot be unpickled safely
        read_torch_file(_saved(article_encoder(layers=1)))
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


def test_a_model_without_layer_norm_is_the_articles_encoder_with_the_same_weights():
    """Our random no-LayerNorm model, its weights put into the article's module, computes the same."""
    model = Encoder(EncoderConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, layer_norm="none", seed=5))
    article = article_encoder(layers=2)
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
    article.load_state_dict(theirs)
    x = torch.randn(5, 32)
    _close(model.trace(x).output, _run(article, x))
