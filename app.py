"""Attention Visualizer: the Streamlit page.

Wiring only. The numbers come from `encoder` (one cached model per configuration, one
cached trace per sentence), the figures from `viz`, the strings from `viz.i18n` and the
link format from `viz.state`. The step view is one element drawn in the browser
(`ui.inspector`): its layer, head, query and step change there, without a rerun.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

import ui.inspector as step_view
from encoder import (
    LIMITS,
    ConfigError,
    EmptyTextError,
    Encoder,
    EncoderConfig,
    PretrainedUnavailableError,
    TooManyTokensError,
    Trace,
    TraceArrays,
    UnsupportedModelError,
    load_pretrained,
    load_torch_file,
    padded_trace,
    saturation_config,
    saturation_sweep,
    shuffled,
    unshuffle_weights,
)
from encoder.embeddings import sinusoidal_positions
from encoder.pretrained import INSTALL_HINT
from viz import (
    MAX_CELLS_PER_AXIS_FOR_VALUES,
    chart_config,
    difference_figure,
    head_view_figure,
    head_view_token_at,
    markdown_literal,
    matrix_figure,
    norms_figure,
    position_curves_figure,
    saturation_figure,
    similarity_figure,
    variance_figure,
    vectors_figure,
)
from viz.i18n import LANGUAGES, texts
from viz.state import (
    ACTIVATION_NAMES,
    CHOICES,
    D_MODEL_OPTIONS,
    EXAMPLES,
    FF_MULTIPLIERS,
    MAX_PADDING,
    MAX_SEED,
    MAX_SHUFFLE,
    PRESENTATION_STEPS,
    SATURATION_D_KS,
    TEMPERATURES,
    Settings,
    from_query_params,
    head_options,
    to_query_params,
)

st.set_page_config(page_title="Attention Visualizer", page_icon="🔍", layout="wide")

SENTENCE_MARKERS = ("[CLS]", "[SEP]")  # what a BERT-style tokenizer puts around a sentence
BASE_FONT = 14  # chart font size in pixels: readable on a projector
PRESENTATION_FONT = 22  # presentation mode: readable from the back of a classroom
# Presentation mode's larger type for the page's own text (charts get PRESENTATION_FONT). A
# fixed stylesheet: no user text is ever placed in HTML.
PRESENTATION_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.45rem; line-height: 1.5; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1.15rem; }
[data-testid="stMain"] h3 { font-size: 2.2rem; }
[data-testid="stMain"] .katex { font-size: 1.7em; }
[data-testid="stMain"] [data-testid="stSliderThumbValue"] p,
[data-testid="stMain"] [data-testid="stSliderTickBar"] p { font-size: 1rem; }
</style>"""


@st.cache_resource
def _configure_torch() -> None:
    """Once per server: one thread for each run's tensor work. The sessions of a classroom, and
    the browser when it runs on the same machine, share these cores; a pool of threads then
    waits on whichever thread lost its core. On this 2-core machine, with Chromium drawing the
    page, the encoder's share of a new sentence's run (bench/app_latency.py --only sentence,
    profiled in the server) fell from 77 ms with two threads to 6 ms with one; alone on the
    machine, two threads trace the largest run in 117 ms, one in 175 ms."""
    torch.set_num_threads(1)


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


def _timed_view(model: Encoder, run: Callable[[], Trace]) -> TraceArrays:
    """Run `run` on `model`, timing it, and keep the trace as numpy arrays for the page."""
    start = time.perf_counter()
    trace = run()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    milliseconds = (time.perf_counter() - start) * 1000
    arrays = trace.to_numpy()
    weights = np.stack([arrays[f"layer{i}.weights"] for i in range(model.config.n_layers)])
    return TraceArrays(
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


@st.cache_data(max_entries=32, show_spinner=False)
def compute_trace(key: ModelKey, device: str, text: str, _upload: bytes | None = None) -> TraceArrays:
    """Run the encoder once per (model, device, sentence); later reruns reuse it."""
    model = load_model(key, device, _upload)
    return _timed_view(model, lambda: model.trace_text(text))


@st.cache_data(max_entries=32, show_spinner=False)
def trace_of_tokens(
    key: ModelKey, device: str, tokens: tuple[str, ...], padding: int = 0, _upload: bytes | None = None
) -> TraceArrays:
    """The experiments' runs: tokens already split (a shuffle of the sentence, say), and
    optionally `padding` [PAD] tokens masked out at the end."""
    model = load_model(key, device, _upload)
    if padding:
        return _timed_view(model, lambda: padded_trace(model, tokens, padding))
    return _timed_view(model, lambda: model.trace_tokens(tokens))


@st.cache_data(max_entries=8, show_spinner=False)
def trace_npz(key: ModelKey, device: str, text: str, _upload: bytes | None = None) -> bytes:
    """The trace as a compressed .npz, built only when someone downloads it."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **compute_trace(key, device, text, _upload).arrays)
    return buffer.getvalue()


# --- session state and the link ----------------------------------------------------------


# The radios whose options are shown translated, and the prefix of their labels in `texts`.
TRANSLATED_CHOICES = {
    "model": "model_",
    "pos": "positional_",
    "norm": "norm_",
    "palette": "palette_",
    "wscale": "wscale_",
    "lab": "lab_",
}


def _settings() -> Settings:
    state = st.session_state
    _untranslate(state)
    return Settings(**{f.name: state[f.name] for f in dataclasses.fields(Settings)})


def _untranslate(state) -> None:
    """Turn a radio's label back into its option. Streamlit keeps a radio's value as its label:
    after a change of language the browser still holds the old language's label, and a run of a
    fragment (which does not redraw the sidebar) hands it back as the value, e.g. palette "默认"."""
    for name, prefix in TRANSLATED_CHOICES.items():
        value = state.get(name)
        if value in CHOICES[name]:
            continue
        for lang in LANGUAGES:
            t = texts(lang)
            option = next((option for option in CHOICES[name] if t[prefix + option] == value), None)
            if option is not None:
                state[name] = option
                break


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


def _keep_upload() -> None:
    """Keep the uploaded file's name and bytes beyond its uploader, which Streamlit forgets
    while another model is chosen; removing the file from the uploader forgets it here too."""
    file = st.session_state.upload_file
    if file is None:
        st.session_state.pop("upload_kept", None)
    else:
        st.session_state.upload_kept = (file.name, file.getvalue())


def _clamp(name: str, size: int, t: dict[str, str] | None = None) -> None:
    """Fit a 0-based pick to `size` choices. With `t`, a value past the end that came from the
    link as opened (nothing changed since) gets the notice any refused link value gets: only
    now, with the model or the sentence known, can it be checked."""
    value = st.session_state[name]
    if value < size:
        return
    from_link = t is not None and _settings() == st.session_state.link_settings
    st.session_state[name] = size - 1
    if from_link:
        reason = t["reason_range"].format(low=1, high=size)
        st.warning(t["notice_param"].format(param=name, value=value + 1, reason=reason, default=size))


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
            st.file_uploader(
                t["upload"], type=["pt", "pth"], key="upload_file", help=t["upload_help"], on_change=_keep_upload
            )
            kept = st.session_state.get("upload_kept")
            if kept is not None and st.session_state.upload_file is None:  # the uploader was away: a model switch
                st.caption(t["upload_kept"].format(file=markdown_literal(kept[0])))
            st.caption(t["upload_trust"])
            upload = kept[1] if kept is not None else None
        st.checkbox(t["force_cpu"], key="cpu", help=t["force_cpu_help"])
        st.toggle(t["present"], key="present", help=t["present_help"])
        with st.expander(t["display"]):
            st.radio(t["palette"], CHOICES["palette"], key="palette", format_func=lambda p: t[f"palette_{p}"])
            st.radio(t["wscale"], CHOICES["wscale"], key="wscale", format_func=lambda w: t[f"wscale_{w}"])
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
        st.radio(t["activation"], CHOICES["act"], key="act", format_func=ACTIVATION_NAMES.get, horizontal=True, **keep)
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
        reason = t[notice.reason].format(param=notice.param, **notice.reason_args)
        if notice.default is None:  # kept in part: the reason is the whole message
            st.warning(reason)
            continue
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


def chart(fig, name: str, **events: object) -> None:
    """A figure across the column, its toolbar's download button set to the chosen format.

    `events` go to `st.plotly_chart` (a key and `on_select`, for a chart that can be clicked).
    """
    st.plotly_chart(fig, width="stretch", config=chart_config(name, st.session_state.img), **events)


def vector_style(t: dict[str, str], palette: str, font_size: int = BASE_FONT) -> dict[str, object]:
    """The labels and colours every token-vector heatmap on the page shares."""
    return {
        "token_axis": t["token_axis"],
        "dim_axis": t["dim_axis"],
        "value_label": t["value"],
        "palette": palette,
        "font_size": font_size,
    }


def _font_size(settings: Settings) -> int:
    return PRESENTATION_FONT if settings.present else BASE_FONT


def _tokens_digest(tokens: list[str]) -> str:
    """A short key for widgets whose option labels show the tokens (see the worked example's picker)."""
    return hashlib.sha256("\x1f".join(tokens).encode()).hexdigest()[:16]


def layer_and_head(
    config: EncoderConfig,
    t: dict[str, str],
    layer_key: str,
    head_key: str | None = None,
) -> tuple[int, int]:
    """Side-by-side Layer and Head radios (1-based on screen), their values fitted to this model.

    persist_state: these widgets vanish (empty text, an experiment closed) and must keep
    their value. Without `head_key`, only the layer is asked and the head is 0.
    """
    one_based = {"format_func": lambda i: str(i + 1), "horizontal": True, "persist_state": "session"}
    left, right = st.columns(2)
    st.session_state.setdefault(layer_key, 0)
    _clamp(layer_key, config.n_layers, t)
    layer = left.radio(t["layer"], range(config.n_layers), key=layer_key, **one_based)
    if head_key is None:
        return layer, 0
    st.session_state.setdefault(head_key, 0)
    _clamp(head_key, config.n_heads, t)
    return layer, right.radio(t["head"], range(config.n_heads), key=head_key, **one_based)


@st.fragment
def inspector(view: TraceArrays, t: dict[str, str], trace_id: str) -> None:
    """The step view, drawn in the browser (ui.inspector): a change of layer, head, query or step
    never comes back here but to report the view for the link, which reruns this fragment alone."""
    config = view.config
    for name, size in (("layer", config.n_layers), ("head", config.n_heads), ("query", len(view.tokens))):
        _clamp(name, size, t)
    _clamp("step", len(PRESENTATION_STEPS))
    settings = _settings()
    _sync_link(settings)
    step_view.show(view, trace_id, settings.lang, step_view.view_style(settings, _font_size(settings)))


@st.fragment
def rest_of_the_layer(view: TraceArrays, t: dict[str, str], palette: str) -> None:
    """What happens to the context vectors next, and how the layers stack. Off by default and in a
    fragment of its own: seven more charts would slow every other change on the page."""
    config, tokens = view.config, view.tokens
    with st.container(key="rest-of-layer", border=True):
        st.toggle(t["rest_toggle"], key="rest", persist_state="session")
        _sync_link(_settings())
        if not st.session_state.rest:
            return
        font = _font_size(_settings())
        embedding_and_positions(view, t, palette, font)
        layer, _ = layer_and_head(config, t, "rest_layer")
        st.subheader(t["rest_title"].format(layer=layer + 1))
        st.markdown(t["rest_text"])
        if config.norm_first:
            st.latex(r"h = x + \mathrm{Concat}(z)\,W_O,\qquad y = h + \mathrm{FFN}(\mathrm{LN}_2(h))")
        else:
            st.latex(r"h = \mathrm{LN}_1(x + \mathrm{Concat}(z)\,W_O),\qquad y = \mathrm{LN}_2(h + \mathrm{FFN}(h))")
        style = vector_style(t, palette, font)
        stages = [
            ("input", t["rest_input"]),
            ("attn_output", t["rest_attn_output"]),
            ("ffn_input", t["rest_ffn_input"]),
            ("ffn_hidden", t["rest_ffn_hidden"].format(activation=ACTIVATION_NAMES[config.activation])),
            ("output", t["rest_output"]),
        ]
        for name, title in stages:
            fig = vectors_figure(view.layer(layer, name), tokens, title=f"{title} (L{layer + 1})", **style)
            chart(fig, f"{name}_L{layer + 1}")
        left, right = st.columns(2)
        with left:
            title = t["rest_similarity"].format(layer=layer + 1)
            fig = similarity_figure(
                view.layer(layer, "output"),
                tokens,
                title=title,
                axis=t["token_axis"],
                value_label=t["cosine"],
                palette=palette,
                font_size=font,
            )
            chart(fig, f"similarity_L{layer + 1}")
        with right:
            stream = np.stack([view.arrays["input"]] + [view.layer(i, "output") for i in range(config.n_layers)])
            stage_labels = [t["rest_stage_input"]] + [f"{t['layer']} {i + 1}" for i in range(config.n_layers)]
            fig = norms_figure(
                stream,
                tokens,
                title=t["rest_norms"],
                stage_labels=stage_labels,
                token_axis=t["token_axis"],
                palette=palette,
                font_size=font,
            )
            chart(fig, "norms")


CURVE_POSITIONS = 64  # long enough to see several periods of the fast dimensions
CURVE_DIMENSIONS = (0, 2, 8, 32)  # sines of growing wavelength


def embedding_and_positions(view: TraceArrays, t: dict[str, str], palette: str, font: int) -> None:
    """What enters layer 0: the token embeddings, the positional encodings and (sinusoidal) their waves."""
    config, tokens = view.config, view.tokens
    st.subheader(t["rest_before"])
    style = vector_style(t, palette, font)
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
            font_size=font,
        )
        chart(fig, "positional_curves")


# --- experiments that explain attention -------------------------------------------------------

SATURATION_HEADS = 4  # four heads' scores per point: a three-token sentence still gives a steady curve
WEIGHT_DIFFERENCE_RANGE = 0.01  # weight differences below this are float rounding: drawn pale


@st.cache_data(max_entries=16, show_spinner=False)
def saturation(tokens: tuple[str, ...], seed: int, positional: str, temperature: float) -> list:
    """The √d_k sweep for one sentence: a few small one-layer models, run once per setting."""
    return saturation_sweep(
        tokens, SATURATION_D_KS, n_heads=SATURATION_HEADS, seed=seed, positional=positional, temperature=temperature
    )


@st.fragment
def experiments(view: TraceArrays, t: dict[str, str], run: tuple) -> None:
    """The views that explain why attention is built as it is. In a fragment of its own, and
    nothing is computed until one is chosen."""
    with st.container(key="experiments", border=True):
        st.subheader(t["lab_title"])
        lab = st.radio(
            t["lab"],
            CHOICES["lab"],
            key="lab",
            format_func=lambda v: t[f"lab_{v}"],
            horizontal=True,
            persist_state="session",
        )
        settings = _settings()
        _sync_link(settings)
        if lab != "off":
            LAB_VIEWS[lab](view, t, run, settings.palette, _font_size(settings))


def lab_pickers(view: TraceArrays, t: dict[str, str], *, head: bool = True) -> tuple[int, int]:
    """The experiments' own layer (and head) pickers: the step view's live in another fragment."""
    return layer_and_head(view.config, t, "lab_layer", "lab_head" if head else None)


def side_by_side(n_tokens: int) -> tuple[st.delta_generator.DeltaGenerator, st.delta_generator.DeltaGenerator]:
    """Two columns for two maps of a short sentence; one above the other for a long one,
    whose token labels need the page's whole width."""
    if n_tokens <= MAX_CELLS_PER_AXIS_FOR_VALUES:
        left, right = st.columns(2)
        return left, right
    return st.container(), st.container()


def _matrix(t: dict[str, str], palette: str, font: int) -> dict[str, object]:
    return {"query_axis": t["query_axis"], "key_axis": t["key_axis"], "palette": palette, "font_size": font}


def _weights_difference(t: dict[str, str], palette: str, font: int) -> dict[str, object]:
    """The style of a difference of two attention maps: rounding stays pale (WEIGHT_DIFFERENCE_RANGE)."""
    return _matrix(t, palette, font) | {"min_range": WEIGHT_DIFFERENCE_RANGE}


def lab_head_view(view: TraceArrays, t: dict[str, str], run: tuple, palette: str, font: int) -> None:
    layer, _ = lab_pickers(view, t, head=False)
    tokens = view.tokens
    st.markdown(f"**{t['hv_title'].format(layer=layer + 1)}**")
    st.markdown(t["hv_text"])
    digest = _tokens_digest(tokens)
    picker, diagram = f"hv_token_{digest}", f"hv_chart_{digest}_{layer}"
    selected = st.selectbox(
        t["hv_token"],
        range(len(tokens)),
        index=None,
        key=picker,
        format_func=lambda i: f"{i + 1} · {tokens[i]}",
        placeholder=t["hv_all"],
    )
    # A long sentence has thousands of faint lines: keep those above twice an even share (2/n).
    min_weight = 0.01 if len(tokens) <= MAX_CELLS_PER_AXIS_FOR_VALUES else 2 / len(tokens)
    if min_weight > 0.01:
        st.caption(t["hv_threshold"].format(threshold=min_weight, n=len(tokens)))
    fig = head_view_figure(
        view.weights[layer],
        tokens,
        selected=selected,
        min_weight=min_weight,
        head_label=t["head"],
        query_label=t["query_axis"],
        key_label=t["key_axis"],
        value_label=t["weight"],
        palette=palette,
        font_size=font,
    )
    events = {"key": diagram, "on_select": lambda: _follow_clicked_token(diagram, picker), "selection_mode": "points"}
    chart(fig, f"head_view_L{layer + 1}", **events)


def _follow_clicked_token(diagram: str, picker: str) -> None:
    """A click on a token of the head view picks it, as the selectbox above it would."""
    points = st.session_state[diagram].selection.points
    clicked = [token for token in map(head_view_token_at, points) if token is not None]
    if clicked:
        st.session_state[picker] = clicked[0]


def lab_scaling(view: TraceArrays, t: dict[str, str], run: tuple, palette: str, font: int) -> None:
    config, tokens = view.config, tuple(view.tokens)
    st.markdown(f"**{t['sc_title']}**")
    st.markdown(t["sc_text"].format(seed=config.seed, heads=SATURATION_HEADS))
    if len(tokens) < 2:
        st.info(t["sc_single_token"])
        return
    temperature = st.select_slider(
        t["sc_temperature"], TEMPERATURES, key="lab_temperature", help=t["sc_temperature_help"], persist_state="session"
    )
    points = saturation(tokens, config.seed, config.positional, temperature)
    d_ks = [p.d_k for p in points]
    column = {name: np.array([getattr(p, name) for p in points]) for name in dataclasses.asdict(points[0])}
    fig = saturation_figure(
        d_ks,
        column["max_weight_scaled"],
        column["max_weight_unscaled"],
        column["entropy_scaled"],
        column["entropy_unscaled"],
        points[0].uniform_entropy,
        title=t["sc_saturation"],
        max_weight_label=t["sc_max_weight"],
        entropy_label=t["sc_entropy"],
        scaled_label=t["sc_scaled"],
        unscaled_label=t["sc_unscaled"],
        uniform_label=t["sc_uniform"],
        palette=palette,
        font_size=font,
    )
    chart(fig, "saturation")
    fig = variance_figure(
        d_ks,
        column["score_variance"],
        title=t["sc_variance"],
        variance_label=t["sc_variance_label"],
        reference_label=t["sc_reference"],
        palette=palette,
        font_size=font,
    )
    chart(fig, "score_variance")
    d_k = st.select_slider(t["sc_dk"], SATURATION_D_KS, key="lab_dk", persist_state="session")
    device = run[1]
    left, right = side_by_side(len(tokens))
    for column_, scale, title in ((left, True, "sc_weights_scaled"), (right, False, "sc_weights_unscaled")):
        model_config = saturation_config(
            d_k,
            n_heads=SATURATION_HEADS,
            seed=config.seed,
            positional=config.positional,
            temperature=temperature,
            scale_scores=scale,
        )
        weights = trace_of_tokens(ModelKey("random", config=model_config), device, tokens).layer(0, "weights")[0]
        fig = matrix_figure(
            weights,
            tokens,
            tokens,
            kind="weights",
            title=t[title].format(d_k=d_k),
            value_label=t["weight"],
            **_matrix(t, palette, font),
        )
        with column_:
            chart(fig, f"weights_dk{d_k}_{'scaled' if scale else 'unscaled'}")


def lab_padding(view: TraceArrays, t: dict[str, str], run: tuple, palette: str, font: int) -> None:
    key, device, _, upload = run
    tokens, n = tuple(view.tokens), len(view.tokens)
    st.markdown(f"**{t['pad_title']}**")
    st.markdown(t["pad_text"])
    room = min(MAX_PADDING, view.config.limits.max_tokens - n)
    if room < 1:
        st.info(t["pad_no_room"].format(n=n))
        return
    layer, head = lab_pickers(view, t)
    _clamp("lab_pad", room + 1)
    padding = st.slider(t["pad_count"], 1, max(room, 2), key="lab_pad", disabled=room < 2, persist_state="session")
    padded = trace_of_tokens(key, device, tokens, padding, upload)
    weights = padded.layer(layer, "weights")  # (heads, n + padding, n + padding)
    where = f"L{layer + 1}H{head + 1}"
    fig = matrix_figure(
        weights[head],
        padded.tokens,
        padded.tokens,
        kind="weights",
        mask=padded.arrays["mask"],
        title=t["pad_weights"].format(pad=padding, where=where),
        value_label=t["weight"],
        **_matrix(t, palette, font),
    )
    chart(fig, f"padding_{where}")
    change = float(np.abs(padded.arrays["output"][:n] - view.arrays["output"]).max())
    on_padding = float(max(padded.layer(i, "weights")[:, :n, n:].sum(-1).max() for i in range(view.config.n_layers)))
    st.markdown(t["pad_check"].format(diff=change, weight=on_padding))
    st.caption(t["pad_rows"])


def lab_permute(view: TraceArrays, t: dict[str, str], run: tuple, palette: str, font: int) -> None:
    config, tokens = view.config, view.tokens
    st.markdown(f"**{t['perm_title']}**")
    st.markdown(t["perm_text"])
    # A trained model's [CLS] and [SEP] stay at the ends: what is shuffled is the sentence.
    keep = SENTENCE_MARKERS if view.model_name else ()
    if len({token for token in tokens if token not in keep}) < 2:
        st.info(t["perm_one_token"])
        return
    layer, head = lab_pickers(view, t)
    left, right = st.columns(2)
    seed = left.number_input(t["perm_seed"], 0, MAX_SHUFFLE, step=1, key="lab_shuffle", persist_state="session")
    positions = right.toggle(t["perm_positions"], key="lab_positions", persist_state="session")
    positional = "sinusoidal" if positions else "none"
    # Random weights of the current shape, never causal: a causal mask ties attention to order by itself.
    model_config = EncoderConfig(
        d_model=config.d_model,
        n_heads=config.n_heads,
        n_layers=config.n_layers,
        seed=config.seed,
        positional=positional,
    )
    st.caption(
        t["perm_model"].format(
            d_model=config.d_model, heads=config.n_heads, seed=config.seed, positions=t[f"positional_{positional}"]
        )
    )
    shuffled_tokens, order = shuffled(tokens, seed, keep=keep)
    key, device = ModelKey("random", config=model_config), run[1]
    original = trace_of_tokens(key, device, tuple(tokens)).layer(layer, "weights")[head]  # (n, n)
    reordered = trace_of_tokens(key, device, tuple(shuffled_tokens)).layer(layer, "weights")[head]  # (n, n)
    where = f"L{layer + 1}H{head + 1}"
    matrix = _matrix(t, palette, font) | {"kind": "weights", "value_label": t["weight"]}
    left, right = side_by_side(len(tokens))
    with left:
        chart(
            matrix_figure(original, tokens, tokens, title=t["perm_original"].format(where=where), **matrix), "original"
        )
    with right:
        fig = matrix_figure(
            reordered, shuffled_tokens, shuffled_tokens, title=t["perm_shuffled"].format(where=where), **matrix
        )
        chart(fig, "shuffled")
    restored = unshuffle_weights(reordered, order)  # (n, n), back in the original order
    difference = float(np.abs(restored - original).max())
    fig = difference_figure(
        original,
        restored,
        tokens,
        tokens,
        title=t["perm_restored"],
        value_label=t["perm_difference"],
        a_label=t["perm_original_short"],
        b_label=t["perm_restored_short"],
        **_weights_difference(t, palette, font),
    )
    chart(fig, "permutation_difference")
    same = difference < 1e-5
    (st.success if same else st.warning)(t["perm_same" if same else "perm_differs"].format(diff=difference))


def lab_compare(view: TraceArrays, t: dict[str, str], run: tuple, palette: str, font: int) -> None:
    key, device, text, upload = run
    config = view.config
    st.markdown(f"**{t['cmp_title']}**")
    layer, _ = lab_pickers(view, t, head=False)
    st.markdown(t["cmp_text"].format(layer=layer + 1))
    state = st.session_state
    keep = {"persist_state": "session"}
    st.text_input(t["cmp_sentence_b"], key="cmp_text", placeholder=t["cmp_same_sentence"], **keep)
    text_b = state.cmp_text if state.cmp_text.strip() else text  # empty: A's sentence, whatever it becomes
    b_key = key
    if key.kind == "random":
        heads = head_options(config.d_model, LIMITS.max_heads)
        if state.cmp_heads not in heads:
            state.cmp_heads = heads[0]
        left, middle, right = st.columns(3)
        heads_b = left.select_slider(t["cmp_heads_b"], heads, key="cmp_heads", **keep)
        seed_b = middle.number_input(t["cmp_seed_b"], 0, MAX_SEED, step=1, key="cmp_seed", **keep)
        scale_b = right.checkbox(t["cmp_scale_b"], key="cmp_scale", **keep)
        b_config = dataclasses.replace(config, n_heads=heads_b, seed=seed_b, scale_scores=scale_b)
        b_key = ModelKey("random", config=b_config)
    else:
        st.caption(t["cmp_trained"])
    try:
        other = compute_trace(b_key, device, text_b, upload)
    except EmptyTextError:
        st.info(t["err_empty"])
        return
    except TooManyTokensError as error:
        st.warning(t["err_too_many"].format(n=error.n_tokens, max=error.max_tokens))
        return
    a = view.weights[layer].mean(axis=0)  # (n_a, n_a): the heads' average
    b = other.weights[layer].mean(axis=0)  # (n_b, n_b)
    matrix = _matrix(t, palette, font) | {"kind": "weights", "value_label": t["mean_weight"]}
    left, right = side_by_side(max(len(a), len(b)))
    for column, side, run_view, weights in ((left, "cmp_a", view, a), (right, "cmp_b", other, b)):
        desc = run_view.model_name or t["cmp_desc"].format(  # a checkpoint is its name; random weights, its knobs
            heads=run_view.config.n_heads,
            seed=run_view.config.seed,
            scaling=t["sc_scaled" if run_view.config.scale_scores else "sc_unscaled"],
        )
        with column:
            fig = matrix_figure(weights, run_view.tokens, run_view.tokens, title=t[side].format(desc=desc), **matrix)
            chart(fig, f"compare_{side[-1]}_L{layer + 1}")
    if a.shape != b.shape:
        st.info(t["cmp_lengths"].format(a=a.shape[0], b=b.shape[0]))
        return
    labels = [x if x == y else f"{x}/{y}" for x, y in zip(view.tokens, other.tokens, strict=True)]
    fig = difference_figure(
        a, b, labels, labels, title=t["cmp_diff"], value_label=t["cmp_diff"], **_weights_difference(t, palette, font)
    )
    chart(fig, f"compare_difference_L{layer + 1}")


LAB_VIEWS: dict[str, Callable[..., None]] = {
    "heads": lab_head_view,
    "scaling": lab_scaling,
    "padding": lab_padding,
    "permute": lab_permute,
    "compare": lab_compare,
}


def downloads(t: dict[str, str], settings: Settings, view: TraceArrays, run: tuple) -> None:
    st.subheader(t["downloads"])
    left, right = st.columns(2)
    left.download_button(
        t["download_trace"],
        data=lambda: trace_npz(*run),
        file_name="attention_trace.npz",
        mime="application/octet-stream",
        on_click="ignore",
        help=t["download_trace_help"],
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


def trace_or_message(t: dict[str, str], settings: Settings, upload: bytes | None) -> tuple[TraceArrays, tuple] | None:
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
        code = getattr(error, "code", None)  # a common refusal, said in the page's language
        details = {name: markdown_literal(value) for name, value in getattr(error, "details", {}).items()}
        reason = t[f"upload_{code}"].format(**details) if code else str(error)
        st.error(t["err_upload"].format(error=reason))
    return None


def main() -> None:
    _configure_torch()
    _start_session()
    t = texts(st.session_state.lang)
    upload = sidebar(t)
    settings = _settings()
    _sync_link(settings)

    if settings.present:  # the whole screen for the step: no sidebar, no page title
        st.html(PRESENTATION_CSS)
        st.set_page_config(initial_sidebar_state="collapsed")
    else:
        st.title(t["title"])
        st.caption(t["subtitle"])
    show_link_notices(t, settings)
    result = trace_or_message(t, settings, upload)
    if result is None:
        return
    view, run = result
    config, n = view.config, len(view.tokens)

    if not settings.present:  # a projector needs the height for the chart; its axes name the tokens
        st.caption(t["tokens"].format(n=n))
        st.code("  ·  ".join(view.tokens), language=None, wrap_lines=True)
    if any(view.unknown):
        st.info(t["unknown_tokens"].format(name=view.model_name, n=sum(view.unknown), total=n))
    if view.model_name:
        model = view.model_name
    elif settings.model == "upload":
        name, _ = st.session_state.upload_kept
        model = t["upload_name"].format(file=markdown_literal(name))
    else:
        model = t["random_name"].format(seed=config.seed)
    shape = t["model_summary"].format(model=model, d_model=config.d_model, heads=config.n_heads, layers=config.n_layers)
    summary = t["shape_summary"].format(d_head=config.d_head, n=n, params=f"{view.parameters:,}")
    timing = t["device_summary"].format(device=view.device, ms=f"{view.milliseconds:.1f}")
    st.caption(f"{shape} · {summary} · {timing}")

    inspector(view, t, hashlib.sha256(repr(run[:3]).encode()).hexdigest()[:16])
    if not settings.present:  # a projector shows the step; the rest of the layer waits below in the normal page
        rest_of_the_layer(view, t, settings.palette)
    experiments(view, t, run)
    if not settings.present:
        downloads(t, settings, view, run)


main()
