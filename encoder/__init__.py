"""A from-scratch Transformer encoder that hands back every intermediate of attention.

>>> from encoder import Encoder, EncoderConfig
>>> trace = Encoder(EncoderConfig(d_model=64, n_heads=4, n_layers=2)).trace_text("我爱你")
>>> trace.tokens, tuple(trace.layers[0].weights.shape)
(['我', '爱', '你'], (4, 3, 3))
"""

from encoder.attention import AttentionSteps, attention_mask, scaled_dot_product_attention
from encoder.config import LIMITS, ConfigError, EncoderConfig, Limits
from encoder.model import Encoder, EncoderLayer, resolve_device
from encoder.tokenizer import EmptyTextError, TooManyTokensError, tokenize
from encoder.torch_import import UnsupportedModelError
from encoder.trace import LayerTrace, Trace

__all__ = [
    "LIMITS",
    "AttentionSteps",
    "ConfigError",
    "EmptyTextError",
    "Encoder",
    "EncoderConfig",
    "EncoderLayer",
    "LayerTrace",
    "Limits",
    "TooManyTokensError",
    "Trace",
    "UnsupportedModelError",
    "attention_mask",
    "resolve_device",
    "scaled_dot_product_attention",
    "tokenize",
]
