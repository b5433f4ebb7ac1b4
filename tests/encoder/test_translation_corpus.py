"""The translation corpus (encoder/translation.py): the issue's own examples, written out by hand,
and the rules every generated sentence must keep."""

from __future__ import annotations

from encoder.translation import all_pairs, source_vocabulary

PAIRS = {pair.source: pair for pair in all_pairs()}


def test_the_issues_examples_translate_word_for_word_as_written_by_hand():
    expected = {
        "我爱你": ("I love you", ((0,), (1,), (2,))),
        "他昨天没看见我们": ("he did not see us yesterday", ((0,), (3,), (3,), (4, 5), (6, 7), (1, 2))),
        "今天她不喜欢他们": ("she does not like them today", ((2,), (3,), (3,), (4, 5), (6, 7), (0, 1))),
        "昨天我们爱他": ("we loved him yesterday", ((2, 3), (4,), (5,), (0, 1))),
        "你今天不认识我": ("you do not know me today", ((0,), (3,), (3,), (4, 5), (6,), (1, 2))),
    }
    for source, (english, alignment) in expected.items():
        pair = PAIRS[source]
        assert (pair.text, pair.alignment) == (english, alignment), source


def test_every_sentence_keeps_the_rules():
    assert len(PAIRS) == len(all_pairs()) == 1500  # 30 subject-object pairs x 5 verbs x 10 forms, none twice
    for pair in PAIRS.values():
        words = pair.target
        assert all(word == "I" or word.islower() for word in words) and "." not in pair.text
        assert len(pair.alignment) == len(words)
        covered = sorted(position for positions in pair.alignment for position in positions)
        assert sorted(set(covered)) == list(range(len(pair.source)))  # every character is translated
        assert ("没" in pair.source) == ("did" in words)
        assert ("昨天" in pair.source) == ("yesterday" in words)
    assert "没" in source_vocabulary() and "x" not in source_vocabulary()
