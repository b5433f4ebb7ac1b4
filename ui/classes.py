"""Classes: a teacher's page that students follow. Pure Python, no Streamlit: the store every
session shares (`ui.session.class_store`): this process's memory, or Redis when `REDIS_URL` is
set, so that several app processes behind a load balancer serve one class.

A class has a short code, which goes in the students' link, and a secret, which only the
teacher's link holds: publishing the teacher's settings needs the secret, so a student's link
cannot drive the class. Both come from `secrets`, so neither can be guessed: the code is 8
characters of a 31-letter alphabet without look-alikes (31⁸ ≈ 8.5 · 10¹¹), the secret 128 bits.
A class that nobody has published to or followed for `IDLE_EXPIRY_S` is gone.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: a code is read off a projector
CODE_LENGTH = 8
CODE_PATTERN = re.compile(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
IDLE_EXPIRY_S = 4 * 3600  # a lesson's length, and then some
FOLLOWER_TIMEOUT_S = 10.0  # a student's page checks in every second or so; gone after this long silent
MAX_CLASSES = 1000  # per server: the oldest idle class makes room for a new one


def normal_code(code: str) -> str:
    """A code as typed: spaces and dashes dropped, upper case (a student may read it aloud)."""
    return re.sub(r"[\s-]", "", code).upper()


@dataclass
class ClassState:
    """What students follow: the teacher's link parameters, and a revision that grows with each change."""

    code: str
    secret: str
    params: dict[str, str] = field(default_factory=dict)
    revision: int = 0
    touched: float = 0.0  # monotonic time of the last publish or check-in
    followers: dict[str, float] = field(default_factory=dict)  # session id -> monotonic time last seen


@dataclass(frozen=True)
class Snapshot:
    """A class as a student reads it."""

    code: str
    params: Mapping[str, str]
    revision: int
    followers: int


class MemoryClassStore:
    """Classes in this server process's memory, safe for its many script threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._classes: dict[str, ClassState] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def create(self) -> tuple[str, str]:
        """A new class: its (code, secret)."""
        with self._lock:
            self._expire()
            if len(self._classes) >= MAX_CLASSES:
                oldest = min(self._classes.values(), key=lambda c: c.touched)
                del self._classes[oldest.code]
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            while code in self._classes:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            secret = secrets.token_urlsafe(16)
            self._classes[code] = ClassState(code, secret, touched=self._clock())
            return code, secret

    def publish(self, code: str, secret: str, params: Mapping[str, str]) -> bool:
        """Set what the class shows, if `secret` is the teacher's; False for a wrong secret or code."""
        with self._lock:
            state = self._live(code)
            if state is None or not hmac.compare_digest(state.secret.encode(), secret.encode()):
                return False
            state.touched = self._clock()
            if dict(params) != state.params:
                state.params = dict(params)
                state.revision += 1
            return True

    def is_teacher(self, code: str, secret: str) -> bool:
        with self._lock:
            state = self._live(code)
            return state is not None and hmac.compare_digest(state.secret.encode(), secret.encode())

    def follow(self, code: str, follower: str) -> Snapshot | None:
        """What the class shows now, counting `follower` as present; None for an unknown or expired code."""
        with self._lock:
            state = self._live(code)
            if state is None:
                return None
            now = self._clock()
            state.touched = now
            state.followers[follower] = now
            return self._snapshot(state, now)

    def leave(self, code: str, follower: str) -> None:
        with self._lock:
            state = self._live(code)
            if state is not None:
                state.followers.pop(follower, None)

    def peek(self, code: str) -> Snapshot | None:
        """What the class shows now, without counting anyone (the teacher's page)."""
        with self._lock:
            state = self._live(code)
            return None if state is None else self._snapshot(state, self._clock())

    def _snapshot(self, state: ClassState, now: float) -> Snapshot:
        gone = [who for who, seen in state.followers.items() if now - seen > FOLLOWER_TIMEOUT_S]
        for who in gone:
            del state.followers[who]
        return Snapshot(state.code, dict(state.params), state.revision, len(state.followers))

    def _live(self, code: str) -> ClassState | None:
        state = self._classes.get(code)
        if state is not None and self._clock() - state.touched > IDLE_EXPIRY_S:
            del self._classes[code]
            return None
        return state

    def _expire(self) -> None:
        now = self._clock()
        for code in [code for code, state in self._classes.items() if now - state.touched > IDLE_EXPIRY_S]:
            del self._classes[code]


class RedisClassStore:
    """Classes in Redis, for several app processes behind one load balancer: a class started on
    one process is followed from any other. The same behaviour as `MemoryClassStore`, with wall
    time (shared by the processes) and Redis's own expiry for idle classes.

    A class is a hash `avi:class:<code>` (secret, params as JSON, revision) and a sorted set
    `avi:class:<code>:followers` (follower -> last seen); both expire `IDLE_EXPIRY_S` after the
    last publish or check-in.
    """

    PREFIX = "avi:class:"

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis  # the `redis` extra: only a server with REDIS_URL set needs it

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._clock = clock

    def _keys(self, code: str) -> tuple[str, str]:
        return f"{self.PREFIX}{code}", f"{self.PREFIX}{code}:followers"

    def _keep(self, code: str) -> None:
        for key in self._keys(code):
            self._redis.expire(key, IDLE_EXPIRY_S)

    def create(self) -> tuple[str, str]:
        secret = secrets.token_urlsafe(16)
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            key, _ = self._keys(code)
            if self._redis.hsetnx(key, "secret", secret):
                self._redis.hset(key, mapping={"params": "{}", "revision": 0})
                self._keep(code)
                return code, secret

    def is_teacher(self, code: str, secret: str) -> bool:
        stored = self._redis.hget(self._keys(code)[0], "secret")
        return stored is not None and hmac.compare_digest(stored.encode(), secret.encode())

    def publish(self, code: str, secret: str, params: Mapping[str, str]) -> bool:
        if not self.is_teacher(code, secret):
            return False
        key, _ = self._keys(code)
        text = json.dumps(dict(params), sort_keys=True)
        if self._redis.hget(key, "params") != text:
            pipe = self._redis.pipeline()
            pipe.hset(key, "params", text)
            pipe.hincrby(key, "revision", 1)
            pipe.execute()
        self._keep(code)
        return True

    def follow(self, code: str, follower: str) -> Snapshot | None:
        key, followers = self._keys(code)
        if not self._redis.exists(key):
            return None
        self._redis.zadd(followers, {follower: self._clock()})
        self._keep(code)
        return self._snapshot(code)

    def leave(self, code: str, follower: str) -> None:
        self._redis.zrem(self._keys(code)[1], follower)

    def peek(self, code: str) -> Snapshot | None:
        return self._snapshot(code) if self._redis.exists(self._keys(code)[0]) else None

    def _snapshot(self, code: str) -> Snapshot | None:
        key, followers = self._keys(code)
        pipe = self._redis.pipeline()
        pipe.zremrangebyscore(followers, "-inf", self._clock() - FOLLOWER_TIMEOUT_S)
        pipe.zcard(followers)
        pipe.hmget(key, "params", "revision")
        _, count, (params, revision) = pipe.execute()
        if params is None:
            return None
        return Snapshot(code, json.loads(params), int(revision), int(count))


ClassStore = MemoryClassStore | RedisClassStore


def class_store_for(redis_url: str | None) -> ClassStore:
    """Redis when a URL is given (several app processes share its classes), else this process's memory."""
    return RedisClassStore(redis_url) if redis_url else MemoryClassStore()
