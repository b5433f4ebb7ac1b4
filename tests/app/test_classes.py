"""The class store (ui.classes): who may drive a class, what followers read, and when a class ends."""

from __future__ import annotations

import os

import pytest

from ui.classes import (
    ANSWERED,
    CLOSED,
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_PATTERN,
    FOLLOWER_TIMEOUT_S,
    FULL,
    GONE,
    IDLE_EXPIRY_S,
    MAX_ANSWER_CHARS,
    MAX_QUESTIONS,
    MAX_STUDENTS,
    MemoryClassStore,
    RedisClassStore,
    normal_code,
)
from ui.classroom import only_this_machine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_codes_are_short_readable_and_different_and_secrets_long():
    store = MemoryClassStore()
    made = [store.create() for _ in range(200)]
    codes = [code for code, _ in made]
    assert len(set(codes)) == len(codes)
    for code, secret in made:
        assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) and CODE_PATTERN.fullmatch(code)
        assert len(secret) >= 20 and secret not in codes
    assert not set("0O1IL") & set(CODE_ALPHABET)  # nothing to misread off a projector


def test_only_the_teachers_secret_publishes():
    store = MemoryClassStore()
    code, secret = store.create()
    assert not store.publish(code, "guessed", {"head": "2"})
    assert not store.publish(code, secret[:-1], {"head": "2"})
    assert not store.publish("NOSUCH99", secret, {"head": "2"})
    assert store.follow(code, "student").params == {}
    assert store.publish(code, secret, {"head": "2"})
    assert store.follow(code, "student").params == {"head": "2"}
    assert store.is_teacher(code, secret) and not store.is_teacher(code, "guessed")


def test_the_revision_grows_only_when_the_teacher_changes_something():
    store = MemoryClassStore()
    code, secret = store.create()
    store.publish(code, secret, {"head": "1"})
    first = store.peek(code).revision
    store.publish(code, secret, {"head": "1"})  # every run publishes; most change nothing
    assert store.peek(code).revision == first
    store.publish(code, secret, {"head": "3"})
    assert store.peek(code).revision == first + 1


def test_followers_are_counted_until_they_go_quiet_or_leave():
    clock = Clock()
    store = MemoryClassStore(clock)
    code, _ = store.create()
    for student in ("a", "b", "c"):
        store.follow(code, student)
    assert store.peek(code).followers == 3
    store.leave(code, "b")
    assert store.peek(code).followers == 2
    clock.now += FOLLOWER_TIMEOUT_S / 2
    store.follow(code, "a")
    clock.now += FOLLOWER_TIMEOUT_S / 2 + 1  # c has been silent too long; a checked in since
    assert store.peek(code).followers == 1


def test_an_idle_class_expires_and_a_busy_one_does_not():
    clock = Clock()
    store = MemoryClassStore(clock)
    idle, _ = store.create()
    busy, secret = store.create()
    for _ in range(3):
        clock.now += IDLE_EXPIRY_S * 0.6
        store.publish(busy, secret, {"text": str(clock.now)})
    assert store.peek(idle) is None and store.follow(idle, "late") is None
    assert store.peek(busy) is not None


@pytest.mark.parametrize(("typed", "code"), [("abcd efgh", "ABCDEFGH"), (" AbCd-EfGh ", "ABCDEFGH")])
def test_a_code_read_aloud_and_typed_is_the_same_code(typed, code):
    assert normal_code(typed) == code


# --- a lesson's answers, in either store --------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def answer_store(request: pytest.FixtureRequest):
    """A store as a server runs it: in memory, or in a private redis-server (as behind nginx)."""
    if request.param == "memory":
        yield MemoryClassStore()
        return
    import shutil

    if not shutil.which("redis-server") and not os.environ.get("CI"):
        pytest.skip("redis-server is not installed (bash .ci/setup --test installs it)")
    from harness.cluster import redis_server

    with redis_server() as url:
        yield RedisClassStore(url)


def test_each_students_page_answers_once_and_may_change_its_mind(answer_store):
    code, _ = answer_store.create()
    for student, value in [("a", "1"), ("b", "2"), ("a", "0"), ("c", "2"), ("b", "2")]:
        assert answer_store.answer(code, student, "attention:3", value) == ANSWERED
    assert answer_store.answers(code, "attention:3") == {"a": "0", "b": "2", "c": "2"}
    assert answer_store.answer_count(code, "attention:3") == 3
    assert answer_store.answers(code, "attention:4") == {} and answer_store.answer_count(code, "attention:4") == 0
    assert [answer_store.answer_of(code, "attention:3", s) for s in "abcd"] == ["0", "2", "2", None]
    assert answer_store.answer_of(code, "attention:4", "a") is None
    assert answer_store.answer_of("NOSUCH99", "attention:3", "a") is None


def test_the_reveal_closes_the_question_and_only_the_teacher_reveals(answer_store):
    code, secret = answer_store.create()
    answer_store.answer(code, "a", "attention:3", "1")
    assert not answer_store.reveal(code, "guessed", "attention:3", '{"right": ["1"]}')
    assert answer_store.revealed(code, "attention:3") is None
    assert answer_store.answer(code, "b", "attention:3", "2") == ANSWERED
    assert answer_store.reveal(code, secret, "attention:3", '{"right": ["1"]}')
    assert answer_store.revealed(code, "attention:3") == '{"right": ["1"]}'
    assert answer_store.answer(code, "c", "attention:3", "1") == CLOSED  # too late: not counted
    assert answer_store.answer(code, "a", "attention:3", "2") == CLOSED  # nor a change of mind
    assert answer_store.answers(code, "attention:3") == {"a": "1", "b": "2"}
    assert answer_store.answer(code, "c", "attention:4", "4") == ANSWERED  # the next question is open
    assert answer_store.answer("NOSUCH99", "a", "attention:3", "1") == GONE


def test_answers_are_bounded(answer_store):
    code, secret = answer_store.create()
    for student in range(MAX_STUDENTS):
        assert answer_store.answer(code, f"s{student}", "attention:3", "1") == ANSWERED
    assert answer_store.answer(code, "one-too-many", "attention:3", "1") == FULL
    assert answer_store.answer(code, "s0", "attention:3", "2") == ANSWERED  # a student already in may change
    assert answer_store.answer_count(code, "attention:3") == MAX_STUDENTS
    with pytest.raises(ValueError):
        answer_store.answer(code, "a", "attention:3", "x" * (MAX_ANSWER_CHARS + 1))
    with pytest.raises(ValueError):
        answer_store.answer(code, "a", "no question", "1")
    with pytest.raises(ValueError):
        answer_store.reveal(code, secret, "attention:3", "x" * 20_000)
    for question in range(MAX_QUESTIONS - 1):
        assert answer_store.answer(code, "a", f"q:{question}", "1") == ANSWERED
    assert answer_store.answer(code, "a", "q:999", "1") == GONE  # a class keeps so many questions, no more


def test_a_teachers_lesson_file_reaches_the_class(answer_store):
    code, secret = answer_store.create()
    assert answer_store.lesson_file(code) is None
    data = 'title = { en = "我", zh = "我" }\n'.encode()
    assert not answer_store.share_lesson(code, "guessed", data)
    assert answer_store.share_lesson(code, secret, data) and answer_store.lesson_file(code) == data
    assert not answer_store.share_lesson(code, secret, b"x" * (64 * 1024 + 1))


@pytest.mark.parametrize(
    ("link", "alone"),
    [
        ("http://localhost:8501/?class=ABCD2345", True),
        ("http://127.0.0.1:8501/?class=ABCD2345", True),
        ("http://[::1]:8501/?class=ABCD2345", True),
        ("http://192.168.1.20:8501/?class=ABCD2345", False),
        ("https://attention.example.edu/?class=ABCD2345", False),
    ],
)
def test_a_link_that_names_this_computer_alone_is_told_apart(link: str, alone: bool):
    """The teacher is warned when the students' link is one no other device can open."""
    assert only_this_machine(link) is alone
