"""The server's trainings: every model trained on the page (ui.trainer is the section that
starts and shows them), kept server-wide and keyed by their settings, so that a reload or a link
finds a running or finished one again, and the compute layer (ui.compute) opens a finished one
like any other model.

Training runs in a thread of its own, never on the page's script thread; at most
`MAX_TRAININGS` run at once.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from encoder import Encoder, EncoderConfig, EncoderDecoderConfig, Translator, to_torch, train_translation
from encoder.training import TrainingResult, train
from encoder.translation import TranslationResult
from ui.settings import Settings

MAX_TRAININGS = 2  # at once, per server: each takes one core (torch runs one thread per run)
MAX_KEPT = 16  # finished trainings kept for reloads and links; the oldest goes first


@dataclass(frozen=True)
class TrainingKey:
    """What a training is: task, shape, seed, steps and device ("auto" or "cpu")."""

    task: str
    d_model: int
    n_heads: int
    n_layers: int
    steps: int
    seed: int
    device: str = "auto"

    @classmethod
    def of(cls, settings: Settings) -> TrainingKey:
        return cls(
            settings.train_task,
            settings.train_d_model,
            settings.train_n_heads,
            settings.train_n_layers,
            settings.train_steps,
            settings.train_seed,
            "cpu" if settings.cpu else "auto",
        )

    def config(self) -> EncoderConfig:
        return EncoderConfig(d_model=self.d_model, n_heads=self.n_heads, n_layers=self.n_layers, seed=self.seed)

    def translation_config(self) -> EncoderDecoderConfig:
        """The translator's shape (task "translate"): the layers in the encoder and in the decoder each."""
        return EncoderDecoderConfig(d_model=self.d_model, n_heads=self.n_heads, n_encoder_layers=self.n_layers,
                                    n_decoder_layers=self.n_layers, seed=self.seed)  # fmt: skip

    @property
    def file_name(self) -> str:
        return f"trained-{self.task}-d{self.d_model}-h{self.n_heads}-l{self.n_layers}-seed{self.seed}-{self.steps}.pt"


@dataclass
class Job:
    """One training: its live result (history and snapshots grow while it runs)."""

    key: TrainingKey
    result: TrainingResult | TranslationResult | None = None  # the latter for the task "translate"
    accuracy: float | None = None  # held-out, once finished
    head_scores: np.ndarray | None = None  # (layers, heads) mean weight on the ideal keys (translate: alignment)
    error: str | None = None
    started: float = 0.0  # perf_counter when the first step began
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    _saved: bytes | None = None

    @property
    def rate(self) -> float:
        """Steps per second so far (the result's own figure once finished)."""
        if self.result is None or not self.result.history:
            return 0.0
        if self.done.is_set():
            return self.result.steps_per_second
        return self.result.history[-1].step / max(1e-9, time.perf_counter() - self.started)

    def saved(self) -> bytes:
        """The trained layers as torch saves a `torch.nn.TransformerEncoder`: the upload reads it back."""
        if self._saved is None:
            buffer = io.BytesIO()
            torch.save(to_torch(self.result.model), buffer)
            self._saved = buffer.getvalue()
        return self._saved

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    @property
    def finished(self) -> bool:
        """Done, without an error, with a model to inspect."""
        return self.done.is_set() and self.error is None and self.result is not None

    def _began(self, result: TrainingResult | TranslationResult) -> None:
        self.result, self.started = result, time.perf_counter()

    def run(self) -> None:
        key = self.key
        try:
            how = {
                "device": "cpu" if key.device == "cpu" else None,
                "seed": key.seed,
                "on_start": self._began,
                "callback": lambda logged, snapshot: not self.stop.is_set(),
            }
            if key.task == "translate":
                result = train_translation(key.translation_config(), key.steps, **how)
                self.accuracy, self.head_scores = result.accuracy, result.alignment_heads
            else:
                result = train(key.task, key.config(), key.steps, **how)
                self.accuracy, self.head_scores = result.evaluate()
            self.result = result
        except Exception as error:  # shown on the page, in its language, never as a traceback
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.done.set()


class Trainings:
    """Every training of this server process."""

    def __init__(self) -> None:
        self._jobs: dict[TrainingKey, Job] = {}
        self._lock = threading.Lock()

    def get(self, key: TrainingKey) -> Job | None:
        return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def running(self) -> int:
        return sum(job.running for job in self._jobs.values())

    def start(self, key: TrainingKey) -> Job | None:
        """Start `key` (or give the one already there, unless it failed or was stopped); None when
        `MAX_TRAININGS` already run."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and (job.running or (job.finished and not job.result.stopped)):
                return job
            if self.running() >= MAX_TRAININGS:
                return None
            job = self._jobs[key] = Job(key)
            finished = [k for k, j in self._jobs.items() if not j.running and k != key]
            for old in finished[: max(0, len(self._jobs) - MAX_KEPT)]:
                del self._jobs[old]
            threading.Thread(target=job.run, name=f"training {key.file_name}", daemon=True).start()
            return job


@st.cache_resource
def trainings() -> Trainings:
    return Trainings()


def model_digest(settings: Settings) -> str | None:
    """Names the trained model in the caches: its settings and how far it trained; None when this
    server has not finished training it."""
    job = trainings().get(TrainingKey.of(settings))
    return _digest(job) if job is not None and job.finished else None


def _digest(job: Job) -> str:
    return f"{job.key.file_name}@{job.result.history[-1].step}"


def translation_digest(settings: Settings) -> str | None:
    """`model_digest` of the translator that "Train a model" trains with these settings (task "translate")."""
    return model_digest(dataclasses.replace(settings, train_task="translate"))


def model_of(digest: str) -> Encoder | Translator:
    """The finished model `model_digest` named (a Translator for the task "translate")."""
    for job in trainings().jobs():
        if job.finished and _digest(job) == digest:
            return job.result.model
    raise KeyError(f"no finished training {digest!r} on this server")
