"""The sidebar: the language, the sentence, the model and its shape, the display settings."""

from __future__ import annotations

import streamlit as st

from encoder import (
    LIMITS,
    EncoderError,
)
from ui import classroom, compute, session, translation
from ui.i18n import LANGUAGES, option_label
from ui.lessons import panel as lesson
from ui.settings import (
    ACTIVATION_NAMES,
    CHOICES,
    D_MODEL_OPTIONS,
    EXAMPLES,
    FF_MULTIPLIERS,
    MAX_SEED,
    head_options,
)
from viz import markdown_literal


def section() -> compute.Upload | None:
    """Every setting; returns the uploaded model file, if one was uploaded."""
    t = session.strings()
    upload = None
    with st.sidebar:
        st.radio(t["language"], list(LANGUAGES), key="lang", format_func=LANGUAGES.get, horizontal=True)
        st.text_input(t["sentence"], key="text", help=t["sentence_help"])
        st.caption(t["examples"])
        for example in EXAMPLES:
            st.button(example, on_click=session.set_text, args=(example,), width="stretch")

        st.subheader(t["model"])
        # persist_state: a model's controls disappear while another model is chosen, and
        # must still hold their values when it comes back.
        keep = {"persist_state": "session"}
        model = st.radio(t["model"], CHOICES["model"], key="model", format_func=option_label(t, "model"), **keep)
        if model == "random":
            random_shape(keep)
        elif model == "minilm":
            minilm_shape(keep)
        elif model == "trained":
            st.caption(t["trained_caption"])
        elif model == "translation":
            translation_shape(keep)
        else:
            st.file_uploader(
                t["upload"], type=["pt", "pth"], key="upload_file", help=t["upload_help"], on_change=session.keep_upload
            )
            kept = st.session_state.get("upload_kept")
            if kept is not None and st.session_state.upload_file is None:  # the uploader was away: a model switch
                st.caption(t["upload_kept"].format(file=markdown_literal(kept[0])))
            st.caption(t["upload_trust"])
            upload = upload_choices(*kept) if kept is not None else None
        st.checkbox(t["force_cpu"], key="cpu", help=t["force_cpu_help"])
        st.toggle(t["present"], key="present", help=t["present_help"])
        with st.expander(t["display"]):
            st.radio(t["palette"], CHOICES["palette"], key="palette", format_func=option_label(t, "palette"))
            st.radio(
                t["weight_scale"],
                CHOICES["weight_scale"],
                key="weight_scale",
                format_func=option_label(t, "weight_scale"),
            )
            st.radio(
                t["image_format"], CHOICES["image_format"], key="image_format", format_func=str.upper, horizontal=True
            )
        st.caption(t["share_hint"])
        lesson.sidebar_section()
        classroom.sidebar_section()
    return upload


def translation_shape(keep: dict[str, str]) -> None:
    """The translator: random weights of a shape the user chooses (the encoder's controls; the
    layers go to the encoder and the decoder each), or the one trained on this page."""
    t = session.strings()
    st.caption(translation.vocabulary_caption())
    weights = st.radio(
        t["translation_weights"],
        CHOICES["translation_weights"],
        key="translation_weights",
        format_func=option_label(t, "translation_weights"),
        **keep,
    )
    if weights == "random":
        random_shape(keep, encoder_decoder=True)


def random_shape(keep: dict[str, str], *, encoder_decoder: bool = False) -> None:
    """The shape of a randomly initialised encoder, every part of it the user's to choose; an
    encoder–decoder has no choice of positions (sinusoids) or mask (the decoder's is causal)."""
    t = session.strings()
    st.select_slider(
        t["d_model"], D_MODEL_OPTIONS, key="d_model", on_change=session.fit_heads, help=t["d_model_help"], **keep
    )
    heads = head_options(st.session_state.d_model, LIMITS.max_heads)
    st.select_slider(t["heads"], heads, key="n_heads", help=t["heads_help"], **keep)
    st.slider(t["layers"], 1, LIMITS.max_layers, key="n_layers", **keep)
    with st.expander(t["advanced"]):
        st.select_slider(
            t["d_ff"],
            FF_MULTIPLIERS,
            key="ff_multiplier",
            help=t["d_ff_help"],
            format_func=lambda m: f"{m} × d_model",
            **keep,
        )
        st.number_input(t["seed"], 0, MAX_SEED, step=1, key="seed", help=t["seed_help"], **keep)
        # Radios, not selectboxes, wherever labels are translated: a selectbox hands back its
        # label, which stops matching an option when the language changes.
        if not encoder_decoder:
            st.radio(
                t["positional"],
                CHOICES["positional"],
                key="positional",
                format_func=option_label(t, "positional"),
                **keep,
            )
        st.radio(
            t["layer_norm"], CHOICES["layer_norm"], key="layer_norm", format_func=option_label(t, "layer_norm"), **keep
        )
        st.radio(
            t["activation"],
            CHOICES["activation"],
            key="activation",
            format_func=ACTIVATION_NAMES.get,
            horizontal=True,
            **keep,
        )
        if not encoder_decoder:
            st.checkbox(t["causal"], key="causal", help=t["causal_help"], **keep)


def default_heads(d_model: int, options: list[int]) -> int:
    """A state_dict's likeliest head count: 64 dimensions a head, as BERT and the original
    Transformer have, where that divides d_model; else the most heads up to 8 (torch's tutorial)."""
    if d_model % 64 == 0 and d_model // 64 in options:
        return d_model // 64
    return max(h for h in options if h <= 8)


def upload_choices(name: str, data: bytes) -> compute.Upload:
    """The uploaded file, and for a state_dict the questions its names leave open: the head count,
    post- or pre-LN for torch's layer, the activation. A file that cannot be read asks nothing (the
    page says why in place of the trace)."""
    t = session.strings()
    digest = compute.upload_digest(data)
    try:
        layout = compute.upload_layout(digest, data)
    except EncoderError:
        return compute.Upload(data)
    if layout is None:  # a whole module: its modules say everything
        return compute.Upload(data)
    architecture = t["arch_torch" if layout.architecture == "torch" else "arch_no_layer_norm"]
    st.caption(
        t["upload_weights_only"].format(
            file=markdown_literal(name),
            architecture=architecture,
            d_model=layout.d_model,
            layers=layout.n_layers,
            d_ff=layout.d_ff,
        )
    )
    heads = head_options(layout.d_model, LIMITS.max_heads)
    key = f"upload_{digest[:16]}"  # another file has other options: its own widgets
    st.session_state.setdefault(f"{key}_heads", default_heads(layout.d_model, heads))
    n_heads = st.select_slider(t["upload_heads"], heads, key=f"{key}_heads", help=t["upload_heads_help"])
    layer_norm = layout.layer_norms[0]
    if len(layout.layer_norms) > 1:
        layer_norm = st.radio(
            t["layer_norm"], layout.layer_norms, key=f"{key}_norm", format_func=option_label(t, "layer_norm")
        )
    activation = st.radio(
        t["activation"], CHOICES["activation"], key=f"{key}_act", format_func=ACTIVATION_NAMES.get, horizontal=True
    )
    return compute.Upload(data, compute.StateDictChoices(n_heads, layer_norm, activation))


def minilm_shape(keep: dict[str, str]) -> None:
    """A checkpoint fixes its shape; only how many of its layers to run is left to choose."""
    t = session.strings()
    try:
        # On the device the page runs it on: the same model, loaded once.
        full = compute.load_model(compute.ModelKey("minilm"), "cpu" if st.session_state.cpu else "auto")
    except EncoderError:
        return  # not installed, or broken: the page says so, in place of the trace
    config = full.config
    st.caption(t["fixed_shape"].format(d_model=config.d_model, heads=config.n_heads, layers=config.n_layers))
    if st.session_state.minilm_n_layers > config.n_layers:  # a link may ask for more than it has
        st.session_state.minilm_n_layers = config.n_layers
    st.slider(t["first_layers"], 1, config.n_layers, key="minilm_n_layers", **keep)
