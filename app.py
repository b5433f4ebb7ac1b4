"""Attention Visualizer: the Streamlit page.

Wiring only. The numbers come from `encoder` (one cached model per configuration, one
cached trace per sentence), the figures from `viz`, the strings from `viz.i18n` and the
link format from `viz.state`. The layer, head and query pickers live in a fragment, so
moving them re-slices the cached trace without rerunning the encoder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from encoder import (
    LIMITS,
    ConfigError,
    EmptyTextError,
    Encoder,
    EncoderConfig,
    PretrainedUnavailableError,
    TooManyTokensError,
    UnsupportedModelError,
    load_pretrained,
    load_torch_file,
)
from encoder.embeddings import sinusoidal_positions
from encoder.pretrained import INSTALL_HINT
from viz import (
    chart_config,
    grid_block_size,
    heads_grid_figure,
    markdown_literal,
    matrix_figure,
    norms_figure,
    position_curves_figure,
    qkv_figure,
    similarity_figure,
    softmax_latex,
    vectors_figure,
    weighted_sum_rows,
    worked_example,
    worked_example_rows,
)
from viz.i18n import LANGUAGES, texts
from viz.state import (
    CHOICES,
    D_MODEL_OPTIONS,
    EXAMPLES,
    FF_MULTIPLIERS,
    MAX_SEED,
    Settings,
    from_query_params,
    head_options,
    to_query_params,
)

st.set_page_config(page_title="Attention Visualizer", page_icon="🔍", layout="wide")

WORKED_DIMENSIONS = 8  # columns of the weighted-sum table: enough to check the sum by eye
BASE_FONT = 14  # chart font size in pixels: readable on a projector


@st.cache_resource
def _configure_torch() -> None:
    """Once per server: the sessions of a whole classroom share these cores."""
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))


@dataclass(frozen=True)
class ModelKey:
    """What identifies a model in the caches (an upload's bytes travel beside it, unhashed)."""

    kind: str  # "random", "minilm" or "upload", as in the link's `model`
    config: EncoderConfig | None = None  # random weights: the whole shape and seed
    layers: int | None = None  # minilm: keep the first N layers (None: all)
    digest: str | None = None  # upload: SHA-256 of the file


@st.cache_resource(max_entries=8, show_spinner=False)
def load_model(key: ModelKey, device: str, _upload: bytes | None = None) -> Encoder:
    """One model per key and device, shared by every session (its weights are read-only)."""
    if key.kind == "minilm":
        return load_pretrained("minilm", device=device, n_layers=key.layers)
    if key.kind == "upload":
        return Encoder.from_torch(load_torch_file(_upload), device=device)
    return Encoder(key.config, device=device)


@dataclass(frozen=True)
class TraceView:
    """A trace as the page needs it: numpy arrays on the CPU, plus what computed it and how."""

    config: EncoderConfig
    model_name: str | None  # the checkpoint's name; None for random weights
    tokens: list[str]
    unknown: list[bool]  # per token: not in the checkpoint's vocabulary ([UNK])
    arrays: dict[str, np.ndarray]  # trace.to_numpy(): "layer0.weights" -> (heads, n, n), ...
    weights: np.ndarray  # (layers, heads, n, n)
    device: str
    milliseconds: float
    parameters: int

    def layer(self, index: int, name: str) -> np.ndarray:
        return self.arrays[f"layer{index}.{name}"]


@st.cache_data(max_entries=32, show_spinner=False)
def compute_trace(key: ModelKey, device: str, text: str, _upload: bytes | None = None) -> TraceView:
    """Run the encoder once per (model, device, sentence); later reruns reuse it."""
    model = load_model(key, device, _upload)
    start = time.perf_counter()
    trace = model.trace_text(text)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    milliseconds = (time.perf_counter() - start) * 1000
    arrays = trace.to_numpy()
    weights = np.stack([arrays[f"layer{i}.weights"] for i in range(model.config.n_layers)])
    return TraceView(
        config=model.config,
        model_name=model.name,
        tokens=trace.tokens,
        unknown=list(trace.unknown),
        arrays=arrays,
        weights=weights,
        device=model.device.type.upper(),
        milliseconds=milliseconds,
        parameters=sum(p.numel() for p in model.parameters()),
    )


@st.cache_data(max_entries=8, show_spinner=False)
def trace_npz(key: ModelKey, device: str, text: str, _upload: bytes | None = None) -> bytes:
    """The trace as a compressed .npz, built only when someone downloads it."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **compute_trace(key, device, text, _upload).arrays)
    return buffer.getvalue()


# --- session state and the link ----------------------------------------------------------


def _settings() -> Settings:
    state = st.session_state
    return Settings(**{f.name: state[f.name] for f in dataclasses.fields(Settings)})


def _start_session() -> None:
    """On a session's first run, the link decides every widget's starting value."""
    if "link_settings" in st.session_state:
        return
    settings, notices = from_query_params(st.query_params.to_dict(), LIMITS.max_layers, LIMITS.max_heads)
    for name, value in dataclasses.asdict(settings).items():
        st.session_state[name] = value
    st.session_state.link_settings = settings
    st.session_state.link_notices = notices


def _sync_link(settings: Settings) -> None:
    params = to_query_params(settings)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def _fit_heads() -> None:
    """After d_model changes, keep the nearest head count that still divides it."""
    state = st.session_state
    allowed = head_options(state.d_model, LIMITS.max_heads)
    if state.heads not in allowed:
        state.heads = max(h for h in allowed if h <= state.heads)


def _set_text(text: str) -> None:
    st.session_state.text = text


def _open_head() -> None:
    state = st.session_state
    if state.open_head is not None:
        state.layer, state.head = state.open_head
        state.head_opened = True
        state.open_head = None  # a one-shot command, not a setting: its labels change with the language


def _copy_state(source: str, target: str) -> None:
    st.session_state[target] = st.session_state[source]


def _clamp(name: str, size: int) -> None:
    if st.session_state[name] >= size:
        st.session_state[name] = size - 1


# --- the sidebar ---------------------------------------------------------------------------


def sidebar(t: dict[str, str]) -> bytes | None:
    """Every setting; returns the uploaded model file's bytes, if one was uploaded."""
    upload = None
    with st.sidebar:
        st.radio(t["language"], list(LANGUAGES), key="lang", format_func=LANGUAGES.get, horizontal=True)
        st.text_input(t["sentence"], key="text", help=t["sentence_help"])
        st.caption(t["examples"])
        for example in EXAMPLES:
            st.button(example, on_click=_set_text, args=(example,), width="stretch")

        st.subheader(t["model"])
        # persist_state: a model's controls disappear while another model is chosen, and
        # must still hold their values when it comes back.
        keep = {"persist_state": "session"}
        model = st.radio(t["model"], CHOICES["model"], key="model", format_func=lambda m: t[f"model_{m}"], **keep)
        if model == "random":
            random_shape(t, keep)
        elif model == "minilm":
            minilm_shape(t, keep)
        else:
            file = st.file_uploader(t["upload"], type=["pt", "pth"], key="upload_file", help=t["upload_help"])
            st.caption(t["upload_trust"])
            upload = file.getvalue() if file is not None else None
        st.checkbox(t["force_cpu"], key="cpu", help=t["force_cpu_help"])
        with st.expander(t["display"]):
            st.radio(t["palette"], CHOICES["palette"], key="palette", format_func=lambda p: t[f"palette_{p}"])
            st.radio(t["image_format"], CHOICES["img"], key="img", format_func=str.upper, horizontal=True)
        st.caption(t["share_hint"])
    return upload


def random_shape(t: dict[str, str], keep: dict[str, str]) -> None:
    """The shape of a randomly initialised encoder, every part of it the user's to choose."""
    st.select_slider(t["d_model"], D_MODEL_OPTIONS, key="d_model", on_change=_fit_heads, help=t["d_model_help"], **keep)
    heads = head_options(st.session_state.d_model, LIMITS.max_heads)
    st.select_slider(t["heads"], heads, key="heads", help=t["heads_help"], **keep)
    st.slider(t["layers"], 1, LIMITS.max_layers, key="layers", **keep)
    with st.expander(t["advanced"]):
        st.select_slider(
            t["d_ff"], FF_MULTIPLIERS, key="ff", help=t["d_ff_help"], format_func=lambda m: f"{m} × d_model", **keep
        )
        st.number_input(t["seed"], 0, MAX_SEED, step=1, key="seed", help=t["seed_help"], **keep)
        # Radios, not selectboxes, wherever labels are translated: a selectbox hands back its
        # label, which stops matching an option when the language changes.
        st.radio(t["positional"], CHOICES["pos"], key="pos", format_func=lambda p: t[f"positional_{p}"], **keep)
        st.radio(t["norm"], CHOICES["norm"], key="norm", format_func=lambda n: t[f"norm_{n}"], **keep)
        st.radio(t["activation"], CHOICES["act"], key="act", format_func=str.upper, horizontal=True, **keep)
        st.checkbox(t["causal"], key="causal", help=t["causal_help"], **keep)


def minilm_shape(t: dict[str, str], keep: dict[str, str]) -> None:
    """A checkpoint fixes its shape; only how many of its layers to run is left to choose."""
    try:
        full = load_model(ModelKey("minilm"), "cpu")
    except PretrainedUnavailableError:
        return  # the page says how to install it
    config = full.config
    st.caption(t["fixed_shape"].format(d_model=config.d_model, heads=config.n_heads, layers=config.n_layers))
    if st.session_state.minilm_layers > config.n_layers:  # a link may ask for more than it has
        st.session_state.minilm_layers = config.n_layers
    st.slider(t["first_layers"], 1, config.n_layers, key="minilm_layers", **keep)


# --- the page ---------------------------------------------------------------------------


def show_link_notices(t: dict[str, str], settings: Settings) -> None:
    """Refused link values stay visible until the user changes something."""
    if settings != st.session_state.link_settings:
        return
    for notice in st.session_state.link_notices:
        reason = t[notice.reason].format(**notice.reason_args)
        st.warning(
            t["notice_param"].format(param=notice.param, value=notice.value, reason=reason, default=notice.default)
        )


def model_key(settings: Settings, upload: bytes | None) -> ModelKey:
    """The cache key of the model the settings choose; raises ConfigError for a bad shape."""
    if settings.model == "minilm":
        return ModelKey("minilm", layers=settings.minilm_layers)
    if settings.model == "upload":
        return ModelKey("upload", digest=hashlib.sha256(upload).hexdigest())
    config = EncoderConfig(
        d_model=settings.d_model,
        n_heads=settings.heads,
        n_layers=settings.layers,
        d_ff=settings.ff * settings.d_model,
        seed=settings.seed,
        norm_first=settings.norm == "pre",
        activation=settings.act,
        positional=settings.pos,
        causal=settings.causal,
    )
    return ModelKey("random", config=config)


def chart(fig, name: str) -> None:
    """A figure across the column, its toolbar's download button set to the chosen format."""
    st.plotly_chart(fig, width="stretch", config=chart_config(name, st.session_state.img))


def vector_style(t: dict[str, str], palette: str) -> dict[str, object]:
    """The labels and colours every token-vector heatmap on the page shares."""
    return {
        "token_axis": t["token_axis"],
        "dim_axis": t["dim_axis"],
        "value_label": t["value"],
        "palette": palette,
        "font_size": BASE_FONT,
    }


def step_section(key: str, title: str, formula: str, text: str) -> st.delta_generator.DeltaGenerator:
    """A step's heading, formula and explanation; returns the column its chart goes in."""
    container = st.container(key=key, border=True)
    with container:
        st.subheader(title)
        left, right = st.columns([1, 2], vertical_alignment="center")
        left.latex(formula)
        left.markdown(text)
    return right


@st.fragment
def inspector(view: TraceView, t: dict[str, str]) -> None:
    """Layer, head and query pickers and everything they select: reruns alone when they change."""
    settings, config = _settings(), view.config
    _sync_link(settings)
    tokens, n, d_head = view.tokens, len(view.tokens), config.d_head
    palette = settings.palette

    st.subheader(t["inspect"])
    left, right = st.columns(2)
    # persist_state: these widgets vanish while the text is empty, and must keep their value.
    one_based = {"format_func": lambda i: str(i + 1), "horizontal": True, "persist_state": "session"}
    layer = left.radio(t["layer"], range(config.n_layers), key="layer", **one_based)
    head = right.radio(t["head"], range(config.n_heads), key="head", **one_based)

    q, k, v = (view.layer(layer, name)[head] for name in ("q", "k", "v"))  # (n, d_head) each
    scores = view.layer(layer, "scores")[head]  # (n, n)
    scaled = view.layer(layer, "scaled_scores")[head]  # (n, n)
    weights = view.layer(layer, "weights")[head]  # (n, n)
    context = view.layer(layer, "context")[head]  # (n, d_head)
    sqrt_d = math.sqrt(d_head)
    vectors = vector_style(t, palette)
    matrix = {"query_axis": t["query_axis"], "key_axis": t["key_axis"], "palette": palette, "font_size": BASE_FONT}
    mask = view.arrays.get("mask")  # (n, n) bool, query i may attend to key j; absent when nothing is masked
    where = f"L{layer + 1}H{head + 1}"

    with st.container(key="step-qkv", border=True):
        st.subheader(t["step_qkv"])
        st.latex(rf"Q = XW^Q,\quad K = XW^K,\quad V = XW^V \qquad ({n} \times {d_head})")
        st.markdown(t["step_qkv_text"].format(d_head=d_head, d_model=config.d_model))
        fig = qkv_figure(q, k, v, tokens, title=f"Q, K, V ({where})", **vectors)
        chart(fig, f"QKV_{where}")

    column = step_section("step-scores", t["step_scores"], r"S = Q K^\top", t["step_scores_text"])
    with column:
        fig = matrix_figure(scores, tokens, tokens, kind="scores", title=f"Q·Kᵀ ({where})", value_label="q·k", **matrix)
        chart(fig, f"scores_{where}")

    column = step_section(
        "step-scaled",
        t["step_scaled"],
        rf"\tilde S = \frac{{Q K^\top}}{{\sqrt{{d_k}}}} = \frac{{S}}{{\sqrt{{{d_head}}}}} = \frac{{S}}{{{sqrt_d:.3f}}}",
        t["step_scaled_text"].format(sqrt=sqrt_d),
    )
    with column:
        fig = matrix_figure(
            scaled,
            tokens,
            tokens,
            kind="scores",
            title=f"Q·Kᵀ/√d_k ({where})",
            value_label="q·k/√d_k",
            mask=mask,
            **matrix,
        )
        chart(fig, f"scaled_{where}")

    column = step_section(
        "step-weights",
        t["step_weights"],
        r"A_{ij} = \operatorname{softmax}(\tilde S_i)_j = \frac{e^{\tilde S_{ij}}}{\sum_{m} e^{\tilde S_{im}}}",
        t["step_weights_text"],
    )
    with column:
        fig = matrix_figure(
            weights,
            tokens,
            tokens,
            kind="weights",
            title=f"softmax ({where})",
            value_label=t["weight"],
            mask=mask,
            **matrix,
        )
        chart(fig, f"weights_{where}")

    column = step_section(
        "step-context", t["step_context"], r"Z = A V,\quad z_i = \sum_j A_{ij}\, v_j", t["step_context_text"]
    )
    with column:
        chart(vectors_figure(context, tokens, title=f"Z ({where})", **vectors), f"context_{where}")

    with st.container(key="worked-example", border=True):
        st.subheader(t["worked_example"])
        _clamp("query", n)
        # A selectbox hands back its option's label, and these labels show the tokens, so a
        # new sentence would leave it holding a label that is no longer an option. Keyed by
        # the tokens, it starts afresh with each sentence; `query` keeps the choice.
        picker = "query_picker_" + hashlib.sha256("\x1f".join(tokens).encode()).hexdigest()[:16]
        query = st.selectbox(
            t["worked_query"],
            range(n),
            index=st.session_state.query,
            key=picker,
            format_func=lambda i: f"{i + 1} · {tokens[i]}",
            on_change=_copy_state,
            args=(picker, "query"),
        )
        example = worked_example(query, q, k, v, scores, scaled, weights, context)
        st.markdown(t["worked_intro"].format(query=query + 1, layer=layer + 1, head=head + 1))
        st.markdown(t["worked_step1"])
        st.markdown(t["worked_step2"].format(sqrt=example.sqrt_d_head))
        st.markdown(t["worked_step3"].format(sum=example.exp_sum))
        if example.shift:
            st.caption(t["worked_shift"].format(shift=example.shift))
        st.markdown(t["worked_step4"].format(total=float(example.weights.sum())))
        if n <= 6:
            st.latex(softmax_latex(example))
        rows = worked_example_rows(example, tokens)
        columns = {"key": t["col_key"], "q·k": t["col_dot"], "÷√d_k": t["col_scaled"], "exp": t["col_exp"]}
        columns["weight"] = t["col_weight"]
        # st.table, not st.dataframe: a static table draws in a fraction of the time, which
        # matters on every head change. Its cells are Markdown, so tokens are escaped.
        table = [{columns[c]: markdown_literal(row[c]) if c == "key" else row[c] for c in columns} for row in rows]
        st.table(table, hide_index=True)
        st.markdown(t["worked_step5"])
        dims = min(d_head, WORKED_DIMENSIONS)
        if dims < d_head:
            st.caption(t["worked_dims"].format(shown=dims, d_head=d_head))
        vector_rows = weighted_sum_rows(
            example, tokens, dims, key=t["col_key"], total=t["weighted_sum_row"], trace=t["context_row"]
        )
        st.table(vector_rows, hide_index=True)

    with st.container(key="heads-layer", border=True):
        st.subheader(t["heads_layer"].format(layer=layer + 1))
        st.markdown(t["heads_layer_text"])
        # No outline around the selected head: without it this chart changes only with the
        # layer, and the browser need not redraw it when the head changes.
        fig = heads_grid_figure(view.weights[layer : layer + 1], tokens, **_grid_style(t, palette))
        chart(fig, f"heads_layer{layer + 1}")


@st.fragment
def overview(view: TraceView, t: dict[str, str], palette: str) -> None:
    """Every layer and head at once. A fragment of its own: a new head in the step view does
    not resend this, the largest chart on the page."""
    config = view.config
    with st.container(key="heads-grid", border=True):
        st.subheader(t["heads_grid"])
        st.markdown(t["heads_grid_text"].format(layers=config.n_layers, heads=config.n_heads))
        block = grid_block_size(len(view.tokens))
        if block > 1:
            st.caption(t["heads_grid_pooled"].format(block=block))
        options = [(i, h) for i in range(config.n_layers) for h in range(config.n_heads)]
        st.selectbox(
            t["open_head"],
            options,
            index=None,
            key="open_head",
            on_change=_open_head,
            format_func=lambda lh: t["open_head_option"].format(layer=lh[0] + 1, head=lh[1] + 1),
            placeholder=t["open_head_placeholder"],
        )
        if st.session_state.pop("head_opened", False):
            st.rerun()  # the step view lives in another fragment: rerun the whole page
        fig = heads_grid_figure(view.weights, view.tokens, **_grid_style(t, palette))
        chart(fig, "heads_grid")


def _grid_style(t: dict[str, str], palette: str) -> dict[str, object]:
    return {
        "layer_label": t["layer"],
        "head_label": t["head"],
        "query_label": t["query_axis"],
        "key_label": t["key_axis"],
        "value_label": t["weight"],
        "palette": palette,
        "font_size": BASE_FONT,
    }


@st.fragment
def rest_of_the_layer(view: TraceView, t: dict[str, str], palette: str) -> None:
    """What happens to the context vectors next, and how the layers stack. Off by default and in a
    fragment of its own: seven more charts would slow every other change on the page."""
    config, tokens = view.config, view.tokens
    with st.container(key="rest-of-layer", border=True):
        st.toggle(t["rest_toggle"], key="rest", persist_state="session")
        _sync_link(_settings())
        if not st.session_state.rest:
            return
        embedding_and_positions(view, t, palette)
        st.session_state.setdefault("rest_layer", 0)
        _clamp("rest_layer", config.n_layers)
        layer = st.radio(
            t["layer"],
            range(config.n_layers),
            key="rest_layer",
            format_func=lambda i: str(i + 1),
            horizontal=True,
            persist_state="session",
        )
        st.subheader(t["rest_title"].format(layer=layer + 1))
        st.markdown(t["rest_text"])
        if config.norm_first:
            st.latex(r"h = x + \mathrm{Concat}(z)\,W_O,\qquad y = h + \mathrm{FFN}(\mathrm{LN}_2(h))")
        else:
            st.latex(r"h = \mathrm{LN}_1(x + \mathrm{Concat}(z)\,W_O),\qquad y = \mathrm{LN}_2(h + \mathrm{FFN}(h))")
        style = vector_style(t, palette)
        stages = [
            ("input", t["rest_input"]),
            ("attn_output", t["rest_attn_output"]),
            ("ffn_input", t["rest_ffn_input"]),
            ("ffn_hidden", t["rest_ffn_hidden"].format(activation=config.activation.upper())),
            ("output", t["rest_output"]),
        ]
        for name, title in stages:
            fig = vectors_figure(view.layer(layer, name), tokens, title=f"{title} (L{layer + 1})", **style)
            chart(fig, f"{name}_L{layer + 1}")
        left, right = st.columns(2)
        with left:
            title = t["rest_similarity"].format(layer=layer + 1)
            fig = similarity_figure(
                view.layer(layer, "output"), tokens, title=title, palette=palette, font_size=BASE_FONT
            )
            chart(fig, f"similarity_L{layer + 1}")
        with right:
            stream = np.stack([view.arrays["input"]] + [view.layer(i, "output") for i in range(config.n_layers)])
            stage_labels = [t["rest_stage_input"]] + [f"{t['layer']} {i + 1}" for i in range(config.n_layers)]
            fig = norms_figure(
                stream, tokens, title=t["rest_norms"], stage_labels=stage_labels, palette=palette, font_size=BASE_FONT
            )
            chart(fig, "norms")


CURVE_POSITIONS = 64  # long enough to see several periods of the fast dimensions
CURVE_DIMENSIONS = (0, 2, 8, 32)  # sines of growing wavelength


def embedding_and_positions(view: TraceView, t: dict[str, str], palette: str) -> None:
    """What enters layer 0: the token embeddings, the positional encodings and (sinusoidal) their waves."""
    config, tokens = view.config, view.tokens
    st.subheader(t["rest_before"])
    style = vector_style(t, palette)
    left, right = st.columns(2)
    with left:
        chart(vectors_figure(view.arrays["embeddings"], tokens, title=t["rest_embeddings"], **style), "emb")
    with right:
        chart(vectors_figure(view.arrays["positions"], tokens, title=t["rest_positions"], **style), "pos")
    if config.positional == "sinusoidal" and config.source is None:
        table = sinusoidal_positions(max(CURVE_POSITIONS, len(tokens)), config.d_model).numpy()
        dims = [d for d in CURVE_DIMENSIONS if d < config.d_model]
        fig = position_curves_figure(
            table,
            dims,
            n_tokens=len(tokens),
            title=t["rest_curves"],
            position_axis=t["position_axis"],
            value_label=t["value"],
            dim_label=t["dim_axis"],
            font_size=BASE_FONT,
        )
        chart(fig, "positional_curves")


def downloads(t: dict[str, str], settings: Settings, view: TraceView, run: tuple) -> None:
    st.subheader(t["downloads"])
    left, right = st.columns(2)
    left.download_button(
        t["download_trace"],
        data=lambda: trace_npz(*run),
        file_name="attention_trace.npz",
        mime="application/octet-stream",
        on_click="ignore",
    )
    encoder = dataclasses.asdict(view.config) | {"limits": None, "model_name": view.model_name}
    document = {"link": to_query_params(settings), "encoder": encoder}
    right.download_button(
        t["download_settings"],
        data=json.dumps(document, ensure_ascii=False, indent=2),
        file_name="attention_settings.json",
        mime="application/json",
        on_click="ignore",
    )


def trace_or_message(t: dict[str, str], settings: Settings, upload: bytes | None) -> tuple[TraceView, tuple] | None:
    """The trace the settings ask for, or None after telling the user, in their language, why not."""
    if settings.model == "upload" and upload is None:
        st.info(t["upload_needed"])
        return None
    try:
        key = model_key(settings, upload)
    except ConfigError as error:
        st.error(t["err_config"].format(field=error.field, value=error.value, allowed=error.allowed))
        return None
    run = (key, "cpu" if settings.cpu else "auto", settings.text, upload)
    try:
        return compute_trace(*run), run
    except EmptyTextError:
        st.info(t["err_empty"])
    except TooManyTokensError as error:
        st.warning(t["err_too_many"].format(n=error.n_tokens, max=error.max_tokens))
        prefix = load_model(*run[:2], upload).longest_prefix(settings.text)
        st.button(t["truncate"].format(max=error.max_tokens), on_click=_set_text, args=(prefix,), key="truncate")
    except PretrainedUnavailableError:
        st.error(t["err_pretrained"].format(command=INSTALL_HINT))
    except (UnsupportedModelError, ConfigError) as error:
        st.error(t["err_upload"].format(error=str(error)))
    return None


def main() -> None:
    _configure_torch()
    _start_session()
    t = texts(st.session_state.lang)
    upload = sidebar(t)
    settings = _settings()
    _sync_link(settings)

    st.title(t["title"])
    st.caption(t["subtitle"])
    show_link_notices(t, settings)
    result = trace_or_message(t, settings, upload)
    if result is None:
        return
    view, run = result
    config, n = view.config, len(view.tokens)

    st.caption(t["tokens"].format(n=n))
    st.code("  ·  ".join(view.tokens), language=None, wrap_lines=True)
    if any(view.unknown):
        st.info(t["unknown_tokens"].format(name=view.model_name, n=sum(view.unknown), total=n))
    model = view.model_name or t["random_name"].format(seed=config.seed)
    shape = t["model_summary"].format(model=model, d_model=config.d_model, heads=config.n_heads, layers=config.n_layers)
    summary = t["shape_summary"].format(d_head=config.d_head, n=n, params=f"{view.parameters:,}")
    timing = t["device_summary"].format(device=view.device, ms=f"{view.milliseconds:.1f}")
    st.caption(f"{shape} · {summary} · {timing}")

    _clamp("layer", config.n_layers)
    _clamp("head", config.n_heads)
    inspector(view, t)
    overview(view, t, settings.palette)
    rest_of_the_layer(view, t, settings.palette)
    downloads(t, settings, view, run)


main()
