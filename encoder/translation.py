"""A Chinese → English corpus small enough to learn in a minute on a CPU, and rich enough that what
a word attends to is not the diagonal: 今天 and 昨天 come first (or after the subject) in Chinese
and last in English, a negation is one character but two English words, a verb is two characters
but one word, and the English verb changes with the person and the tense.

    我爱你            → I love you
    他昨天没看见我们    → he did not see us yesterday
    今天她不喜欢他们    → she does not like them today

Every sentence of the grammar is generated with its alignment: for each English word, the source
characters it translates. Chinese is split per character, as everywhere in the app.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# (Chinese, as a subject, as an object)
PEOPLE = (("我", "I", "me"), ("我们", "we", "us"), ("你", "you", "you"), ("他", "he", "him"),
          ("她", "she", "her"), ("他们", "they", "them"))  # fmt: skip
THIRD_PERSON = ("he", "she")  # "loves", "does not"
# (Chinese, base, third person, past)
VERBS = (("爱", "love", "loves", "loved"), ("喜欢", "like", "likes", "liked"), ("看见", "see", "sees", "saw"),
         ("帮助", "help", "helps", "helped"), ("认识", "know", "knows", "knew"))  # fmt: skip
TIMES = (("", ""), ("今天", "today"), ("昨天", "yesterday"))  # no time word, today, yesterday (the past)
NEGATIONS = {"": "不", "today": "不", "yesterday": "没"}  # 不 in the present, 没 with 昨天


@dataclass(frozen=True)
class Pair:
    """One sentence and its translation."""

    source: str  # the Chinese, one token per character
    target: tuple[str, ...]  # the English words
    alignment: tuple[tuple[int, ...], ...]  # for each English word, the positions of the characters it translates

    @property
    def text(self) -> str:
        """The English as the page prints it: words separated by one space."""
        return " ".join(self.target)


def _pair(parts: list[tuple[str, str | None]], english: list[tuple[str, str]]) -> Pair:
    """`parts`: the Chinese in order, each with the name of its role; `english`: (word, role)."""
    source, where = "", {}
    for chinese, role in parts:
        if role is not None:
            where[role] = tuple(range(len(source), len(source) + len(chinese)))
        source += chinese
    return Pair(source, tuple(word for word, _ in english), tuple(where[role] for _, role in english))


def sentence(subject: int, verb: int, obj: int, time: int = 0, negated: bool = False, time_first: bool = True) -> Pair:
    """One sentence of the grammar, by the index of its subject, verb, object and time word (0: none)."""
    zh_subject, en_subject, _ = PEOPLE[subject]
    zh_object, _, en_object = PEOPLE[obj]
    zh_verb, base, third, past = VERBS[verb]
    zh_time, en_time = TIMES[time]
    third_person = en_subject in THIRD_PERSON
    if negated:
        auxiliary = "did" if en_time == "yesterday" else "does" if third_person else "do"
        verb_words = [(auxiliary, "negation"), ("not", "negation"), (base, "verb")]
    else:
        form = past if en_time == "yesterday" else third if third_person else base
        verb_words = [(form, "verb")]
    chinese = [(zh_subject, "subject")]
    if zh_time:
        chinese.insert(0 if time_first else 1, (zh_time, "time"))
    if negated:
        chinese.append((NEGATIONS[en_time], "negation"))
    chinese += [(zh_verb, "verb"), (zh_object, "object")]
    english = [(en_subject, "subject"), *verb_words, (en_object, "object")]
    if en_time:
        english.append((en_time, "time"))
    return _pair(chinese, english)


def all_pairs() -> list[Pair]:
    """Every sentence of the grammar (a person never does something to themselves), in a fixed order."""
    pairs = []
    for subject, verb, obj, time, negated in itertools.product(
        range(len(PEOPLE)), range(len(VERBS)), range(len(PEOPLE)), range(len(TIMES)), (False, True)
    ):
        if subject == obj:
            continue
        for time_first in (True, False) if time else (True,):
            pairs.append(sentence(subject, verb, obj, time, negated, time_first))
    return pairs


def source_vocabulary() -> tuple[str, ...]:
    """Every Chinese character the corpus uses: a sentence with any other cannot be translated."""
    return tuple(sorted({character for pair in all_pairs() for character in pair.source}))


def target_vocabulary() -> tuple[str, ...]:
    return tuple(sorted({word for pair in all_pairs() for word in pair.target}))
