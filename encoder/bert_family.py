"""The BERT family in our terms: which model types load (BERT, DistilBERT, ELECTRA, RoBERTa),
how each names its config keys and weights, and where those weights go in `Encoder`.

Pure mappings of names and tensors, no files: `encoder.pretrained` finds and reads a checkpoint
and hands its config and tensors here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

# BERT proper. Look-alikes differ where it matters: RoBERTa offsets its position ids,
# DistilBERT has no token types, ELECTRA may project a narrower embedding.
# BERT, and ELECTRA's discriminator, which is a BERT (the same layers and embeddings, under
# `electra.` in a task model) when its embeddings are as wide as its layers.
# DistilBERT is a BERT with its names changed and no token types.
# RoBERTa and XLM-RoBERTa are BERT's layers too; their positions start after the padding id.
MODEL_TYPES: tuple[str, ...] = ("bert", "electra", "distilbert", "roberta", "xlm-roberta")
TASK_PREFIXES: tuple[str, ...] = ("bert.", "electra.", "distilbert.", "roberta.")
ROBERTA_TYPES = frozenset({"roberta", "xlm-roberta"})
# DistilBERT's config keys, as BERT names them (its LayerNorms use BERT's epsilon, fixed in code).
DISTILBERT_KEYS = {
    "dim": "hidden_size",
    "n_heads": "num_attention_heads",
    "n_layers": "num_hidden_layers",
    "hidden_dim": "intermediate_size",
    "activation": "hidden_act",
}


class MissingWeightError(KeyError):
    """A weight that the family's names require is not in the checkpoint; `args[0]` is its name."""


def position_offset(bert: Mapping[str, Any]) -> int:
    """Where token 0's position embedding is: RoBERTa skips the rows up to its padding id."""
    return bert.get("pad_token_id", 1) + 1 if bert["model_type"] in ROBERTA_TYPES else 0


# Our name -> BERT's, inside one layer ("encoder.layer.{i}.").
_LAYER_NAMES = {
    "out_proj": "attention.output.dense",
    "norm1": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "norm2": "output.LayerNorm",
}
BERT_QKV = ("attention.self.query", "attention.self.key", "attention.self.value")
DISTILBERT_QKV = ("attention.q_lin", "attention.k_lin", "attention.v_lin")
_DISTILBERT_LAYER_NAMES = {
    "out_proj": "attention.out_lin",
    "norm1": "sa_layer_norm",
    "ffn_in": "ffn.lin1",
    "ffn_out": "ffn.lin2",
    "norm2": "output_layer_norm",
}
_EMBEDDING_NAMES = {
    "word_embeddings.weight": "word_embeddings.weight",
    "position_embeddings.weight": "position_embeddings.weight",
    "token_type_embeddings.weight": "token_type_embeddings.weight",
    "norm.weight": "LayerNorm.weight",
    "norm.bias": "LayerNorm.bias",
}


def bert_names(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BertModel's names: without the `bert.` (or `electra.`) of task models (BertForMaskedLM,
    ElectraForPreTraining, ...), and with `weight`/`bias` for the `gamma`/`beta` of checkpoints
    converted from TensorFlow."""
    prefix = next((p for p in TASK_PREFIXES if any(name.startswith(p) for name in weights)), None)
    renamed = {}
    for name, tensor in weights.items():
        if prefix is not None and not name.startswith(prefix):
            continue  # a task head (cls., qa_outputs., discriminator_predictions., ...): not part of the encoder
        name = name.removeprefix(prefix) if prefix is not None else name
        if "LayerNorm." in name:
            name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        renamed[name] = tensor
    return renamed


def encoder_state(
    weights: Mapping[str, torch.Tensor], n_layers: int, model_type: str = "bert"
) -> dict[str, torch.Tensor]:
    """A state dict for `Encoder`, float32: BERT's embeddings and its first n_layers layers.
    A name the checkpoint lacks raises `MissingWeightError` with that name (the caller knows the file)."""
    bert = bert_names(weights)

    def tensor(name: str) -> torch.Tensor:
        if name not in bert:
            raise MissingWeightError(name)
        return bert[name].float()

    distil = model_type == "distilbert"
    embeddings = {ours: theirs for ours, theirs in _EMBEDDING_NAMES.items() if not (distil and "token_type" in ours)}
    state = {f"text_embedding.{ours}": tensor(f"embeddings.{theirs}") for ours, theirs in embeddings.items()}
    layer_names, parts, block = (
        (_DISTILBERT_LAYER_NAMES, DISTILBERT_QKV, "transformer.layer")
        if distil
        else (_LAYER_NAMES, BERT_QKV, "encoder.layer")
    )
    for i in range(n_layers):
        theirs, ours = f"{block}.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            # BERT keeps W_Q, W_K, W_V apart; our fused projection stacks them as rows [W_Q; W_K; W_V].
            state[f"{ours}qkv_proj.{kind}"] = torch.cat(
                [tensor(f"{theirs}{part}.{kind}") for part in parts]
            )  # (3 * d_model, d_model) or (3 * d_model,)
            for our_name, their_name in layer_names.items():
                state[f"{ours}{our_name}.{kind}"] = tensor(f"{theirs}{their_name}.{kind}")
    return state
