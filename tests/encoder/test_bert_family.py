"""The BERT family's names (encoder.bert_family), on tensors written by hand: the whole loading
path, against transformers itself, is tests/encoder/test_pretrained.py."""

from __future__ import annotations

import pytest
import torch

from encoder.bert_family import MissingWeightError, bert_names, encoder_state, position_offset


def test_task_heads_are_dropped_and_tensorflow_layer_norm_names_renamed():
    weights = {
        "electra.embeddings.LayerNorm.gamma": torch.ones(2),
        "electra.embeddings.LayerNorm.beta": torch.zeros(2),
        "discriminator_predictions.dense.weight": torch.ones(2, 2),
    }
    assert sorted(bert_names(weights)) == ["embeddings.LayerNorm.bias", "embeddings.LayerNorm.weight"]


def test_the_fused_projection_stacks_query_key_and_value_and_a_missing_name_is_named():
    d = 2
    parts = {"query": 1.0, "key": 2.0, "value": 3.0}
    weights = {
        f"embeddings.{name}": torch.zeros(4, d)
        for name in ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")
    }
    weights |= {"embeddings.LayerNorm.weight": torch.ones(d), "embeddings.LayerNorm.bias": torch.zeros(d)}
    for part, value in parts.items():
        weights |= {f"encoder.layer.0.attention.self.{part}.weight": torch.full((d, d), value)}
        weights |= {f"encoder.layer.0.attention.self.{part}.bias": torch.full((d,), value)}
    for name in (
        "attention.output.dense",
        "attention.output.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    ):
        weights |= {f"encoder.layer.0.{name}.weight": torch.ones(d, d), f"encoder.layer.0.{name}.bias": torch.ones(d)}
    state = encoder_state(weights, n_layers=1)
    assert state["layers.0.qkv_proj.weight"][:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]  # rows [W_Q; W_K; W_V]
    del weights["encoder.layer.0.output.dense.bias"]
    with pytest.raises(MissingWeightError) as missing:
        encoder_state(weights, n_layers=1)
    assert missing.value.args[0] == "encoder.layer.0.output.dense.bias"


def test_roberta_positions_start_after_the_padding_id():
    assert position_offset({"model_type": "roberta", "pad_token_id": 1}) == 2
    assert position_offset({"model_type": "bert", "pad_token_id": 0}) == 0
