"""Split text into the tokens the random-weight encoder embeds.

A teaching tokenizer, not a subword one: a token is something a reader recognises on an
axis label. Words and numbers stay whole, every punctuation mark stands alone, and every
CJK ideograph, kana and hangul syllable is its own token, so "我爱你" gives the three
tokens of the classic example. Grapheme clusters (`\\X`) keep an emoji with its skin tone
or zero-width joiners, a flag, or a letter with combining accents in one piece; that is
why this uses the `regex` module rather than `re`.
"""

from __future__ import annotations

import unicodedata

import regex

from encoder.config import LIMITS
from encoder.errors import EncoderError

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"

_TOKEN = regex.compile(
    rf"""
      [{_CJK}]\p{{M}}*                      # one ideograph, kana or hangul syllable
    | \p{{Nd}}+(?:[.,]\p{{Nd}}+)+           # a number with separators: 3.14, 1,000
    | (?:(?![{_CJK}])[\p{{L}}\p{{M}}\p{{N}}])+  # a word: letters, accents and digits
    | \X                                    # anything else, one grapheme at a time
    """,
    regex.VERBOSE,
)

# Unicode categories that never make a token on their own: separators (spaces, line and
# paragraph breaks) and "other" (control, format such as zero-width or direction marks,
# surrogates, private use, unassigned).
_INVISIBLE_CATEGORIES = ("Z", "C")


class EmptyTextError(EncoderError, ValueError):
    """The text holds nothing to tokenize: it is empty, blank or only control characters."""

    code = "empty_text"

    def __init__(self) -> None:
        super().__init__("the text has no tokens: type at least one word or character")


class TooManyTokensError(EncoderError, ValueError):
    """The text has more tokens than the encoder accepts; `tokens` holds all of them.

    Keeping the full list lets a caller offer to truncate to `tokens[:max_tokens]`.
    """

    code = "too_many_tokens"

    def __init__(self, tokens: list[str], max_tokens: int) -> None:
        self.tokens = tokens
        self.n_tokens = len(tokens)
        self.max_tokens = max_tokens
        super().__init__(
            f"the text has {len(tokens)} tokens; at most {max_tokens} are allowed", n=len(tokens), max=max_tokens
        )


def _is_visible(token: str) -> bool:
    return any(unicodedata.category(ch)[0] not in _INVISIBLE_CATEGORIES for ch in token)


def tokenize(text: str, max_tokens: int | None = LIMITS.max_tokens) -> list[str]:
    """Split `text` into tokens; raise `EmptyTextError` or `TooManyTokensError`.

    `max_tokens=None` lifts the cap (for callers that truncate themselves).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    return check_token_count([t for t in _TOKEN.findall(text) if _is_visible(t)], max_tokens)


def check_token_count(tokens: list[str], max_tokens: int | None) -> list[str]:
    """`tokens` if there is at least one and at most `max_tokens` (None: no cap); otherwise
    `EmptyTextError` or `TooManyTokensError`, whoever split the text."""
    if not tokens:
        raise EmptyTextError()
    if max_tokens is not None and len(tokens) > max_tokens:
        raise TooManyTokensError(tokens, max_tokens)
    return tokens
