"""Train a model: a small encoder trained live on a task whose right answer is a pattern of
attention (encoder.training), its heads on a fixed probe redrawn as it learns, a scrubber over
the stored snapshots afterwards, and the trained model opened in every other view.

Training runs in a thread of its own, never on the page's script thread: the page only looks
at the training's live result every `REFRESH_S` (a fragment's `run_every`). Trainings are
server-wide (`trainings()`), keyed by their settings, so a reload (or a link) finds a running
or finished one again; at most `MAX_TRAININGS` run at once, one per session.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from encoder import Encoder, EncoderConfig, to_torch
from encoder.training import TASKS, TrainingResult, probe_ideal, probe_scores, train
from ui import session, widgets
from ui.i18n import option_label
from ui.settings import CHOICES, MAX_SEED, MAX_TRAIN_LAYERS, TRAIN_D_MODELS, TRAIN_HEADS, TRAIN_STEPS, Settings
from viz import heads_grid_figure, matrix_figure, training_curves_figure

MAX_TRAININGS = 2  # at once, per server: each takes one core (torch runs one thread per run)
MAX_KEPT = 16  # finished trainings kept for reloads and links; the oldest goes first
REFRESH_S = 1.0  # how often a page with a running training redraws it


@dataclass(frozen=True)
class TrainingKey:
    """What a training is: task, shape, seed, steps and device ("auto" or "cpu")."""

    task: str
    d_model: int
    heads: int
    layers: int
    steps: int
    seed: int
    device: str = "auto"

    @classmethod
    def of(cls, settings: Settings) -> TrainingKey:
        return cls(
            settings.train_task,
            settings.train_d_model,
            settings.train_heads,
            settings.train_layers,
            settings.train_steps,
            settings.train_seed,
            "cpu" if settings.cpu else "auto",
        )

    def config(self) -> EncoderConfig:
        return EncoderConfig(d_model=self.d_model, n_heads=self.heads, n_layers=self.layers, seed=self.seed)

    @property
    def file_name(self) -> str:
        return f"trained-{self.task}-d{self.d_model}-h{self.heads}-l{self.layers}-seed{self.seed}-{self.steps}.pt"


@dataclass
class Job:
    """One training: its live result (history and snapshots grow while it runs)."""

    key: TrainingKey
    result: TrainingResult | None = None
    accuracy: float | None = None  # held-out, once finished
    head_scores: np.ndarray | None = None  # (layers, heads) mean weight on the ideal keys, once finished
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

    def _began(self, result: TrainingResult) -> None:
        self.result, self.started = result, time.perf_counter()

    def run(self) -> None:
        key = self.key
        try:
            device = "cpu" if key.device == "cpu" else None
            result = train(
                key.task,
                key.config(),
                key.steps,
                device=device,
                seed=key.seed,
                on_start=self._began,
                callback=lambda logged, snapshot: not self.stop.is_set(),
            )
            self.result = result
            self.accuracy, self.head_scores = result.evaluate()
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


def model_of(digest: str) -> Encoder:
    """The finished model `model_digest` named."""
    for job in trainings().jobs():
        if job.finished and _digest(job) == digest:
            return job.result.model
    raise KeyError(f"no finished training {digest!r} on this server")


def start(key: TrainingKey) -> None:
    job = trainings().start(key)
    if job is None:
        st.session_state.training_refused = True
    else:
        st.session_state.training = key


def inspect(key: TrainingKey) -> None:
    """Open the trained model in every view of the page, on its probe."""
    job = trainings().get(key)
    if job is not None and job.finished:
        st.session_state.model = "trained"
        st.session_state.text = " ".join(job.result.probe)
        st.session_state.training_inspect = True  # the button is in a fragment: the whole page must run


def section() -> None:
    """The section: its settings, Train and Stop, and the training's live view."""
    t = session.strings()
    with st.container(key="trainer-section", border=True):
        st.toggle(t["train_toggle"], key="trainer", persist_state="session")
        if not st.session_state.trainer:
            session.sync_link(session.settings())
            return
        st.markdown(t["train_text"])
        controls(t)
        settings = session.settings()
        session.sync_link(settings)
        key = TrainingKey.of(settings)
        task = TASKS[key.task]
        if key.layers < task.min_layers:
            st.info(t["train_layers_needed"].format(n=task.min_layers))
        mine = st.session_state.get("training")
        own = trainings().get(mine) if mine is not None else None
        job = own if own is not None and own.running else trainings().get(key)
        busy = own is not None and own.running
        left, right = st.columns(2)
        left.button(t["train_start"], on_click=start, args=(key,), disabled=busy, type="primary", key="train_start")
        if job is not None and job.running:
            right.button(t["train_stop"], on_click=job.stop.set, key="train_stop")
        if st.session_state.pop("training_refused", False):
            st.warning(t["train_busy"].format(n=MAX_TRAININGS))
        if job is not None:
            st.session_state.training_timer = job.running  # the live view redraws itself while it trains
            st.fragment(live, run_every=REFRESH_S if job.running else None)(job)


def controls(t: dict[str, str]) -> None:
    keep = {"persist_state": "session"}
    st.radio(
        t["train_task"], CHOICES["train_task"], key="train_task", format_func=option_label(t, "train_task"), **keep
    )
    first, second, third = st.columns(3)
    first.select_slider(t["d_model"], TRAIN_D_MODELS, key="train_d_model", **keep)
    divisors = [h for h in TRAIN_HEADS if st.session_state.train_d_model % h == 0]
    if st.session_state.train_heads not in divisors:
        st.session_state.train_heads = divisors[-1]
    second.select_slider(t["heads"], divisors, key="train_heads", **keep)
    third.slider(t["layers"], 1, MAX_TRAIN_LAYERS, key="train_layers", **keep)
    left, right = st.columns(2)
    left.select_slider(t["train_steps"], TRAIN_STEPS, key="train_steps", **keep)
    right.number_input(t["seed"], 0, MAX_SEED, step=1, key="train_seed", **keep)


def live(job: Job) -> None:
    """Progress, curves, and every head on the probe beside the ideal pattern; afterwards a
    scrubber over the snapshots, "Inspect this model" and the download."""
    t = session.strings()
    result = job.result
    if result is None:  # the thread has not built the model yet
        st.progress(0.0)
        return
    if st.session_state.pop("training_inspect", False):
        st.rerun(scope="app")
    if job.done.is_set() and st.session_state.get("training_timer"):
        st.rerun(scope="app")  # it finished since the last look: the page once more, without the timer
    history, snapshots = list(result.history), list(result.snapshots)  # copies: the thread appends
    step = history[-1].step if history else 0
    device = result.device.upper()
    if job.running:
        st.progress(step / job.key.steps)
        st.caption(t["train_running"].format(device=device, step=step, steps=job.key.steps, rate=job.rate))
    elif job.error is not None:
        st.error(t["train_failed"].format(error=job.error))
        return
    else:
        if result.stopped:
            st.info(t["train_stopped"].format(step=step, steps=job.key.steps))
        score = float(job.head_scores.max()) if job.head_scores is not None else 0.0
        done = {"step": step, "device": device, "rate": job.rate, "accuracy": job.accuracy, "score": score}
        st.success(t["train_done"].format(**done))
    look = {"labels": session.labels(), "style": session.chart_style(session.settings())}
    if history:
        fig = training_curves_figure(
            [h.step for h in history], [h.loss for h in history], [h.accuracy for h in history],
            title=t["train_curves"], **look,
        )  # fmt: skip
        widgets.chart(fig, "training_curves")
    shown = snapshots[-1]
    if not job.running and len(snapshots) > 1:
        steps = [snapshot.step for snapshot in snapshots]
        chosen = st.select_slider(t["train_scrub"], steps, value=steps[-1], key=f"train_scrub_{job.key.file_name}")
        shown = snapshots[steps.index(chosen)]
    probe = result.probe
    st.markdown(f"**{t['train_heads_title'].format(probe=' '.join(probe), step=shown.step)}**")
    widgets.chart(heads_grid_figure(shown.weights, probe, **look), f"training_heads_{shown.step}")
    left, right = st.columns(2)
    with left:
        fig = matrix_figure(probe_ideal(result), probe, probe, kind="weights", title=t["train_ideal"], **look)
        widgets.chart(fig, "training_ideal")
    with right:
        st.caption(t["train_match"])
        widgets.per_head_table({t["train_match"]: probe_scores(result, shown)})
    if job.finished:
        left, right = st.columns(2)
        left.button(t["train_inspect"], on_click=inspect, args=(job.key,), key="train_inspect")
        right.download_button(
            t["train_download"], data=job.saved(), file_name=job.key.file_name, mime="application/octet-stream"
        )
