"""The cached compute layer: one model per configuration and device, and one trace per (model,
device, sentence) as read-only numpy arrays, each shared by every session of the server
(`st.cache_resource`: `st.cache_data` would hand each session a copy of its own).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import streamlit as st
import torch

from encoder import (
    ConfigError,
    EmptyTextError,
    Encoder,
    EncoderConfig,
    EncoderError,
    StateDictLayout,
    TooManyTokensError,
    TraceArrays,
    from_state_dict,
    from_torch,
    load_pretrained,
    padded_trace,
    read_torch_file,
    resolve_device,
    state_dict_layout,
    trace_nbytes,
)
from ui import errors, session, trainings
from ui.settings import Settings
from viz.step_view import DEFAULT_BUDGET_BYTES

T = TypeVar("T")


@st.cache_resource
def configure_torch() -> None:
    """Once per server: one thread for each run's tensor work. The sessions of a classroom, and
    the browser when it runs on the same machine, share these cores; a pool of threads then
    waits on whichever thread lost its core, so one thread answers a class sooner
    (bench/README.md, "Threads", has the figures)."""
    torch.set_num_threads(1)


@dataclass(frozen=True)
class StateDictChoices:
    """What an uploaded state_dict's names cannot say, as the user chose it (the sidebar)."""

    n_heads: int
    layer_norm: str  # one of the layout's `layer_norms`
    activation: str


@dataclass(frozen=True)
class Upload:
    """An uploaded file's bytes and, for a state_dict, the choices its names leave open."""

    data: bytes = field(repr=False)
    choices: StateDictChoices | None = None


@dataclass(frozen=True)
class ModelKey:
    """What identifies a model in the caches (an upload's bytes travel beside it, unhashed)."""

    kind: str  # "random", "minilm", "upload" or "trained", as in the link's `model`
    config: EncoderConfig | None = None  # random weights: the whole shape and seed
    n_layers: int | None = None  # minilm: keep the first N layers (None: all)
    digest: str | None = None  # upload: SHA-256 of the file; trained: the training and its last step
    choices: StateDictChoices | None = None  # an uploaded state_dict: the head count and the rest


@dataclass(frozen=True)
class Run:
    """What one run of the page computes: the model (its cache key), the device asked for, the
    sentence, and an uploaded checkpoint's bytes (left out of `repr`)."""

    key: ModelKey
    device: str  # "auto" or "cpu"
    text: str
    upload_data: bytes | None = field(default=None, repr=False)

    @property
    def trace_id(self) -> str:
        """Names the trace in the browser's step view: a new one is a new payload."""
        return hashlib.sha256(repr((self.key, self.device, self.text)).encode()).hexdigest()[:16]


def load_model(key: ModelKey, device: str, upload_data: bytes | None = None) -> Encoder:
    """The model a key names, shared by every session (its weights are read-only). The trained
    model is loaded once per device, whatever number of its layers a page runs: fewer layers
    are a view of the same modules (`Encoder.first_layers`)."""
    if key.kind == "minilm":
        full = trained_model(str(resolve_device(device)))
        return full if key.n_layers is None else full.first_layers(min(key.n_layers, full.config.n_layers))
    if key.kind == "trained":  # trained on this page: it lives with its training (ui.trainings)
        return trainings.model_of(key.digest)
    return built_model(key, device, upload_data)


@st.cache_resource(max_entries=2, show_spinner=False)  # the CPU, and a GPU when there is one
def trained_model(device: str) -> Encoder:
    """all-MiniLM-L6-v2, all six layers, on a resolved device ("cpu", "cuda"...): "auto" and
    the device it picks share one copy."""
    return load_pretrained("minilm", device=device)


# What one server keeps, at most: small entries by the dozen and large ones by the couple, each
# sized before it is built, so one large run never evicts a classroom's small ones (README, "What
# one server holds"). Small is up to the step view's payload budget: every trace a class makes
# on the default model, and a model up to d_model 256.
SMALL_BYTES = DEFAULT_BUDGET_BYTES  # 8 MiB; the largest allowed model is 577 MiB, its largest trace 146 MiB


# One large model or trace is built at a time, server-wide: torch runs one thread per build, so
# a second one at once would take the other core too, and every other session would wait behind
# both. Whoever comes second waits here, with a message, and the small runs of a class go on.
LARGE_WORK = threading.RLock()  # reentrant: a large trace loads its large model under it


@contextmanager
def one_large_at_a_time() -> Iterator[None]:
    if not LARGE_WORK.acquire(blocking=False):
        with st.spinner(session.strings()["large_queue"]):
            LARGE_WORK.acquire()
    try:
        yield
    finally:
        LARGE_WORK.release()


@dataclass(frozen=True)
class TraceOptions:
    """How the experiments trace tokens that are already split: `padding` [PAD] tokens masked
    out at the end, the scaling of the scores (`scale`, `temperature`; None: the model's), and
    the (layer, head) pairs knocked out (`ablate`)."""

    padding: int = 0
    scale: bool | None = None
    temperature: float | None = None
    ablate: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Work:
    """Something the caches hold, and how to build it: the model a key names (`text` and `tokens`
    None), its trace of a sentence (`text`), or its trace of tokens already split (`tokens`, with
    the experiments' `options`). An upload's bytes travel beside it, unhashed."""

    key: ModelKey
    device: str
    text: str | None = None
    tokens: tuple[str, ...] | None = None
    options: TraceOptions = TraceOptions()

    def build(self, upload_data: bytes | None) -> Encoder | TraceArrays:
        if self.text is None and self.tokens is None:
            return _build_model(self.key, self.device, upload_data)
        model = load_model(self.key, self.device, upload_data)
        if self.text is not None:
            return TraceArrays.of_run(model, lambda: model.trace_text(self.text))
        options = self.options
        if options.padding:
            return TraceArrays.of_run(model, lambda: padded_trace(model, self.tokens, options.padding))
        scaling = {"scale": options.scale, "temperature": options.temperature, "ablate": options.ablate}
        return TraceArrays.of_run(model, lambda: model.trace_tokens(self.tokens, **scaling))


def cached(work: Work, nbytes: int, upload_data: bytes | None = None) -> Encoder | TraceArrays:
    """`work` built once and shared by every session: in the small cache when `nbytes` fits
    SMALL_BYTES, else in the large one, built one at a time."""
    return by_size(nbytes, _small, _large, work, upload_data)


def by_size(nbytes: int, small: Callable[..., T], large: Callable[..., T], *args: Any) -> T:
    """`small(*args)` when `nbytes` fits SMALL_BYTES, else `large(*args)`, one large at a time: how
    every cache of the server keeps a classroom's small work apart from one large run's."""
    if nbytes <= SMALL_BYTES:
        return small(*args)
    with one_large_at_a_time():
        return large(*args)


@st.cache_resource(max_entries=64, show_spinner=False)  # at most 64 × 8 MiB
def _small(work: Work, _upload_data: bytes | None) -> Encoder | TraceArrays:
    return work.build(_upload_data)


@st.cache_resource(max_entries=4, show_spinner=False)  # at most 4 × 577 MiB
def _large(work: Work, _upload_data: bytes | None) -> Encoder | TraceArrays:
    return work.build(_upload_data)


def built_model(key: ModelKey, device: str, upload_data: bytes | None = None) -> Encoder:
    """A model of random weights (its seed and shape) or an uploaded one, per key and device."""
    nbytes = len(upload_data) if key.kind == "upload" else model_nbytes(key.config)
    return cached(Work(key, device), nbytes, upload_data)


def _build_model(key: ModelKey, device: str, upload_data: bytes | None) -> Encoder:
    if key.kind != "upload":
        return Encoder(key.config, device=device)
    loaded = read_torch_file(upload_data)
    if not isinstance(loaded, dict):
        return from_torch(loaded, device=device)
    if key.choices is None:  # the sidebar asks once the names are understood: a refusal says why not
        state_dict_layout(loaded)
        raise AssertionError("a state_dict the sidebar understood came without the choices it asks for")
    choices = key.choices
    return from_state_dict(
        loaded, n_heads=choices.n_heads, layer_norm=choices.layer_norm, activation=choices.activation, device=device
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def upload_layout(digest: str, _data: bytes) -> StateDictLayout | None:
    """What an uploaded file's names say when it is a state_dict (None: a whole module, whose
    modules say everything); refused files raise their EncoderError. Read once per file."""
    loaded = read_torch_file(_data)
    return state_dict_layout(loaded) if isinstance(loaded, dict) else None


def model_nbytes(config: EncoderConfig) -> int:
    """About the bytes of a random-weight model's float32 weights: per layer W_Q, W_K, W_V, W_O
    (d_model² each) and the FFN's two d_model × d_ff matrices (biases and norms are noise)."""
    return 4 * config.n_layers * (4 * config.d_model**2 + 2 * config.d_model * config.d_ff)


def compute_trace(key: ModelKey, device: str, text: str, upload_data: bytes | None = None) -> TraceArrays:
    """Run the encoder once per (model, device, sentence); later reruns reuse it. Raises
    EmptyTextError or TooManyTokensError for a sentence the model cannot take."""
    model = load_model(key, device, upload_data)
    tokens = model.text_embedding.tokenize(text, model.config.limits.max_tokens)
    return cached(Work(key, device, text=text), trace_nbytes(model.config, tokens), upload_data)


def trace_of_tokens(
    key: ModelKey,
    device: str,
    tokens: tuple[str, ...],
    padding: int = 0,
    upload_data: bytes | None = None,
    *,
    scale: bool | None = None,
    temperature: float | None = None,
    ablate: tuple[tuple[int, int], ...] = (),
) -> TraceArrays:
    """The experiments' runs: tokens already split (a shuffle of the sentence, say), optionally
    padded, or traced with or without the division by √d_k (one model either way)."""
    config = load_model(key, device, upload_data).config
    options = TraceOptions(padding, scale, temperature, tuple(ablate))
    nbytes = trace_nbytes(config, [*tokens, *["[PAD]"] * padding])
    return cached(Work(key, device, tokens=tuple(tokens), options=options), nbytes, upload_data)


@st.cache_resource(max_entries=2, show_spinner=False)  # a download, rarely asked twice: at most 2 × 146 MiB
def trace_npz(key: ModelKey, device: str, text: str, _upload_data: bytes | None = None) -> bytes:
    """The trace as a compressed .npz, built only when someone downloads it."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **compute_trace(key, device, text, _upload_data).arrays)
    return buffer.getvalue()


def upload_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_key(settings: Settings, upload: Upload | None) -> ModelKey:
    """The cache key of the model the settings choose; raises ConfigError for a bad shape."""
    if settings.model == "minilm":
        return ModelKey("minilm", n_layers=settings.minilm_n_layers)
    if settings.model == "upload":
        return ModelKey("upload", digest=upload_digest(upload.data), choices=upload.choices)
    if settings.model == "trained":
        return ModelKey("trained", digest=trainings.model_digest(settings))
    config = EncoderConfig(
        d_model=settings.d_model,
        n_heads=settings.n_heads,
        n_layers=settings.n_layers,
        d_ff=settings.ff_multiplier * settings.d_model,
        seed=settings.seed,
        layer_norm=settings.layer_norm,
        activation=settings.activation,
        positional=settings.positional,
        causal=settings.causal,
    )
    return ModelKey("random", config=config)


def trace_or_message(settings: Settings, upload: Upload | None) -> tuple[TraceArrays, Run] | None:
    """The trace the settings ask for, or None after telling the user, in their language, why not."""
    t = session.strings()
    if settings.model == "upload" and upload is None:
        st.info(t["upload_needed"])
        return None
    if settings.model == "trained" and trainings.model_digest(settings) is None:
        st.info(t["trained_needed"])
        return None
    try:
        key = model_key(settings, upload)
    except ConfigError as error:
        st.error(errors.explain(t, error))
        return None
    run = Run(key, "cpu" if settings.cpu else "auto", settings.text, upload.data if upload is not None else None)
    try:
        return compute_trace(run.key, run.device, run.text, run.upload_data), run
    except EmptyTextError as error:
        st.info(errors.explain(t, error))
    except TooManyTokensError as error:
        st.warning(errors.explain(t, error))
        prefix = load_model(run.key, run.device, run.upload_data).longest_prefix(settings.text)
        st.button(t["truncate"].format(max=error.max_tokens), on_click=session.set_text, args=(prefix,), key="truncate")
    except EncoderError as error:  # a broken install, a refused upload (its shape included)
        st.error(errors.explain(t, error, upload=settings.model == "upload"))
    return None
