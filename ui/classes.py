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
# A lesson's answers: one per student's page per question, a few bytes each, at most this many.
MAX_STUDENTS = 200
MAX_QUESTIONS = 100  # questions a class keeps answers for (a lesson has at most 50 stops)
MAX_ANSWER_CHARS = 24
MAX_REVEAL_CHARS = 16_000  # a reveal's published answer (JSON: the right values, the tolerance, the bars)
MAX_LESSON_BYTES = 64 * 1024  # a lesson file the teacher uploaded (ui.lessons.format.MAX_FILE_BYTES)
QUESTION_PATTERN = re.compile(r"[a-z0-9_-]{1,40}:[0-9]{1,3}")  # "lesson:stop", as ui.lessons.panel names one
ANSWERED, CLOSED, FULL, GONE = "answered", "closed", "full", "gone"  # what `answer` says


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
    answers: dict[str, dict[str, str]] = field(default_factory=dict)  # question -> student's page -> answer
    revealed: dict[str, str] = field(default_factory=dict)  # question -> its published answer
    lesson_file: bytes | None = None  # a lesson the teacher uploaded, for the students' pages


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

    def answer(self, code: str, student: str, question: str, value: str) -> str:
        """Record a student's answer (a later one replaces theirs): ANSWERED, or CLOSED once revealed,
        FULL at MAX_STUDENTS answers, GONE for an unknown class or a question name out of bounds."""
        check_answer(question, value)
        with self._lock:
            state = self._live(code)
            if state is None or (question not in state.answers and len(state.answers) >= MAX_QUESTIONS):
                return GONE
            if question in state.revealed:
                return CLOSED
            given = state.answers.setdefault(question, {})
            if student not in given and len(given) >= MAX_STUDENTS:
                return FULL
            given[student] = value
            state.touched = self._clock()
            return ANSWERED

    def answers(self, code: str, question: str) -> dict[str, str]:
        """Every answer to `question` by student's page (names never shown: the pages' random ids)."""
        with self._lock:
            state = self._live(code)
            return {} if state is None else dict(state.answers.get(question, {}))

    def answer_of(self, code: str, question: str, student: str) -> str | None:
        """One student's answer to `question`: what their page checks every second, so it reads only theirs."""
        with self._lock:
            state = self._live(code)
            return None if state is None else state.answers.get(question, {}).get(student)

    def answer_count(self, code: str, question: str) -> int:
        with self._lock:
            state = self._live(code)
            return 0 if state is None else len(state.answers.get(question, {}))

    def reveal(self, code: str, secret: str, question: str, published: str) -> bool:
        """Close `question` and publish its answer, if `secret` is the teacher's."""
        if len(published) > MAX_REVEAL_CHARS or not QUESTION_PATTERN.fullmatch(question):
            raise ValueError("a reveal too long, or a question's name out of bounds")
        with self._lock:
            state = self._live(code)
            if state is None or not hmac.compare_digest(state.secret.encode(), secret.encode()):
                return False
            if question not in state.revealed and len(state.revealed) >= MAX_QUESTIONS:
                return False
            state.revealed[question] = published
            return True

    def revealed(self, code: str, question: str) -> str | None:
        """The answer the teacher published for `question`, or None while it is open."""
        with self._lock:
            state = self._live(code)
            return None if state is None else state.revealed.get(question)

    def share_lesson(self, code: str, secret: str, data: bytes) -> bool:
        """The lesson file the teacher uploaded, for the class's pages (at most MAX_LESSON_BYTES)."""
        if len(data) > MAX_LESSON_BYTES:
            return False
        with self._lock:
            state = self._live(code)
            if state is None or not hmac.compare_digest(state.secret.encode(), secret.encode()):
                return False
            state.lesson_file = data
            return True

    def lesson_file(self, code: str) -> bytes | None:
        with self._lock:
            state = self._live(code)
            return None if state is None else state.lesson_file

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
    last publish or check-in. A lesson adds a hash `...:revealed` (question -> published answer)
    and one hash of answers per question, `...:answers:<question>` (student's page -> answer),
    written by one Lua script, so that an answer and a reveal cannot cross: none lands after its
    question closed, and no question takes more than MAX_STUDENTS.
    """

    PREFIX = "avi:class:"
    # KEYS: the class, its revealed hash, the question's answers. ARGV: question, student, answer,
    # MAX_STUDENTS, IDLE_EXPIRY_S, MAX_QUESTIONS, the class's set of questions.
    ANSWER_SCRIPT = """
    if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
    if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'closed' end
    if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then
      if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[4]) then return 'full' end
      if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 and redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[6]) then
        return 'gone'
      end
    end
    redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
    redis.call('SADD', KEYS[4], ARGV[1])
    for i = 2, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
    return 'answered'
    """

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis  # the `redis` extra: only a server with REDIS_URL set needs it

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._clock = clock
        self._answer = self._redis.register_script(self.ANSWER_SCRIPT)

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

    def _lesson_keys(self, code: str, question: str) -> tuple[str, str, str]:
        key = f"{self.PREFIX}{code}"
        return f"{key}:revealed", f"{key}:answers:{question}", f"{key}:questions"

    def answer(self, code: str, student: str, question: str, value: str) -> str:
        check_answer(question, value)
        revealed, answers, questions = self._lesson_keys(code, question)
        keys = [self._keys(code)[0], revealed, answers, questions]
        args = [question, student, value, MAX_STUDENTS, IDLE_EXPIRY_S, MAX_QUESTIONS]
        return self._answer(keys=keys, args=args)

    def answers(self, code: str, question: str) -> dict[str, str]:
        return self._redis.hgetall(self._lesson_keys(code, question)[1])

    def answer_of(self, code: str, question: str, student: str) -> str | None:
        return self._redis.hget(self._lesson_keys(code, question)[1], student)

    def answer_count(self, code: str, question: str) -> int:
        return self._redis.hlen(self._lesson_keys(code, question)[1])

    def reveal(self, code: str, secret: str, question: str, published: str) -> bool:
        if len(published) > MAX_REVEAL_CHARS or not QUESTION_PATTERN.fullmatch(question):
            raise ValueError("a reveal too long, or a question's name out of bounds")
        if not self.is_teacher(code, secret):
            return False
        revealed = self._lesson_keys(code, question)[0]
        pipe = self._redis.pipeline()
        pipe.hset(revealed, question, published)
        pipe.expire(revealed, IDLE_EXPIRY_S)
        pipe.execute()
        return True

    def revealed(self, code: str, question: str) -> str | None:
        return self._redis.hget(self._lesson_keys(code, question)[0], question)

    def share_lesson(self, code: str, secret: str, data: bytes) -> bool:
        if len(data) > MAX_LESSON_BYTES or not self.is_teacher(code, secret):
            return False
        text = data.decode("utf-8", errors="replace")  # a file the teacher's page has read as UTF-8
        if self._redis.hget(self._keys(code)[0], "lesson") != text:
            self._redis.hset(self._keys(code)[0], "lesson", text)
        return True

    def lesson_file(self, code: str) -> bytes | None:
        text = self._redis.hget(self._keys(code)[0], "lesson")
        return None if text is None else text.encode("utf-8")

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


def check_answer(question: str, value: str) -> None:
    """An answer's bounds, the same in either store: a question named as a lesson names it, an
    answer of at most MAX_ANSWER_CHARS."""
    if not QUESTION_PATTERN.fullmatch(question) or not 0 < len(value) <= MAX_ANSWER_CHARS:
        raise ValueError("a question's name or an answer out of bounds")


ClassStore = MemoryClassStore | RedisClassStore


def class_store_for(redis_url: str | None) -> ClassStore:
    """Redis when a URL is given (several app processes share its classes), else this process's memory."""
    return RedisClassStore(redis_url) if redis_url else MemoryClassStore()
