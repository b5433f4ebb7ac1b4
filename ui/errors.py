"""Every error `encoder` raises for a user's input, file or install, said in the page's language.

An `encoder.EncoderError` carries a `code` and the `details` its sentence needs; this is the one
place that turns them into the sentence, in the session's language. Nothing the encoder raises
on bad input reaches the page as a traceback or in English on the 中文 page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from encoder import EncoderError
from viz import markdown_literal

# The sentence for each code: a key of ui.i18n's texts.
MESSAGES: Mapping[str, str] = {
    "config": "err_config",
    "empty_text": "err_empty",
    "too_many_tokens": "err_too_many",
    "pretrained_missing": "err_pretrained",
    "checkpoint": "err_checkpoint",
    "checkpoint_unsupported": "err_checkpoint_unsupported",
    "translation_unknown": "err_translation_unknown",
    # A refused upload: said inside "err_upload" ("This file cannot be inspected: ...").
    "empty": "upload_empty",
    "unreadable": "upload_unreadable",
    "state_dict_names": "upload_state_dict_names",
    "state_dict_shape": "upload_state_dict_shape",
    "not_module": "upload_not_module",
    "foreign_class": "upload_foreign_class",
    "unsupported": "upload_unsupported",
}
UPLOAD_CODES = frozenset(
    {"empty", "unreadable", "not_module", "foreign_class", "unsupported", "state_dict_names", "state_dict_shape"}
)
# What a configuration value must be (encoder.config.RULES), in words of the page's language.
RULES: Mapping[str, str] = {
    "integer_range": "rule_integer_range",
    "range": "rule_range",
    "divides": "rule_divides",
    "boolean": "rule_boolean",
    "one_of": "rule_one_of",
    "name": "rule_name",
    "number_range": "rule_number_range",
    "positive_up_to": "rule_positive_up_to",
    "checkpoint_layers": "rule_checkpoint_layers",
}


# Details the sentences show as code (`...`), where Markdown escapes would be printed as they are.
VERBATIM = frozenset({"command"})


def explain(t: Mapping[str, str], error: EncoderError, *, upload: bool = False) -> str:
    """`error` as a sentence in `t`'s language (Markdown, every value escaped but the code in
    VERBATIM). `upload`: it came from the user's file, so the sentence says the file cannot be
    inspected."""
    details = {name: value if name in VERBATIM else _shown(value) for name, value in error.details.items()}
    if error.code == "config":
        details["allowed"] = t[RULES[error.details["rule"]]].format(**details)
    text = t[MESSAGES[error.code]].format(**details)
    return t["err_upload"].format(error=text) if upload or error.code in UPLOAD_CODES else text


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(markdown_literal(str(item)) for item in value)
    return markdown_literal(str(value))
