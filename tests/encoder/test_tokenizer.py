"""The teaching tokenizer across scripts, and its errors."""

import pytest

from encoder import LIMITS, EmptyTextError, TooManyTokensError, tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("我爱你", ["我", "爱", "你"]),
        ("The cat sat.", ["The", "cat", "sat", "."]),
        ("the cat saw the dog", ["the", "cat", "saw", "the", "dog"]),
        ("我爱你。", ["我", "爱", "你", "。"]),
        ("Hello, 世界!", ["Hello", ",", "世", "界", "!"]),
        ("東京タワー", ["東", "京", "タ", "ワ", "ー"]),
        ("ひらがな", ["ひ", "ら", "が", "な"]),
        ("안녕 세계", ["안", "녕", "세", "계"]),
        ("café naïve Straße", ["café", "naïve", "Straße"]),
        ("e\u0301te\u0301", ["e\u0301te\u0301"]),  # decomposed accents stay in the word
        ("Привет, мир", ["Привет", ",", "мир"]),
        ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
        ("שלום עולם", ["שלום", "עולם"]),
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),
        ("pi is 3.14, not 1,000", ["pi", "is", "3.14", ",", "not", "1,000"]),
        ("R2D2 and 42", ["R2D2", "and", "42"]),
        ("wait...", ["wait", ".", ".", "."]),
        ("don't", ["don", "'", "t"]),
        ("<b>hi</b>", ["<", "b", ">", "hi", "<", "/", "b", ">"]),
        ("ok 👍", ["ok", "👍"]),
        ("👍🏽👨\u200d👩\u200d👧🇨🇳", ["👍🏽", "👨\u200d👩\u200d👧", "🇨🇳"]),
        ("a\tb\nc\r\nd", ["a", "b", "c", "d"]),
        ("a\x00b\x07c\x1b", ["a", "b", "c"]),
        ("\u200fleft\u200b\ufeffright\u202e", ["left", "right"]),
        ("\u3000我\u00a0你 ", ["我", "你"]),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


@pytest.mark.parametrize("text", ["", " ", "\n\t ", "\u200b\u200f", "\x00\x01", "\u3000"])
def test_blank_text_raises_a_clear_error(text):
    with pytest.raises(EmptyTextError, match="no tokens"):
        tokenize(text)


def test_text_beyond_the_cap_raises_with_all_tokens_for_truncation():
    text = " ".join(f"w{i}" for i in range(LIMITS.max_tokens + 5))
    with pytest.raises(TooManyTokensError) as raised:
        tokenize(text)
    error = raised.value
    assert isinstance(error, ValueError)
    assert (error.n_tokens, error.max_tokens) == (LIMITS.max_tokens + 5, LIMITS.max_tokens)
    assert error.tokens[:2] == ["w0", "w1"]
    assert str(LIMITS.max_tokens) in str(error)


def test_exactly_the_cap_is_accepted_and_the_cap_can_be_lifted():
    words = [f"w{i}" for i in range(LIMITS.max_tokens)]
    assert tokenize(" ".join(words)) == words
    assert len(tokenize("x " * 5000, max_tokens=None)) == 5000


def test_non_string_is_a_type_error():
    with pytest.raises(TypeError):
        tokenize(None)
