"""The class store (ui.classes): who may drive a class, what followers read, and when a class ends."""

from __future__ import annotations

import pytest

from ui.classes import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_PATTERN,
    FOLLOWER_TIMEOUT_S,
    IDLE_EXPIRY_S,
    MemoryClassStore,
    normal_code,
)


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
